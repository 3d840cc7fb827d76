"""Queues with flow control: concurrency (global and per runtime), a rate
limit, priorities and deduplication; enqueued work survives restarts,
crashes and SIGKILLs, and the limits hold however those fall (hypothesis)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aura
from actors import FaultInjector, SimulatedCrash
from aura import MissionStatus as S
from aura.core._queues import DISPATCHED, Dispatched
from aura.testing import VirtualClock
from eventstore import EventStore

from . import queue_missions as qm
from .queue_log import check_queue_log

NODE = Path(__file__).parent / "children" / "queue_node.py"
ROOT = Path(__file__).resolve().parent.parent.parent


def release(rt: aura.Runtime, mission_id: str) -> None:
    """Let a running gate mission finish (once it waits for its signal)."""
    if rt.wait(mission_id, until={S.WAITING, S.COMPLETED}, timeout=30).status is S.WAITING:
        rt.signal(mission_id, "go")  # (one already completed may still hold its slot a moment)
    assert rt.wait(mission_id, timeout=30).status is S.COMPLETED


def test_no_more_than_concurrency_run_and_the_rest_wait_their_turn(tmp_path: Path) -> None:
    q = aura.Queue("q", concurrency=3)
    with aura.Runtime(tmp_path, missions=qm.ALL, queues=[q]) as rt:
        ids = [rt.enqueue(q, qm.gate, mission_id=f"g{i}").mission_id for i in range(8)]
        view = rt.queue("q")
        assert (view.running, view.waiting) == (ids[:3], ids[3:])
        waiting = rt.get("g5")
        assert (waiting.status, waiting.waiting_for) == (S.PENDING, "queue 'q'")
        for mission_id in ids:  # each one freed lets the next in
            release(rt, mission_id)
    with aura.Runtime(tmp_path, missions=qm.ALL, queues=[q]) as rt:
        # A slot freed after its mission settled (or, had it not been yet, by recovery).
        assert rt.queue("q").running == []
        assert list(check_queue_log(rt.store, "q", 3)) == ids


def test_priority_decides_who_starts_next_then_enqueue_order(tmp_path: Path) -> None:
    q = aura.Queue("q", concurrency=1)
    with aura.Runtime(tmp_path, missions=qm.ALL, queues=[q]) as rt:
        rt.enqueue(q, qm.gate, mission_id="first")
        for name, priority in [("low", 5), ("high-a", 1), ("high-b", 1), ("top", -3)]:
            rt.enqueue("q", qm.gate, mission_id=name, priority=priority)
        assert rt.queue("q").waiting == ["top", "high-a", "high-b", "low"]
        for name in ["first", "top", "high-a", "high-b", "low"]:
            release(rt, name)
        assert list(check_queue_log(rt.store, "q", 1)) == [
            "first",
            "top",
            "high-a",
            "high-b",
            "low",
        ]


def test_per_runtime_limit(tmp_path: Path) -> None:
    q = aura.Queue("q", per_runtime=2)
    with aura.Runtime(tmp_path, missions=qm.ALL, queues=[q]) as rt:
        for i in range(5):
            rt.enqueue(q, qm.gate, mission_id=f"g{i}")
        assert rt.queue("q").running == ["g0", "g1"]
        for i in range(5):
            release(rt, f"g{i}")
        check_queue_log(rt.store, "q", 2)


def test_the_rate_limit_spaces_starts_into_windows(tmp_path: Path) -> None:
    clock = VirtualClock()
    q = aura.Queue("q", rate=(2, 60.0))
    with aura.Runtime(tmp_path, missions=qm.ALL, queues=[q], clock=clock) as rt:
        t0 = clock()
        handles = [rt.enqueue(q, qm.quick, i) for i in range(7)]
        assert [h.result(timeout=30) for h in handles] == list(range(7))
        assert clock() - t0 >= 180  # 2 + 2 + 2 + 1: three more windows of virtual time
        times = [
            msgspec.msgpack.decode(e.data, type=Dispatched).at
            for e in rt.store.read("queue/q")
            if e.kind == DISPATCHED
            for _ in msgspec.msgpack.decode(e.data, type=Dispatched).mission_ids
        ]
        assert len(times) == 7
        for i, at in enumerate(times):  # never more than 2 starts in any 60 s
            assert sum(1 for other in times[i:] if other < at + 60.0) <= 2


def test_a_dedup_id_is_refused_while_its_mission_waits_or_runs(tmp_path: Path) -> None:
    q = aura.Queue("q", concurrency=1)
    with aura.Runtime(tmp_path, missions=qm.ALL, queues=[q]) as rt:
        rt.enqueue(q, qm.gate, mission_id="a", dedup_id="user-7")
        with pytest.raises(aura.QueueDeduplicatedError, match="taken by mission 'a'") as err:
            rt.enqueue(q, qm.gate, mission_id="b", dedup_id="user-7")
        assert (err.value.queue, err.value.dedup_id, err.value.mission_id) == ("q", "user-7", "a")
        release(rt, "a")
        rt.enqueue(q, qm.gate, mission_id="c", dedup_id="user-7")  # free again once it ended
        release(rt, "c")


def test_enqueue_is_idempotent_per_id_and_refuses_other_input(tmp_path: Path) -> None:
    q = aura.Queue("q")
    with aura.Runtime(tmp_path, missions=qm.ALL, queues=[q]) as rt:
        assert rt.enqueue(q, qm.quick, 1, mission_id="x").result(timeout=30) == 1
        assert rt.enqueue(q, qm.quick, 1, mission_id="x").result(timeout=30) == 1
        kinds = [e.kind for e in rt.store.read("queue/q")]
        assert kinds.count("enqueued") == kinds.count("dispatched") == 1  # once, and run once
        with pytest.raises(aura.AuraError, match="enqueued with other input"):
            rt.enqueue(q, qm.quick, 2, mission_id="x")


def test_bad_input_is_refused_before_anything_is_journaled(tmp_path: Path) -> None:
    with pytest.raises(aura.AuraError, match="concurrency must be a int > 0"):
        aura.Queue("q", concurrency=0)
    with pytest.raises(aura.AuraError, match="rate must be"):
        aura.Queue("q", rate=5)  # type: ignore[arg-type]
    with pytest.raises(aura.AuraError, match="non-empty str without '/'"):
        aura.Queue("a/b")
    q = aura.Queue("q")
    with aura.Runtime(tmp_path, missions=qm.ALL, queues=[q]) as rt:
        head = rt.store.head_position()
        with pytest.raises(aura.AuraError, match=r"no queue 'nope' in this runtime \(queues: q\)"):
            rt.enqueue("nope", qm.quick, 1)
        with pytest.raises(aura.AuraError, match="priority= must be an int"):
            rt.enqueue(q, qm.quick, 1, priority="high")
        with pytest.raises(aura.AuraError, match="cannot be journaled"):
            rt.enqueue(q, qm.quick, object())
        assert rt.store.head_position() == head


def test_waiting_and_running_work_survives_a_restart(tmp_path: Path) -> None:
    q = aura.Queue("q", concurrency=2)
    with aura.Runtime(tmp_path, missions=qm.ALL, queues=[q]) as rt:
        for i in range(5):
            rt.enqueue(q, qm.gate, mission_id=f"g{i}", priority=-i)
    with aura.Runtime(tmp_path, missions=qm.ALL, queues=[q]) as rt:
        view = rt.queue("q")
        assert (view.running, view.waiting) == (["g0", "g1"], ["g4", "g3", "g2"])
        for name in ["g0", "g1", "g4", "g3", "g2"]:
            release(rt, name)
        check_queue_log(rt.store, "q", 2)


def test_a_mission_enqueues_once_even_when_replayed(tmp_path: Path) -> None:
    q = aura.Queue("q", concurrency=2)
    with aura.Runtime(tmp_path, missions=qm.ALL, queues=[q]) as rt:
        ids = rt.start(qm.enqueuer, 3, mission_id="e").result(timeout=30)
        assert ids[:3] == ["e.1.0", "e.1.1", "e.1.2"]
        assert ids[3] == "dedup once held by e.1.3"
        assert [rt.wait(i, timeout=30).result for i in ids[:3]] == [0, 1, 2]
        release(rt, "e.1.3")
    with aura.Runtime(tmp_path, missions=qm.ALL, queues=[q]) as rt:
        assert rt.get("e").result == ids
        check_queue_log(rt.store, "q", 2)
        assert len([e for e in rt.store.read("queue/q") if e.kind == "enqueued"]) == 4


@settings(
    max_examples=int(os.environ.get("AURA_QUEUE_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    concurrency=st.integers(1, 3),
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("enqueue"), st.integers(-2, 2)),
            st.tuples(st.just("release"), st.integers(0, 5)),
            st.tuples(st.just("restart"), st.just(0)),
            st.tuples(st.just("crash"), st.integers(1, 2)),
        ),
        min_size=1,
        max_size=14,
    ),
)
def test_queue_limits_hold_under_random_starts_and_crashes(
    tmp_path_factory: pytest.TempPathFactory, concurrency: int, ops: list[tuple[str, int]]
) -> None:
    """Random enqueues (with priorities), releases, restarts and crashes at the
    moment slots were handed out but their missions not yet started: the
    log never shows more than ``concurrency`` slots taken, every mission
    starts once and after its slot, and in the end all of them complete."""
    data = tmp_path_factory.mktemp("queue")
    q = aura.Queue("q", concurrency=concurrency)
    faults = FaultInjector()
    main = threading.current_thread()
    enqueued: list[str] = []

    def open_rt() -> aura.Runtime:
        while True:
            try:
                return aura.Runtime(data, missions=qm.ALL, queues=[q], faults=faults)
            except (SimulatedCrash, aura.AuraError):
                continue  # died while recovering: a crash plan fired; open again

    rt = open_rt()
    try:
        for op, arg in ops:
            if op == "enqueue":
                mission_id = f"m{len(enqueued)}"
                enqueued.append(mission_id)
                try:
                    rt.enqueue(q, qm.gate, mission_id=mission_id, priority=arg)
                except SimulatedCrash:
                    rt.close()  # a death: what is journaled stays, the rest is gone
                    faults.set_plan(None)
                    rt = open_rt()
            elif op == "release":
                running = rt.queue("q").running
                if running:
                    release(rt, running[arg % len(running)])
            elif op == "restart":
                rt.close()
                rt = open_rt()
            else:  # crash the arg-th time slots are handed out from now on
                hits = [0]

                def plan(
                    point: str, where: str, hit: int, hits: list[int] = hits, nth: int = arg
                ) -> bool:
                    # Only where this test calls in: a crash there is a death it handles.
                    if point != "queue_dispatched" or threading.current_thread() is not main:
                        return False
                    hits[0] += 1
                    return hits[0] == nth

                faults.set_plan(plan)
        faults.set_plan(None)
        rt.close()
        rt = open_rt()
        # Drain: release whoever holds a slot, else the next to get one (each
        # release waits, up to 30 s, for its mission to run: a queue that stopped
        # handing out slots fails here).
        while pending := [m for m in enqueued if rt.get(m).status is not S.COMPLETED]:
            view = rt.queue("q")
            for mission_id in view.running or view.waiting[:1] or pending[:1]:
                release(rt, mission_id)
        check_queue_log(rt.store, "q", concurrency)
        assert {v.mission_id for v in rt.missions(status=S.COMPLETED)} == set(enqueued)
    finally:
        rt.close()


def run_node(data: Path, mode: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(NODE), str(data), mode],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_sigkill_after_a_batch_got_its_slots_starts_each_once(tmp_path: Path) -> None:
    """Nine missions wait (a rate limit held them); the next process hands 4
    slots out in one record and is SIGKILLed before any of the 4 starts: the
    restart starts each once, and all finish, in order."""
    data = tmp_path / "data"
    enqueued = run_node(data, "enqueue")
    assert enqueued.returncode == 0, enqueued.stderr
    killed = run_node(data, "kill")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with EventStore.open(data / "events", readonly=True) as store:
        started = sorted(s for s in store.streams() if s.startswith("mission/"))
        last = list(store.read("queue/q"))[-1]
        assert started == ["mission/j0"]  # the 4 got slots, none started
        assert last.kind == "dispatched"
        assert msgspec.msgpack.decode(last.data)["mission_ids"] == ["j1", "j2", "j3", "j4"]
    done = run_node(data, "finish")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [f"RESULT{i}" for i in range(10)]
    with EventStore.open(data / "events", readonly=True) as store:
        order = check_queue_log(store, "q", 4)
    assert list(order) == [f"j{i}" for i in range(10)]
