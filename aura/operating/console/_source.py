"""The console's data: everything a page or ``/api/`` shows, as plain data.

One ``ConsoleSource`` holds one open event log for the console's life
(LMDB allows one environment per process per directory, so every read and
every command goes through it) and the ``MissionIndex`` tailing it. Pages
and the JSON API call the same methods, so they show the same data.
Commands are queued through the log exactly as the CLI queues them
(``queue_in``); the runtime that owns the mission applies them, and
``command_status`` says when it has.
"""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import asdict
from typing import Any

import msgspec

from actors import ROOT
from eventstore import EventLog, EventStoreError

from ...core._budget import Budget
from ...core._errors import AuraError
from ...core._lifecycle import SETTLED_VALUES
from ...engine._commands import Command, delivered_upto
from ...engine._place import Place
from ...governance._audit import AuditReport, decode_entries, verify_audit
from .._inspect import PREFIX, audit_events, history_in, owner_of
from .._operate import open_writable, queue_in
from .._replay import replay_from_log
from ._index import DAMAGED, MissionIndex

VERIFY_EVERY = 10.0
"""Seconds a whole-chain audit verification is reused before it runs again."""
TREE_CHILDREN_SHOWN = 200
ACTIONS = ("signal", "cancel", "terminate", "resume", "redrive", "budget", "fork")


class BadRequest(AuraError):
    """Input the console refuses (a 400): nothing was changed."""


class NotFound(AuraError):
    """An unknown mission or command (a 404)."""


