"""The console over HTTP (a real uvicorn server, httpx as the client): the
JSON API, live events, bad input, the token, CSRF and origin gates,
read-only mode, escaping, paging over 10,000 missions, and the CLI verbs."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

import aura
from aura import MissionStatus as S
from aura.engine._place import Place
from aura.operating.console import ConsoleServer
from aura.operating.console._auth import csrf_token
from aura.operating.console._source import ConsoleSource
from eventstore import EventStore, NewEvent

from ..aura.test_cli_operate import serve as serve_in_child
from . import missions as m
from .conftest import Served

ROOT = Path(__file__).resolve().parent.parent.parent


def client(console: Any) -> httpx.Client:
    return httpx.Client(
        base_url=console.base_url,
        headers={"authorization": f"Bearer {console.token}"},
        timeout=30,
    )


def csrf(console: Any) -> dict[str, str]:
    return {"x-csrf-token": csrf_token(console.token)}


def events(c: httpx.Client, mission: str | None = None) -> Iterator[tuple[str, str]]:
    """The console's server-sent events, as (event, data), as they come."""
    params = {"mission": mission} if mission else {}
    with c.stream("GET", "/events", params=params, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        kind, data = "", ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif not line and kind:
                yield kind, data
                kind, data = "", ""


def until_delivered(c: httpx.Client, number: int) -> None:
    for kind, data in events(c):
        if kind in ("hello", "delivered") and int(data) >= number:
            return


def until_status(c: httpx.Client, mission_id: str, status: str) -> dict[str, Any]:
    """Read the mission each time the live stream says it changed."""
    for _ in events(c, mission_id):  # hello first, then one per change
        found = c.get(f"/api/missions/{mission_id}").json()
        if found["mission"]["status"] == status:
            return dict(found)
    raise AssertionError("the event stream ended")


def test_the_api_lists_and_describes_missions_as_the_pages_do(served: Served) -> None:
    with client(served.console) as c:
        listed = c.get("/api/missions").json()
        assert listed["total"] == 6
        assert listed["counts"] == {"waiting": 3, "completed": 1, "failed": 1, "dead": 1}
        by_id = {r["mission_id"]: r for r in listed["missions"]}
        assert by_id["ask-1"]["budget_usd"] == 1.0 and by_id["ask-1"]["cost_tokens"] == 120
        assert by_id["broken-1"]["failures"] == 1
        one = c.get("/api/missions/xss-1").json()
        steps = [e for e in one["timeline"] if e["kind"] == "step_done"]
        assert [(s["step"], s["result"]) for s in steps] == [(m.echo.__aura_step__.name, m.XSS)]
        assert steps[0]["duration"] >= 0
        assert one["memory"] == {"note": m.XSS}
        assert one["audit"]["ok"] and one["audit"]["audited_events"] >= 4
        assert c.get("/api/missions?status=waiting&limit=2").json()["total"] == 3
        assert len(c.get("/api/missions?status=waiting&limit=2").json()["missions"]) == 2
        state = c.get("/api/replay/xss-1", params={"to": 1}).json()
        assert (state["status"], state["kind"], state["steps_completed"]) == ("pending", "start", 0)
        assert c.get("/api/audit/verify").json()["ok"] is True
        plots = c.get("/api/plots").json()
        assert sum(p["steps"] for p in plots["per_minute"]) >= 5
        assert m.echo.__aura_step__.name in plots["durations"]
        tree = c.get("/api/supervision").json()["tree"]
        assert "missions" in [child["id"] for child in tree["children"]]


def test_a_budget_raised_through_the_api_reaches_the_mission(served: Served) -> None:
    with client(served.console) as c:
        answer = c.post(
            "/api/act/budget/ask-1", json={"usd": 5, "tokens": 50000}, headers=csrf(served.console)
        )
        assert answer.status_code == 202
        until_delivered(c, answer.json()["command"])
        for _ in events(c, "ask-1"):
            row = c.get("/api/missions/ask-1").json()["mission"]
            if row["budget_usd"] == 5.0:
                assert row["budget_tokens"] == 50000
                break
        status = c.get(f"/api/commands/{answer.json()['command']}").json()
        assert status == {"command": answer.json()["command"], "delivered": True}


def test_bad_input_gets_a_clear_4xx_and_changes_nothing(served: Served) -> None:
    log = served.rt.store
    before = log.version("$commands")
    head = log.head_position()
    h = csrf(served.console)
    with client(served.console) as c:
        cases = [
            (c.post("/api/act/signal/ask-1", content=b"{oops", headers=h), 400, "not valid JSON"),
            (
                c.post(
                    "/api/act/signal/ask-1",
                    json={"name": "approve", "payload_json": "{x"},
                    headers=h,
                ),
                400,
                "payload is not valid JSON",
            ),
            (c.post("/api/act/signal/ask-1", json={"payload": 1}, headers=h), 400, "needs a name"),
            (c.post("/api/act/signal/ask-1", json=[1, 2], headers=h), 400, "JSON object"),
            (c.post("/api/act/explode/ask-1", json={}, headers=h), 404, "no action 'explode'"),
            (c.post("/api/act/cancel/nobody", json={}, headers=h), 404, "no mission 'nobody'"),
            (c.post("/api/act/redrive/ask-1", json={}, headers=h), 400, "not dead"),
            (c.post("/api/act/cancel/xss-1", json={}, headers=h), 400, "nothing to cancel"),
            (c.post("/api/act/budget/ask-1", json={"usd": -1}, headers=h), 400, ">= 0"),
            (c.post("/api/act/budget/ask-1", json={"usd": "lots"}, headers=h), 400, "number"),
            (c.post("/api/act/budget/ask-1", json={}, headers=h), 400, "usd or tokens"),
            (c.post("/api/act/fork/ask-1", json={"from_position": "x"}, headers=h), 400, "integer"),
            (
                c.post("/api/act/fork/ask-1", json={"from_position": 999}, headers=h),
                400,
                "cannot fork from event 999",
            ),
            (
                c.post(
                    "/api/act/fork/ask-1", json={"from_position": 1, "new_id": "ask-2"}, headers=h
                ),
                400,
                "already exists",
            ),
            (c.get("/api/missions/nobody"), 404, "no mission 'nobody'"),
            (c.get("/api/replay/ask-1", params={"to": 0}), 400, ">= 1"),
            (c.get("/api/replay/ask-1", params={"to": "abc"}), 400, "integer"),
            (c.get("/api/replay/ask-1", params={"to": 999}), 400, "cannot replay to event 999"),
            (c.get("/api/replay/nobody", params={"to": 1}), 404, "no mission"),
            (c.get("/api/missions", params={"limit": 0}), 400, "limit"),
            (c.get("/api/missions", params={"offset": "x"}), 400, "integers"),
            (c.get("/api/commands/999999"), 404, "no command"),
            (c.get("/api/nothing-here"), 404, "no page"),
        ]
        for response, status, text in cases:
            assert response.status_code == status, (response.request.url, response.text)
            assert text in response.json()["error"], response.json()
        page = c.get("/missions/nobody")
        assert page.status_code == 404 and "no mission &#39;nobody&#39;" in page.text
        assert c.get("/?page=0").status_code == 400
    assert log.version("$commands") == before
    assert log.head_position() == head  # nothing at all was written


def test_the_token_csrf_and_origin_gates(served: Served) -> None:
    base = served.console.base_url
    with httpx.Client(base_url=base, timeout=30) as anonymous:
        for path in ("/", "/missions/ask-1", "/static/console.js", "/events"):
            assert anonymous.get(path).status_code == 401, path
        refused = anonymous.get("/api/missions")
        assert refused.status_code == 401 and "access token" in refused.json()["error"]
        wrong = anonymous.get("/api/missions", headers={"authorization": "Bearer " + "x" * 32})
        assert wrong.status_code == 401
        first = anonymous.get(served.console.url, follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/"
        assert "HttpOnly" in first.headers["set-cookie"]
        assert "SameSite=Strict" in first.headers["set-cookie"]
        assert anonymous.get("/").status_code == 200  # the cookie now
        before = served.rt.store.version("$commands")
        no_csrf = anonymous.post("/api/act/cancel/idle-1", json={})
        assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["error"]
        form = anonymous.post("/act/cancel/idle-1", data={"reason": "x", "csrf": "forged"})
        assert form.status_code == 403
        cross = anonymous.post(
            "/api/act/cancel/idle-1",
            json={},
            headers={**csrf(served.console), "origin": "http://evil.example"},
        )
        assert cross.status_code == 403 and "cross-origin" in cross.json()["error"]
        assert served.rt.store.version("$commands") == before
        # A form post with the right CSRF field works without script.
        ok = anonymous.post(
            "/act/cancel/idle-1",
            data={"reason": "from a form", "csrf": csrf_token(served.console.token)},
            follow_redirects=False,
        )
        assert ok.status_code == 303 and ok.headers["location"].startswith("/missions/idle-1")
    assert served.rt.wait("idle-1", timeout=30).status is S.CANCELLED


def test_mission_data_is_escaped_in_every_page(served: Served) -> None:
    with client(served.console) as c:
        for path in ("/missions/xss-1", "/missions/xss-1?partial=1", "/replay/xss-1?to=4", "/"):
            body = c.get(path).text
            assert "<script>window.pwned" not in body, path
            assert "<img src=x" not in body, path
        assert "&lt;script&gt;window.pwned" in c.get("/missions/xss-1").text


def test_a_read_only_console_shows_but_never_changes(tmp_path: Path) -> None:
    data = tmp_path / "aura-data"
    with aura.Runtime(data, missions=m.ALL) as rt:
        rt.start(m.idle, mission_id="idle-ro")
        rt.wait("idle-ro", timeout=30, until={S.WAITING})
    with ConsoleServer(Place.of(data), port=0, read_only=True) as console, client(console) as c:
        page = c.get("/missions/idle-ro")
        assert page.status_code == 200 and 'id="actions"' not in page.text
        refused = c.post("/api/act/cancel/idle-ro", json={}, headers=csrf(console))
        assert refused.status_code == 403 and "read-only" in refused.json()["error"]
        assert c.get("/api/csrf").json()["read_only"] is True
    with EventStore.open(data / "events", readonly=True) as log:
        assert log.version("$commands") == 0


def test_beside_a_runtime_in_another_process_commands_reach_it(tmp_path: Path) -> None:
    data = tmp_path / "aura-data"
    child = serve_in_child(data, "approval", "ap", "[null]")
    try:
        with ConsoleServer(Place.of(data), port=0) as console, client(console) as c:
            until_status(c, "ap", "waiting")
            h = csrf(console)
            first = c.post(
                "/api/act/signal/ap", json={"name": "approve", "verdict": "approve"}, headers=h
            )
            assert first.status_code == 202, first.text
            until_delivered(c, first.json()["command"])
            note = c.post(
                "/api/act/signal/ap", json={"name": "note", "payload_json": '"ok"'}, headers=h
            )
            assert note.status_code == 202
            done = until_status(c, "ap", "completed")
            assert done["error"] is None
        out, _ = child.communicate(timeout=60)
        assert 'RESULT {"draft":2,"verdict":true,"note":"ok"}' in out
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_paging_filtering_and_counting_over_ten_thousand_missions(tmp_path: Path) -> None:
    """The log of 10,050 missions (real Start and Transition records); the
    index reads it once, then pages in memory."""
    from aura.core._messages import Start, Transition

    data = tmp_path / "aura-data"
    n = 10_050
    with EventStore.open(data / "events") as log:
        batch = []
        for i in range(n):
            status = ("completed", "waiting", "failed")[i % 3]
            name = "big:even" if i % 2 == 0 else "big:odd"
            start = msgspec.msgpack.encode(Start(name, [i], 1_000_000.0 + i))
            end = msgspec.msgpack.encode(Transition(status, name=name, steps=i % 7))
            batch.append(
                (f"mission/m{i:05d}", [NewEvent("message", start), NewEvent("transition", end)], 0)
            )
            if len(batch) == 1000:
                log.append_many(batch)
                batch = []
        log.append_many(batch)
    source = ConsoleSource(Place.of(data), read_only=True)
    try:
        first = source.missions(limit=50)
        assert first["total"] == n
        assert first["counts"] == {"completed": 3350, "waiting": 3350, "failed": 3350}
        assert first["names"] == ["big:even", "big:odd"]
        second = source.missions(offset=50, limit=50)
        ids = [r["mission_id"] for r in first["missions"] + second["missions"]]
        assert len(set(ids)) == 100  # two pages, no overlap, newest change first
        positions = [r["updated"] for r in first["missions"] + second["missions"]]
        assert positions == sorted(positions, reverse=True)
        last = source.missions(offset=n - 10, limit=50)
        assert len(last["missions"]) == 10
        waiting_odd = source.missions(status="waiting", name="big:odd", limit=500)
        assert waiting_odd["total"] == len([i for i in range(n) if i % 3 == 1 and i % 2 == 1])
        assert all(r["status"] == "waiting" for r in waiting_odd["missions"])
        found = source.missions(search="m0999")
        assert sorted(r["mission_id"] for r in found["missions"]) == [
            f"m0999{d}" for d in range(10)
        ]
        assert source.mission("m00007")["mission"]["steps"] == 0  # 7 % 7
    finally:
        source.close()


@contextlib.contextmanager
def aura_process(*args: str) -> Iterator[subprocess.Popen[str]]:
    """``python -m aura ARGS`` in the repository, killed if still running after."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "aura", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _read_url(proc: subprocess.Popen[str], marker: str) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        found = re.search(marker + r"(http://\S+)", line)
        if found:
            return found.group(1)
    raise AssertionError(f"no URL printed; stderr: {proc.stderr.read() if proc.stderr else ''}")


def test_aura_console_prints_its_url_and_serves_until_interrupted(tmp_path: Path) -> None:
    data = tmp_path / "aura-data"
    with aura.Runtime(data, missions=m.ALL) as rt:
        rt.start(m.untrusted, mission_id="cli-1").result(timeout=30)
    with aura_process("--data", str(data), "console", "--port", "0") as proc:
        url = _read_url(proc, "open ")
        assert url.startswith("http://127.0.0.1:") and "?token=" in url
        with httpx.Client(timeout=30, follow_redirects=True) as c:
            assert c.get(url.split("?")[0]).status_code == 401
            page = c.get(url)  # the redirect sets the cookie
            assert page.status_code == 200 and "cli-1" in page.text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_aura_console_refuses_a_missing_directory(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aura", "--data", str(tmp_path / "none"), "console"],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert result.returncode == 1
    assert "no aura data directory" in result.stderr


def test_aura_worker_serves_the_console_with_its_supervision_tree(tmp_path: Path) -> None:
    data = tmp_path / "aura-data"
    app = ("worker", "--app", "tests.console.missions", "--console", "0", "--log", "off")
    with aura_process("--data", str(data), *app) as proc:
        url = _read_url(proc, "console: open ")
        with httpx.Client(timeout=30, follow_redirects=True) as c:
            assert c.get(url).status_code == 200
            tree = c.get(url.split("?")[0] + "api/supervision").json()["tree"]
            assert "missions" in [child["id"] for child in tree["children"]]
            page = c.get(url.split("?")[0] + "supervision")
            assert 'id="tree"' in page.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


def test_a_console_on_a_postgresql_store(pg_server_url: str, pg_schema: str) -> None:
    """The same console over the PostgreSQL backend: a standalone console
    (no runtime in it) lists, describes and signals a mission a runtime runs."""
    where = {"store": pg_server_url, "schema": pg_schema}
    with aura.Runtime(**where, missions=m.ALL) as rt:
        rt.start(m.approval, "pg", mission_id="pg-1")
        rt.wait("pg-1", timeout=30, until={S.WAITING})
        place = Place.of(None, pg_server_url, pg_schema)
        with ConsoleServer(place, port=0) as console, client(console) as c:
            assert "postgresql://" in console.source.where
            listed = c.get("/api/missions").json()
            assert [r["mission_id"] for r in listed["missions"]] == ["pg-1"]
            sent = c.post(
                "/api/act/signal/pg-1",
                json={"name": "approve", "verdict": "reject"},
                headers=csrf(console),
            )
            assert sent.status_code == 202
            done = until_status(c, "pg-1", "completed")
            assert done["mission"]["steps"] == 2
            assert c.get("/api/supervision").json()["tree"] is None  # not in this process
        assert rt.get("pg-1").result["done"] == "approved=False"


def test_a_timeline_holds_archived_runs_compensations_and_timers(tmp_path: Path) -> None:
    from ..aura import missions as am

    data = tmp_path / "aura-data"
    with aura.Runtime(
        data, missions=[am.looper, am.trip, m.napper], archive_completed_after=None
    ) as rt:
        result = rt.start(am.looper, 0, 100, mission_id="long").result(timeout=60)
        rt.compact(completed_after=None)
        with pytest.raises(aura.MissionFailedError):
            rt.start(am.trip, False, mission_id="trip").result(timeout=60)
        rt.start(m.napper, mission_id="nap").result(timeout=60)
        with aura.serve_console(rt, port=0) as console, client(console) as c:
            long = c.get("/api/missions/long").json()
            assert long["archived_upto"] > 0
            timeline = long["timeline"]
            runs = sorted({e["run"] for e in timeline if e["kind"] == "step_done"})
            assert runs == list(range(1, result["run"] + 1))  # archived runs included
            assert len([e for e in timeline if e["kind"] == "step_done"]) == 100
            assert [e["kind"] for e in timeline].count("new_run") == result["run"] - 1
            assert any(e["version"] <= long["archived_upto"] for e in timeline)
            assert long["mission"]["run"] == result["run"]

            trip = c.get("/api/missions/trip").json()
            kinds = [(e["what"], e["ok"]) for e in trip["timeline"] if e["kind"] == "step_done"]
            assert kinds.count(("compensate", True)) == 2  # both bookings undone
            assert trip["error"]["error_type"] == "ValueError"
            assert "card declined" in trip["error"]["error"]
            assert "compensate" in c.get("/missions/trip").text

            nap = c.get("/api/missions/nap").json()["timeline"]
            assert [e["kind"] for e in nap].count("timer_fired") == 1


def test_a_mission_page_shows_the_events_it_published(tmp_path: Path) -> None:
    from ..aura import events_missions as em

    data = tmp_path / "aura-data"
    with aura.Runtime(data, missions=[em.reporter]) as rt:
        rt.start(em.reporter, 2, mission_id="ev")
        rt.wait("ev", timeout=30, until={S.WAITING})
        with aura.serve_console(rt, port=0) as console, client(console) as c:
            found = c.get("/api/missions/ev").json()
            assert found["events"] == {"status": "waiting for go", "progress": {"done": 2, "of": 2}}
            assert "progress" not in found["memory"]
            page = c.get("/missions/ev").text
            assert 'id="events"' in page and "waiting for go" in page
            kinds = [e["kind"] for e in found["timeline"]]
            assert kinds.count("event") == 4


def test_the_audit_badge_says_not_verified_when_the_chain_was_edited(tmp_path: Path) -> None:
    from aura.governance._audit import decode_entries
    from eventstore import RecordedEvent

    from ..aura.test_audit import _tamper

    data = tmp_path / "aura-data"
    with aura.Runtime(data, missions=m.ALL) as rt:
        rt.start(m.untrusted, mission_id="t-1").result(timeout=30)
    with ConsoleServer(Place.of(data), port=0, read_only=True) as console, client(console) as c:
        assert c.get("/api/missions/t-1").json()["audit"]["ok"] is True
        assert 'id="audit-badge">verified<' in c.get("/missions/t-1").text

    def forge(event: RecordedEvent) -> RecordedEvent:
        first, *rest = decode_entries(event.data)
        forged = msgspec.structs.replace(first, detail={**first.detail, "step": "forged"})
        return msgspec.structs.replace(event, data=msgspec.msgpack.encode([forged, *rest]))

    _tamper(data, 2, forge)
    with ConsoleServer(Place.of(data), port=0, read_only=True) as console, client(console) as c:
        audit = c.get("/api/missions/t-1").json()["audit"]
        assert audit["ok"] is False and "edited" in audit["reason"]
        assert 'id="audit-badge">NOT verified<' in c.get("/missions/t-1").text
