"""Continue-as-new and compaction: unbounded missions, bounded hot history,
nothing lost or duplicated across runs, crashes and archive moves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aura
from actors import CrashAt, FaultInjector
from aura.core._messages import MissionMessage, NewRun
from eventstore import EventStore

from . import missions as m
from .test_cli import aura_cli


def runs_in_log(path: Path, mission_id: str) -> list[int]:
    decoder = msgspec.msgpack.Decoder(MissionMessage)
    with EventStore.open(path / "events", readonly=True) as store:
        return [
            msg.run
            for e in store.read(f"mission/{mission_id}", archived=True)
            if e.kind == "message" and isinstance(msg := decoder.decode(e.data), NewRun)
        ]


def hot_events(path: Path, mission_id: str) -> int:
    with EventStore.open(path / "events", readonly=True) as store:
        info = store.stream_info(f"mission/{mission_id}")
        assert info is not None
        return info.version - info.archived_upto


def test_a_long_loop_continues_as_new_and_keeps_its_memory(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.looper], archive_completed_after=None) as rt:
        result = rt.start(m.looper, 0, 100, mission_id="l").result(timeout=60)
        assert result["acc"] == sum(range(100))
        assert result["run"] > 3
        rt.compact(completed_after=None)  # what the compactor does after each run
        assert rt.get("l").memory == {"acc": sum(range(100))}
        assert rt.verify_audit().ok
    assert runs_in_log(tmp_path, "l") == list(range(2, result["run"] + 1))
    assert hot_events(tmp_path, "l") <= 45  # one run's worth, not 100 steps' worth
    with aura.Runtime(tmp_path, missions=[m.looper]) as rt:  # read back from the snapshot
        assert rt.get("l").result == result
    full = aura_cli("--data", str(tmp_path), "history", "l", "--archived", "--json")
    hot = aura_cli("--data", str(tmp_path), "history", "l", "--json")
    assert full.stdout.count("\n") > 3 * hot.stdout.count("\n")


def test_auto_continue_restarts_from_memory(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.auto_loop]) as rt:
        result = rt.start(m.auto_loop, 30, mission_id="a").result(timeout=60)
    assert result["acc"] == sum(range(30)) and result["run"] > 3
    assert len(set(runs_in_log(tmp_path, "a"))) == len(runs_in_log(tmp_path, "a"))


def test_a_restart_mid_mission_resumes_from_the_latest_run(tmp_path: Path) -> None:
    m.GATES["g"] = gate = __import__("threading").Event()

    @aura.mission(name="tests:gated_loop", history_limit=10)
    async def gated_loop(ctx: aura.MissionContext, left: int) -> int:
        for _ in range(3):
            await ctx.step(m.add, 1, 1)
        if left:
            ctx.continue_as_new(left - 1)
        await ctx.step(m.gated, "g")
        return ctx.info.run

    with aura.Runtime(tmp_path, missions=[gated_loop]) as rt:
        rt.start(gated_loop, 4, mission_id="r")
        m.wait_call(("gated", "r/5/3"))  # the fifth run is waiting on the gate
    with aura.Runtime(tmp_path, missions=[gated_loop]) as rt:
        gate.set()
        assert rt.handle("r").result(timeout=30) == 5
    assert runs_in_log(tmp_path, "r") == [2, 3, 4, 5]


POINTS = ["before_append", "after_append", "in_handler", "during_recovery"]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.sets(st.tuples(st.sampled_from(POINTS), st.integers(1, 80)), max_size=4))
def test_crashes_across_continue_as_new_change_nothing(
    tmp_path_factory: pytest.TempPathFactory, schedule: set[tuple[str, int]]
) -> None:
    path = tmp_path_factory.mktemp("can")
    faults = FaultInjector(CrashAt(schedule))
    with aura.Runtime(path, missions=[m.auto_loop], faults=faults) as rt:
        result = rt.start(m.auto_loop, 12, mission_id="c").result(timeout=60)
        assert rt.verify_audit().ok
        view = rt.get("c")
    assert result["acc"] == sum(range(12))
    assert view.memory == {"acc": sum(range(12)), "i": 12}
    runs = runs_in_log(path, "c")
    assert runs == list(range(2, result["run"] + 1)), (runs, faults.crashes)


def test_compaction_crash_between_archive_moves_loses_nothing(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.looper], archive_completed_after=None) as rt:
        expected: dict[str, Any] = rt.start(m.looper, 0, 60, mission_id="k").result(timeout=60)
    # A compaction is one archive op per stream; run it twice (as after a crash
    # and a restart) and from another process: same log, nothing moved twice.
    done = aura_cli("--data", str(tmp_path), "compact")
    assert done.returncode == 0, done.stderr
    assert "archived" in done.stdout
    again = aura_cli("--data", str(tmp_path), "compact")
    assert "0 events" in again.stdout
    with aura.Runtime(tmp_path, missions=[m.looper]) as rt:
        assert rt.get("k").result == expected
        assert rt.verify_audit().ok
    assert hot_events(tmp_path, "k") == 1  # only the verdict stays hot


def test_a_hundred_thousand_steps_keep_hot_history_bounded(tmp_path: Path) -> None:
    @aura.mission(name="tests:long_haul", history_limit=1000)
    async def long_haul(ctx: aura.MissionContext, start: int, end: int) -> int:
        acc = ctx.memory.get("acc", 0)
        for i in range(start, end):
            acc = await ctx.step(m.noop_add, acc, i)
            if ctx.info.continue_as_new_suggested and i + 1 < end:
                ctx.memory["acc"] = acc
                ctx.continue_as_new(i + 1, end)
        return int(acc)

    with aura.Runtime(
        tmp_path, missions=[long_haul], durability="async", archive_completed_after=None
    ) as rt:
        h = rt.start(long_haul, 0, 100_000, mission_id="big")
        assert h.result(timeout=600) == sum(range(100_000))
        rt.compact(completed_after=None)
        info = rt.store.stream_info("mission/big")
        assert info is not None and info.version > 100_000
        assert info.version - info.archived_upto <= 1005  # hot: the last run only
        audit = rt.store.stream_info("$audit")
        assert audit is not None and audit.version - audit.archived_upto <= 10_000
        assert rt.verify_audit().ok  # archived entries included


def test_retention_deletes_old_archives_and_the_audit_still_verifies(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.looper], archive_completed_after=None) as rt:
        rt.start(m.looper, 0, 100, mission_id="keep")
        result = rt.handle("keep").result(timeout=60)
        kept = rt.compact(completed_after=None)  # the finished runs are archived, kept
        archived = rt.store.stream_info("mission/keep")
        assert kept.purged == 0 and archived is not None and archived.archived_upto > 0
        gone = rt.compact(completed_after=None, retention=0)  # now delete them
        assert gone.purged > 0
        info = rt.store.stream_info("mission/keep")
        assert info is not None and info.purged_upto > 0
        assert rt.verify_audit().ok  # their audit entries stay and still verify
    with aura.Runtime(tmp_path, missions=[m.looper]) as rt:  # still readable, recoverable
        assert rt.get("keep").result == result
    out = aura_cli("--data", str(tmp_path), "compact", "--retention", "0")
    assert out.returncode == 0 and "deleted" in out.stdout
    assert aura_cli("--data", str(tmp_path), "audit", "verify").returncode == 0
