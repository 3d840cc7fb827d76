"""What the console lists, kept current by tailing the log.

``MissionIndex.refresh`` reads the global log from where it stopped
(``read_all(position)``: one pass over what is new, never the whole log
again) and folds each event into one ``MissionRow`` per mission, counts
by status, steps and failures per minute, step durations, and which
``$audit`` events hold each mission's entries. Paging, filtering and
counting then run over rows in memory, so the list stays fast with tens
of thousands of missions, and a change is visible one refresh after it is
journaled.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

import msgspec

from eventstore import EventLog, RecordedEvent

from ...core._messages import (
    RECOVERY,
    STREAM_PREFIX,
    TRANSITION,
    MissionMessage,
    NewRun,
    RaiseBudget,
    Start,
    StepDone,
    Transition,
)
from ...governance._audit import AUDIT_STREAM, decode_entries

DAMAGED = "damaged"
PAGES_KEPT = 16
"""Filtered, sorted lists kept for paging (per filter, until something changes)."""
DURATIONS_KEPT = 500
"""Recent attempt durations kept per step name (for the durations chart)."""

_messages = msgspec.msgpack.Decoder(MissionMessage)
_transitions = msgspec.msgpack.Decoder(Transition)


@dataclass
class MissionRow:
    mission_id: str
    name: str = ""
    status: str = "pending"
    started: float = 0.0
    updated: float = 0.0
    steps: int = 0
    failures: int = 0
    """Step attempts that failed (retried or final)."""
    events: int = 0
    """The mission stream's version: its last event's number."""
    cost_usd: float = 0.0
    cost_tokens: int = 0
    budget_usd: float | None = None
    budget_tokens: int | None = None
    run: int = 1
    waiting_for: str = ""
    detail: str = ""
    """The last transition's reason (a failure's error, a cancel's reason)."""
    recoveries: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    audit_versions: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        del out["audit_versions"]
        return out


@dataclass(frozen=True)
class Page:
    rows: list[MissionRow]
    total: int
    """Missions matching the filters (all pages)."""
    offset: int
    limit: int
    counts: dict[str, int]
    """Missions by status, over all missions (not only the filtered ones)."""
    names: list[str]
    """Every mission definition seen, for the filter."""