class ConsoleSource:
    def __init__(
        self,
        place: Place,
        *,
        store: EventLog | None = None,
        runtime: Any = None,
        read_only: bool = False,
    ) -> None:
        self.place = place
        self.where = place.describe()
        self.runtime = runtime
        self.read_only = read_only
        self._owns_store = store is None
        if store is None:
            store = place.open(readonly=True) if read_only else open_writable(place)
        self.store = store
        self.index = MissionIndex()
        self._verify_lock = threading.Lock()
        self._verified: tuple[float, AuditReport] | None = None
        self._verifying = False
        self._unaudited: dict[str, list[str]] = {}
        self.refresh()

    def close(self) -> None:
        if self._owns_store:
            self.store.close()

    def refresh(self) -> bool:
        return self.index.refresh(self.store)

    # -- missions ---------------------------------------------------------

    def missions(
        self,
        *,
        status: str = "",
        name: str = "",
        search: str = "",
        tag: str = "",
        offset: int = 0,
        limit: int = 50,
    ) -> dict[str, Any]:
        if offset < 0 or not 1 <= limit <= 500:
            raise BadRequest(f"offset must be >= 0 and limit 1..500, got {offset} and {limit}")
        self.refresh()
        if tag and "=" not in tag:
            raise BadRequest(f"tag must be NAME=VALUE, got {tag!r}")
        page = self.index.page(
            status=status, name=name, search=search, tag=tag, offset=offset, limit=limit
        )
        return {
            "missions": [r.as_json() for r in page.rows],
            "total": page.total,
            "offset": page.offset,
            "limit": page.limit,
            "counts": page.counts,
            "names": page.names,
            "position": self.index.position,
        }

    def mission(self, mission_id: str) -> dict[str, Any]:
        self.refresh()
        row = self.index.get(mission_id)
        if row is None:
            raise NotFound(f"no mission {mission_id!r} in {self.where}")
        timeline = self.timeline(mission_id, row.audit_versions)
        memory: dict[str, Any] = {}
        events: dict[str, Any] = {}
        for e in timeline:  # the log read once: memory and events folded from it
            if e["kind"] == "memory":
                if e["deleted"]:
                    memory.pop(e["key"], None)
                else:
                    memory[e["key"]] = e["value"]
            elif e["kind"] == "event":
                events[e["key"]] = e["value"]
        info = self.store.stream_info(PREFIX + mission_id)
        return {
            "mission": row.as_json(),
            "memory": memory,
            "events": events,
            "budget": _budget(row.cost_usd, row.cost_tokens, row.budget_usd, row.budget_tokens),
            "timeline": timeline,
            "archived_upto": info.archived_upto if info is not None else 0,
            "error": _error(row.status, row.detail, timeline),
            "audit": self.audit_of(mission_id, row.audit_versions, timeline),
            "owner": owner_of(self.place, self.store) if row.status not in SETTLED_VALUES else None,
            "settled": row.status in SETTLED_VALUES,
            "waiting_signals": re.findall(r"signal '([^']+)'", row.waiting_for),
        }

    def timeline(self, mission_id: str, audit_versions: list[int]) -> list[dict[str, Any]]:
        """The mission's history (archived runs included), each step attempt
        with its duration (scheduled to result), each event with its run."""
        entries = list(
            history_in(
                self.store, self.where, mission_id, archived=True, audit_versions=audit_versions
            )
        )
        began = {
            (e["run"], e["seq"], e["attempt"]): e["ts"] for e in entries if e["kind"] == "scheduled"
        }
        run = 1
        for e in entries:
            if e["kind"] == "new_run":
                run = e["run"]
            e.setdefault("run", run)
            if e["kind"] == "step_done":
                e["what"] = e["fingerprint"].split(" ", 1)[0]
                start = began.get((e["run"], e["seq"], e["attempt"]))
                if start is not None:
                    e["duration"] = max(0.0, e["sent_at"] - start)
        return entries

    def audit_of(
        self, mission_id: str, versions: list[int], timeline: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The mission's audit entries, and whether they hold: the chain
        (all missions') verified, and one entry per audited event of this one."""
        entries: list[dict[str, Any]] = []
        for event in audit_events(self.store, versions):
            for entry in decode_entries(event.data):
                if entry.mission_id == mission_id:
                    entries.append(
                        {
                            "seq": event.version,
                            "at": entry.at,
                            "kind": entry.kind,
                            "run": entry.run,
                            "version": entry.version,
                            "detail": entry.detail,
                            "digest": event.digest.hex(),
                        }
                    )
        report = self.verified()
        mine = {e["version"] for e in entries if not e["kind"].endswith(".scheduled")}
        unaudited = self._unaudited.get(mission_id, [])
        return {
            "entries": entries,
            "chain_ok": report.ok or (not report.bad_version and not report.damaged),
            "ok": report.bad_version == 0 and not unaudited,
            "reason": report.reason,
            "unaudited": unaudited,
            "audited_events": len(mine),
            "verified_at": self._verified[0] if self._verified else 0.0,
        }

    def verified(self) -> AuditReport:
        """The whole audit chain verified: the first time here, then again on
        a background thread when the last result is ``VERIFY_EVERY`` seconds
        old (a page never waits for a walk over a large log twice)."""
        with self._verify_lock:
            if self._verified is None:
                return self._set_verified(verify_audit(self.store))
            if time.monotonic() - self._verified[0] > VERIFY_EVERY and not self._verifying:
                self._verifying = True
                threading.Thread(target=self._verify_again, daemon=True).start()
            return self._verified[1]

    def _verify_again(self) -> None:
        try:
            report = verify_audit(self.store)
        except EventStoreError:  # the store closed or failed: the next page tries again
            report = None
        with self._verify_lock:
            if report is not None:
                self._set_verified(report)
            self._verifying = False

    def verify_now(self) -> dict[str, Any]:
        with self._verify_lock:
            return asdict(self._set_verified(verify_audit(self.store)))

    def _set_verified(self, report: AuditReport) -> AuditReport:
        """Keep ``report``, with its unaudited events grouped by mission."""
        grouped: dict[str, list[str]] = {}
        for where in report.unaudited:  # "mission/<id>@<version>"
            stream = where.rsplit("@", 1)[0]
            grouped.setdefault(stream[len(PREFIX) :], []).append(where)
        self._verified, self._unaudited = (time.monotonic(), report), grouped
        return report

    def replay(self, mission_id: str, to: Any) -> dict[str, Any]:
        """The mission's state after event ``to``, as ``aura replay --to`` computes it."""
        n = _int(to, "position")
        if n < 1:
            raise BadRequest(f"position must be an event number >= 1, got {n}")
        try:
            result = replay_from_log(self.store, self.where, mission_id, n)
        except AuraError as err:
            if str(err).startswith("no mission"):
                raise NotFound(str(err)) from err
            raise BadRequest(str(err)) from err
        last = result.steps[-1]
        return {"mission_id": mission_id, "position": n, **asdict(last)}

    # -- acting -----------------------------------------------------------

    def act(self, mission_id: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """Queue ``action`` for ``mission_id`` (checked first, as the CLI
        checks it); returns the command's number."""
        if self.read_only:
            raise PermissionError("this console is read-only (--read-only)")
        if action not in ACTIONS:
            raise NotFound(f"no action {action!r} (one of {', '.join(ACTIONS)})")
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        now = time.time()
        reason = _text(body.get("reason", f"{action} from the console"), "reason")
        if action == "signal":
            name = _text(body.get("name", ""), "signal name")
            if not name:
                raise BadRequest("a signal needs a name")
            payload = body.get("payload")
            verdict = body.get("verdict")
            if verdict is not None:
                if verdict not in ("approve", "reject"):
                    raise BadRequest(f"verdict must be approve or reject, got {verdict!r}")
                payload = verdict == "approve"
            elif "payload_json" in body:
                payload = _json_payload(body["payload_json"])
            cmd = Command("signal", mission_id, now, name=name, payload=payload)
        elif action == "budget":
            usd, tokens = body.get("usd"), body.get("tokens")
            usd = None if usd in (None, "") else _number(usd, "usd")
            tokens = None if tokens in (None, "") else _int(tokens, "tokens")
            if usd is None and tokens is None:
                raise BadRequest("a budget needs usd or tokens (or both)")
            try:
                limits = Budget(usd, tokens)
            except AuraError as err:
                raise BadRequest(str(err)) from err
            cmd = Command("budget", mission_id, now, payload=[limits.usd, limits.tokens])
        elif action == "redrive":
            cmd = Command("redrive", mission_id, now)
        elif action == "fork":
            position = _int(body.get("from_position", ""), "from_position")
            new_id = _text(body.get("new_id") or f"{mission_id}-fork-{position}", "new_id")
            cmd = Command("fork", new_id, now, payload=[mission_id, position])
        else:
            cmd = Command(action, mission_id, now, reason=reason)
        if self.index.get(mission_id) is None and self.store.version(PREFIX + mission_id) == 0:
            raise NotFound(f"no mission {mission_id!r} in {self.where}")
        try:
            number = queue_in(self.store, self.where, cmd)
        except AuraError as err:
            raise BadRequest(str(err)) from err
        done = {"command": number, "action": action, "mission_id": mission_id, "queued_at": now}
        if action == "fork":
            done["new_id"] = cmd.mission_id
        return done

    def command_status(self, number: Any) -> dict[str, Any]:
        n = _int(number, "command number")
        last = self.store.version("$commands")
        if not 1 <= n <= last:
            raise NotFound(f"no command {n} in {self.where} (commands 1..{last})")
        return {"command": n, "delivered": delivered_upto(self.store) >= n}

    # -- the runtime ------------------------------------------------------

    def supervision(self) -> dict[str, Any]:
        """The supervision tree of the runtime this console runs in, if any."""
        owner = owner_of(self.place, self.store)
        if self.runtime is None:
            return {"tree": None, "owner": owner}
        system = self.runtime.system
        return {"tree": _subtree(system, ROOT, "runtime", 0), "owner": owner}

    def plots(self, minutes: int = 60) -> dict[str, Any]:
        self.refresh()
        activity = self.index.activity(minutes, time.time())
        return {
            "per_minute": [
                {"minute": m * 60, "steps": ok, "failures": failed} for m, ok, failed in activity
            ],
            "durations": self.index.step_durations(),
        }


def _subtree(system: Any, supervisor_id: str, name: str, depth: int) -> dict[str, Any]:
    children = system.which_children(supervisor_id)
    counts = system.count_children(supervisor_id)
    shown = []
    for child in children[:TREE_CHILDREN_SHOWN]:
        node = {
            "id": child.id,
            "kind": child.kind,
            "status": child.status,
            "state": child.state.value,
            "restart": child.restart,
            "restarts": child.restarts,
        }
        if child.kind == "supervisor" and depth < 8 and child.status == "running":
            node["children"] = _subtree(system, child.id, child.id, depth + 1)
        shown.append(node)
    return {
        "id": supervisor_id,
        "name": name,
        "counts": asdict(counts),
        "children": shown,
        "hidden": max(0, len(children) - TREE_CHILDREN_SHOWN),
    }


def _budget(
    usd: float, tokens: int, limit_usd: float | None, limit_tokens: int | None
) -> dict[str, Any]:
    def share(spent: float, limit: float | None) -> float | None:
        if limit is None:
            return None
        return 1.0 if limit == 0 else min(1.0, spent / limit)

    return {
        "usd": usd,
        "tokens": tokens,
        "limit_usd": limit_usd,
        "limit_tokens": limit_tokens,
        "share_usd": share(usd, limit_usd),
        "share_tokens": share(tokens, limit_tokens),
    }


def _error(status: str, reason: str, timeline: list[dict[str, Any]]) -> dict[str, Any] | None:
    """For a failed or dead mission: its error, and the step where it happened."""
    if status not in ("failed", "dead", DAMAGED):
        return None
    failed = [e for e in timeline if e["kind"] == "step_done" and not e["ok"]]
    where = failed[-1] if failed else None
    return {
        "reason": reason,
        "step": where["step"] if where else None,
        "seq": where["seq"] if where else None,
        "attempt": where["attempt"] if where else None,
        "error_type": where["error_type"] if where else None,
        "error": where["error"] if where else None,
        "version": where["version"] if where else None,
    }


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > 1000:
        raise BadRequest(f"{what} is longer than 1000 characters")
    return value


def _json_payload(text: Any) -> Any:
    if not isinstance(text, str):
        raise BadRequest("payload_json must be a string holding JSON")
    if not text.strip():
        return None
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError as err:
        raise BadRequest(f"the signal payload is not valid JSON: {err}") from err


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise BadRequest(f"{what} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise BadRequest(f"{what} must be an integer, got {value!r}")


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise BadRequest(f"{what} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError) as err:
        raise BadRequest(f"{what} must be a number, got {value!r}") from err
    if not math.isfinite(out):
        raise BadRequest(f"{what} must be a finite number, got {value!r}")
    return out
