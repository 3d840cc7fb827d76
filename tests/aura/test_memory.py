"""ctx.memory: journaled, audited, read-your-writes, survives crashes."""

from __future__ import annotations

import threading
from pathlib import Path

import msgspec
import pytest

import aura
from actors import CrashAt, FaultInjector
from aura.governance._audit import AUDIT_STREAM, decode_entries
from aura.governance._memory import MemoryWrite
from eventstore import EventStore

from . import missions as m
from .test_cli import aura_cli

EXPECTED = {
    "notes": [3, {"source": "add"}],
    "refused": "ctx.memory['bad']",
    "topic": "lmdb",
}


def test_writes_are_visible_at_once_journaled_and_audited(tmp_path: Path) -> None:
    m.GATES["r"] = threading.Event()
    with aura.Runtime(tmp_path, missions=[m.remembers]) as rt:
        h = rt.start(m.remembers, "lmdb", mission_id="r")
        m.wait_call(("gated", "r/1/1"))
        assert rt.get("r").memory == EXPECTED  # live, from the running mission
        m.GATES["r"].set()
        assert h.result(timeout=30) == EXPECTED
        assert rt.verify_audit().ok
    with EventStore.open(tmp_path / "events", readonly=True) as store:
        writes = [
            msgspec.msgpack.decode(e.data, type=MemoryWrite)
            for e in store.read("mission/r")
            if e.kind == "memory"
        ]
        audit = [a for e in store.read(AUDIT_STREAM) for a in decode_entries(e.data)]
    assert [(w.key, w.deleted) for w in writes] == [
        ("topic", False),
        ("notes", False),
        ("scratch", False),
        ("scratch", True),
        ("refused", False),
    ]  # the refused value and the delete of a missing key wrote nothing
    memory_entries = [e for e in audit if e.kind.startswith("memory.")]
    assert [e.kind for e in memory_entries] == ["memory.set"] * 3 + ["memory.delete", "memory.set"]
    assert [e.detail["digest"] for e in memory_entries] == [w.digest() for w in writes]
    with aura.Runtime(tmp_path, missions=[]) as rt:  # a finished mission needs no code
        assert rt.get("r").memory == EXPECTED
    shown = aura_cli("--data", str(tmp_path), "show", "r", "--json")
    assert msgspec.json.decode(shown.stdout)["memory"] == EXPECTED


@pytest.mark.parametrize("hit", [1, 2])
def test_writes_a_crash_kept_out_of_the_log_are_journaled_on_recovery(
    tmp_path: Path, hit: int
) -> None:
    faults = FaultInjector(CrashAt({("in_handler", hit)}))
    with aura.Runtime(tmp_path, missions=[m.remembers], faults=faults) as rt:
        assert rt.start(m.remembers, "lmdb", mission_id="r").result(timeout=30) == EXPECTED
        assert faults.crashes  # the crash hit between a message and its memory writes
        assert rt.verify_audit().ok
    with EventStore.open(tmp_path / "events", readonly=True) as store:
        keys = [
            msgspec.msgpack.decode(e.data, type=MemoryWrite).key
            for e in store.read("mission/r")
            if e.kind == "memory"
        ]
    assert keys == ["topic", "notes", "scratch", "scratch", "refused"]  # once each


def test_bad_keys_are_refused_at_the_write(tmp_path: Path) -> None:
    @aura.mission(name="tests:bad_key")
    async def bad_key(ctx: aura.MissionContext) -> str:
        try:
            ctx.memory[""] = 1
        except aura.MemoryValueError as err:
            return str(err)
        return "accepted"

    with aura.Runtime(tmp_path, missions=[bad_key]) as rt:
        assert "non-empty str" in rt.start(bad_key, mission_id="k").result(timeout=30)