class MissionIndex:
    """Rows for every mission of one log; ``refresh`` folds in what is new."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.position = 0
        """Every event before this global position is folded in."""
        self.generation = 0
        """Bumped by each refresh that found something new."""
        self.rows: dict[str, MissionRow] = {}
        self.changed: dict[str, int] = {}
        """Mission id -> the generation that last changed it."""
        self.per_minute: dict[int, list[int]] = {}
        """Minute (epoch // 60) -> [steps completed, step attempts failed]."""
        self.durations: dict[str, deque[float]] = {}
        self._pages: dict[
            tuple[int, str, str, str, str], tuple[list[MissionRow], dict[str, int], list[str]]
        ] = {}
        self._scheduled: dict[tuple[str, int, int, int], float] = {}
        self._finished: dict[tuple[str, int, int, int], tuple[str, float]] = {}

    def refresh(self, store: EventLog) -> bool:
        """Fold in every event journaled since the last refresh; True if any."""
        with self._lock:
            if store.head_position() < self.position:
                return False
            touched: set[str] = set()
            for event in store.read_all(self.position):
                self.position = event.position + 1
                if event.stream.startswith(STREAM_PREFIX):
                    mission_id = event.stream[len(STREAM_PREFIX) :]
                    self._fold(self._row(mission_id), event)
                    touched.add(mission_id)
                elif event.stream == AUDIT_STREAM:
                    touched.update(self._fold_audit(event))
            if not touched:
                return False
            self.generation += 1
            for mission_id in touched:
                self.changed[mission_id] = self.generation
            return True

    def _row(self, mission_id: str) -> MissionRow:
        row = self.rows.get(mission_id)
        if row is None:
            row = self.rows[mission_id] = MissionRow(mission_id)
        return row

    def _fold(self, row: MissionRow, event: RecordedEvent) -> None:
        row.events = max(row.events, event.version)
        row.updated = event.ts
        if not row.started:
            row.started = event.ts
        if row.status == DAMAGED:
            return
        try:
            if event.kind == TRANSITION:
                self._fold_transition(row, _transitions.decode(event.data))
            elif event.kind == RECOVERY:
                row.recoveries += 1
            elif event.kind == "message":
                self._fold_message(row, _messages.decode(event.data))
        except (msgspec.DecodeError, msgspec.ValidationError) as err:
            row.status = DAMAGED
            row.detail = (
                f"undecodable {event.kind} at stream {event.stream!r} version "
                f"{event.version} (position {event.position}): {err}"
            )

    @staticmethod
    def _fold_transition(row: MissionRow, t: Transition) -> None:
        row.status, row.detail, row.waiting_for = t.status, t.reason, t.waiting_for
        row.name = t.name or row.name
        row.run = t.run or row.run
        row.steps = max(row.steps, t.steps)
        row.cost_usd = max(row.cost_usd, t.cost_usd)
        row.cost_tokens = max(row.cost_tokens, t.cost_tokens)
        if t.budget is not None:
            row.budget_usd, row.budget_tokens = t.budget.usd, t.budget.tokens
        row.tags = dict(t.tags) or row.tags
        if t.status == "completed":
            row.detail = ""

    def _fold_message(self, row: MissionRow, msg: Any) -> None:
        if isinstance(msg, Start):
            row.name = msg.mission
            row.tags = dict(msg.tags) or row.tags
            if msg.budget is not None:
                row.budget_usd, row.budget_tokens = msg.budget.usd, msg.budget.tokens
        elif isinstance(msg, NewRun):
            row.run = msg.run
            if msg.budget is not None:
                row.budget_usd, row.budget_tokens = msg.budget.usd, msg.budget.tokens
        elif isinstance(msg, RaiseBudget):
            row.budget_usd = msg.usd if msg.usd is not None else row.budget_usd
            row.budget_tokens = msg.tokens if msg.tokens is not None else row.budget_tokens
        elif isinstance(msg, StepDone):
            row.cost_usd += msg.cost_usd
            row.cost_tokens += msg.cost_tokens
            bucket = self.per_minute.setdefault(int(msg.at // 60), [0, 0])
            if msg.ok:
                row.steps += 1
                bucket[0] += 1
            else:
                row.failures += 1
                bucket[1] += 1
            step = msg.fingerprint.split(" ", 1)[-1].split("#", 1)[0]
            key = (row.mission_id, msg.run or 1, msg.seq, msg.attempt)
            began = self._scheduled.pop(key, None)
            if began is None:
                self._finished[key] = (step, msg.at)
            else:
                self._duration(step, msg.at - began)

    def _fold_audit(self, event: RecordedEvent) -> set[str]:
        touched = set()
        for entry in decode_entries(event.data):
            row = self._row(entry.mission_id)
            if not row.audit_versions or row.audit_versions[-1] != event.version:
                row.audit_versions.append(event.version)
            touched.add(entry.mission_id)
            if entry.kind.endswith(".scheduled"):
                d = entry.detail
                key = (entry.mission_id, entry.run or 1, int(d.get("seq", 0)), d.get("attempt", 1))
                done = self._finished.pop(key, None)
                if done is None:
                    self._scheduled[key] = entry.at
                else:
                    self._duration(done[0], done[1] - entry.at)
        return touched

    def _duration(self, step: str, seconds: float) -> None:
        kept = self.durations.get(step)
        if kept is None:
            kept = self.durations[step] = deque(maxlen=DURATIONS_KEPT)
        kept.append(max(0.0, seconds))

    def page(
        self,
        *,
        status: str = "",
        name: str = "",
        search: str = "",
        tag: str = "",
        offset: int = 0,
        limit: int = 50,
    ) -> Page:
        """One page of missions, newest change first. The filtered, sorted
        list is kept until the next refresh that finds something new, so
        paging through it sorts once."""
        with self._lock:
            key = (self.generation, status, name, search, tag)
            found = self._pages.get(key)
            if found is None:
                rows = [r for r in self.rows.values() if r.events]  # audit-only ids: no missions
                counts = dict(Counter(r.status for r in rows))
                names = sorted({r.name for r in rows if r.name})
                if status:
                    rows = [r for r in rows if r.status == status]
                if name:
                    rows = [r for r in rows if r.name == name]
                if search:
                    rows = [r for r in rows if search in r.mission_id]
                if tag:
                    k, _, v = tag.partition("=")
                    rows = [r for r in rows if r.tags.get(k) == v]
                rows.sort(key=lambda r: (r.updated, r.mission_id), reverse=True)
                if len(self._pages) >= PAGES_KEPT or any(
                    k[0] != self.generation for k in self._pages
                ):
                    self._pages.clear()
                found = self._pages[key] = (rows, counts, names)
            rows, counts, names = found
            chosen = [_copy(r) for r in rows[offset : offset + limit]]
            return Page(chosen, len(rows), offset, limit, dict(counts), list(names))

    def get(self, mission_id: str) -> MissionRow | None:
        with self._lock:
            row = self.rows.get(mission_id)
            return _copy(row) if row is not None and row.events else None

    def changed_since(self, generation: int, mission_id: str | None = None) -> bool:
        with self._lock:
            if mission_id is None:
                return self.generation > generation
            return self.changed.get(mission_id, 0) > generation

    def activity(self, minutes: int, now: float) -> list[tuple[int, int, int]]:
        """``(minute, steps completed, attempts failed)`` for the last ``minutes``."""
        last = int(now // 60)
        with self._lock:
            return [
                (m, *self.per_minute.get(m, (0, 0))) for m in range(last - minutes + 1, last + 1)
            ]

    def step_durations(self) -> dict[str, list[float]]:
        with self._lock:
            return {name: list(kept) for name, kept in sorted(self.durations.items())}


def _copy(row: MissionRow) -> MissionRow:
    return MissionRow(**{**asdict(row), "audit_versions": list(row.audit_versions)})
