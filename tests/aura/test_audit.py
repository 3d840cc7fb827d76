"""The audit chain: one entry per journaled mission event, in the same
commit, hash-chained; verify finds tampering on disk; the CLI reports it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lmdb
import msgspec
import pytest

import aura
from aura.core._messages import Signal
from aura.governance._audit import (
    AUDIT_STREAM,
    AuditEntry,
    audit_event,
    bundle,
    decode_entries,
    merge_bundles,
)
from eventstore import EventStore, NewEvent, RecordedEvent

from .missions import approval, arithmetic, fails
from .test_cli import aura_cli


def entries(path: Path) -> list[AuditEntry]:
    with EventStore.open(path / "events", readonly=True) as store:
        return [a for e in store.read(AUDIT_STREAM) for a in decode_entries(e.data)]


def test_every_journaled_event_has_exactly_one_entry(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[arithmetic, approval, fails]) as rt:
        rt.start(arithmetic, 2, mission_id="a").result(timeout=30)
        rt.start(approval, None, mission_id="b")
        rt.signal("b", "approve", True)
        rt.signal("b", "note", "ok")
        rt.handle("b").result(timeout=30)
        with pytest.raises(aura.MissionFailedError):
            rt.start(fails, False, mission_id="c").result(timeout=30)
        report = rt.verify_audit()
    assert report.ok, report
    kinds = [(e.mission_id, e.kind) for e in entries(tmp_path)]
    a = [k for m, k in kinds if m == "a"]
    assert a == [
        "mission.started",
        "mission.transition",  # running
        "step.scheduled",  # scheduled entries ride with the next commit: the outcome
        "step.completed",
        "step.scheduled",
        "step.completed",
        "step.scheduled",  # the gather's three doubles
        "step.scheduled",
        "step.scheduled",
        "step.completed",
        "step.completed",
        "step.completed",
        "mission.transition",  # completed
    ]
    scheduled = [e for e in entries(tmp_path) if e.mission_id == "a" and e.kind == "step.scheduled"]
    assert [e.detail["seq"] for e in scheduled] == [0, 1, 2, 3, 4]
    assert all(e.detail["fingerprint"].startswith("step tests.aura.missions:") for e in scheduled)
    assert ("b", "signal.received") in kinds
    assert ("c", "step.failed") in kinds
    statuses = [
        (e.mission_id, e.detail["status"])
        for e in entries(tmp_path)
        if e.kind == "mission.transition"
    ]
    assert ("c", "failed") in statuses and ("b", "completed") in statuses
    assert report.entries == len(kinds)


def test_a_start_commits_its_running_transition_with_it(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[approval]) as rt:
        rt.start(approval, None, mission_id="s")
        rt.start(approval, None, mission_id="s")  # idempotent: journals nothing
        assert rt.get("s").status in (aura.MissionStatus.RUNNING, aura.MissionStatus.WAITING)
    with EventStore.open(tmp_path / "events", readonly=True) as store:
        log = list(store.read("mission/s"))
        commits = [
            [(a.kind, a.version) for a in decode_entries(e.data) if a.mission_id == "s"]
            for e in store.read(AUDIT_STREAM)
        ]
    assert [e.kind for e in log[:2]] == ["message", "transition"]
    assert msgspec.msgpack.decode(log[1].data)["status"] == "running"
    statuses = [msgspec.msgpack.decode(e.data)["status"] for e in log if e.kind == "transition"]
    assert statuses == ["running", "waiting"]  # the second start made none
    # One $audit event per commit: the Start and its transition share one.
    assert commits[0] == [("mission.started", 1), ("mission.transition", 2)]
    assert sum(kind == "mission.started" for c in commits for kind, _ in c) == 1


@aura.mission
async def listens(ctx: aura.MissionContext) -> Any:
    return await ctx.wait_signal("go")


def test_a_batch_of_missions_commits_one_audit_record(tmp_path: Path) -> None:
    """What the outbox does with step outcomes, done here with signals: one
    ``ask_many`` for several missions is one commit and one ``$audit`` event."""
    with aura.Runtime(tmp_path, missions=[listens]) as rt:
        handles = [rt.start(listens, mission_id=f"m{i}") for i in range(3)]  # each waits
        batch = [(f"mission/m{i}", Signal("go", i, 1.0)) for i in range(3)]
        rt.system.ask_many(batch)
        assert [h.result(timeout=30) for h in handles] == [0, 1, 2]
        assert rt.verify_audit().ok
    with EventStore.open(tmp_path / "events", readonly=True) as store:
        commits = [
            [(a.mission_id, a.kind) for a in decode_entries(e.data)]
            for e in store.read(AUDIT_STREAM)
        ]
    received = [c for c in commits if ("m0", "signal.received") in c]
    assert received == [[(f"m{i}", "signal.received") for i in range(3)]]
    # Their transitions (to RUNNING, then COMPLETED) were deferred to one
    # commit after the batch: one record for the three of them too.
    settled = [c for c in commits if ("m1", "mission.transition") in c and len(c) > 2]
    assert settled == [[(f"m{i}", "mission.transition") for i in range(3) for _ in range(2)]]


@pytest.mark.parametrize("sizes", [[1, 2], [7, 9], [15, 1], [200, 40000, 30000], [0, 3]])
def test_merged_bundles_hold_every_entry_in_order(sizes: list[int]) -> None:
    """Bundles are joined as msgpack bytes; the array header must grow with
    the count (fixarray below 16, 16-bit below 65,536, then 32-bit)."""
    bundles = [
        [audit_event("step.completed", f"b{b}", 1, v, 0.0, seq=v) for v in range(n)]
        for b, n in enumerate(sizes)
    ]
    merged = merge_bundles([bundle(entries) for entries in bundles])
    assert len(merged) == 1
    assert decode_entries(merged[0].data) == [e for entries in bundles for e in entries]
    with pytest.raises(ValueError, match="not a msgpack array"):
        merge_bundles([bundle(bundles[0]), NewEvent("audit", b"\x80")])


def _tamper(path: Path, version: int, change: Any) -> None:
    """Rewrite audit entry ``version`` on disk, as an attacker with the file would."""
    env = lmdb.open(str(path / "events"), max_dbs=8)
    with env.begin(write=True) as txn:  # the log is LMDB's main database
        for key, value in txn.cursor():
            if key[:1] != b"p":
                continue
            event = msgspec.msgpack.decode(value[1:], type=RecordedEvent)
            if event.stream == AUDIT_STREAM and event.version == version:
                txn.put(key, value[:1] + msgspec.msgpack.encode(change(event)))
                break
        else:
            raise AssertionError(f"no audit entry {version}")
    env.close()


def test_an_edited_entry_on_disk_is_found_by_api_and_cli(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[arithmetic]) as rt:
        rt.start(arithmetic, 3, mission_id="a").result(timeout=30)
    clean = aura_cli("--data", str(tmp_path), "audit", "verify")
    assert clean.returncode == 0, clean.stderr
    assert "audit chain OK: 15 entries" in clean.stdout

    def forge(event: RecordedEvent) -> RecordedEvent:
        first, *rest = decode_entries(event.data)
        forged = msgspec.structs.replace(first, detail={**first.detail, "attempt": 99})
        return msgspec.structs.replace(event, data=msgspec.msgpack.encode([forged, *rest]))

    _tamper(tmp_path, 4, forge)
    with EventStore.open(tmp_path / "events", readonly=True) as store:
        report = aura.verify_audit(store)
    assert not report.ok and report.bad_version == 4 and report.entries == 6  # in events 1-3
    broken = aura_cli("--data", str(tmp_path), "audit", "verify")
    assert broken.returncode == 1
    assert "record 4" in broken.stderr and "edited" in broken.stderr
    as_json = aura_cli("--data", str(tmp_path), "audit", "verify", "--json")
    assert json.loads(as_json.stdout)["bad_version"] == 4


def test_export_is_json_lines_in_chain_order(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[arithmetic]) as rt:
        rt.start(arithmetic, 1, mission_id="a").result(timeout=30)
    out = aura_cli("--data", str(tmp_path), "audit", "export")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    order = [(r["seq"], r["index"]) for r in rows]
    assert order == sorted(order) and len(set(order)) == len(rows)
    assert {r["seq"] for r in rows} == set(range(1, rows[-1]["seq"] + 1))
    assert rows[0]["kind"] == "mission.started" and rows[0]["mission_id"] == "a"
    assert all(len(r["digest"]) == 64 for r in rows)
