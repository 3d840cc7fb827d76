// aura console: live fragments over server-sent events, actions with the
// CSRF token, the replay slider. No framework; served from the package.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const live = document.getElementById("live");
  const dot = document.getElementById("live-dot");
  const pending = new Map(); // command number -> label, until the runtime took it
  let deliveredUpto = 0;

  function partialUrl() {
    const url = new URL(window.location.href);
    url.searchParams.set("partial", "1");
    url.searchParams.delete("queued");
    return url;
  }

  let refreshing = false, again = false;
  async function refresh() {
    if (!live) return;
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      const response = await fetch(partialUrl(), { credentials: "same-origin" });
      if (response.ok) {
        live.innerHTML = await response.text();
        live.dataset.refreshed = String(Date.now());
        document.dispatchEvent(new CustomEvent("aura:refreshed"));
      }
    } finally {
      refreshing = false;
      if (again) { again = false; refresh(); }
    }
  }

  function showStatus(text, kind) {
    const el = document.getElementById("act-status");
    if (!el) return;
    el.textContent = text;
    el.className = "act-status " + (kind || "");
  }

  function markDelivered() {
    for (const [number, label] of pending) {
      if (number <= deliveredUpto) {
        pending.delete(number);
        showStatus(label + " (command " + number + ") taken by the runtime", "taken");
      }
    }
  }

  function connect() {
    const url = new URL("/events", window.location.origin);
    if (live && live.dataset.mission) url.searchParams.set("mission", live.dataset.mission);
    const source = new EventSource(url);
    source.addEventListener("hello", (e) => {
      deliveredUpto = Number(e.data);
      if (dot) dot.classList.add("on");
      markDelivered();
    });
    source.addEventListener("change", refresh);
    source.addEventListener("delivered", (e) => {
      deliveredUpto = Number(e.data);
      markDelivered();
    });
    source.onerror = () => { if (dot) dot.classList.remove("on"); };
  }
  connect();

  async function act(form, submitter) {
    const action = form.dataset.action;
    const body = {};
    for (const [k, v] of new FormData(form).entries()) {
      if (k !== "csrf" && v !== "") body[k] = v;
    }
    if (submitter && submitter.name === "verdict") {
      body.verdict = submitter.value;
      delete body.payload_json;
    } else if (action === "signal" && body.payload_json !== undefined) {
      try { JSON.parse(body.payload_json); } catch (err) {
        showStatus("the payload is not valid JSON: " + err.message, "refused");
        return;
      }
    }
    const mission = live.dataset.mission;
    const response = await fetch(
      "/api/act/" + action + "/" + encodeURIComponent(mission),
      {
        method: "POST",
        credentials: "same-origin",
        headers: { "content-type": "application/json", "x-csrf-token": csrf },
        body: JSON.stringify(body),
      },
    );
    const answer = await response.json();
    if (!response.ok) {
      showStatus(action + " refused: " + answer.error, "refused");
      return;
    }
    const label = action + (body.verdict ? " (" + body.verdict + ")" : "")
      + (answer.new_id ? " as " + answer.new_id : "");
    pending.set(answer.command, label);
    showStatus(label + " queued as command " + answer.command + ", waiting for the runtime", "queued");
    markDelivered();
  }

  for (const form of document.querySelectorAll("form.act")) {
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      act(form, e.submitter).catch((err) => showStatus(String(err), "refused"));
    });
  }

  const slider = document.getElementById("replay-slider");
  if (slider) {
    const out = document.getElementById("replay-n");
    const state = document.getElementById("replay-state");
    let timer = null;
    async function show() {
      const response = await fetch(
        "/replay/" + slider.dataset.mission + "?to=" + slider.value,
        { credentials: "same-origin" },
      );
      state.innerHTML = await response.text();
    }
    const forkAt = document.getElementById("fork-position");
    slider.addEventListener("input", () => {
      out.textContent = slider.value;
      if (forkAt) forkAt.value = slider.value;
      clearTimeout(timer);
      timer = setTimeout(show, 80);
    });
    show();
    document.addEventListener("aura:refreshed", () => {
      const summary = document.getElementById("summary");
      if (!summary) return;
      const events = Number(summary.dataset.events);
      const atEnd = Number(slider.value) === Number(slider.max);
      slider.max = String(events);
      if (atEnd) {
        slider.value = String(events);
        out.textContent = slider.value;
        if (forkAt) forkAt.value = slider.value;
        show();
      }
    });
  }
})();
