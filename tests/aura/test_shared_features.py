"""Children, queues and schedules on runtimes sharing one PostgreSQL store
(``shared=True``): the limits and the once-only guarantees hold between
runtimes, not only inside one; a parent's children go on when the runtime
they started on stops; a cancel from another runtime cascades."""

from __future__ import annotations

import calendar
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import aura
from aura import MissionStatus as S
from aura.core._schedules import tick_id
from aura.testing import VirtualClock

from . import children_missions as cm
from . import queue_missions as qm
from . import schedule_missions as sm
from .queue_log import check_queue_log
from .test_schedules import tick_missions

ALL = [*cm.ALL, *qm.ALL, sm.on_tick]


@pytest.fixture
def where(pg_server_url: str, pg_schema: str) -> Iterator[dict[str, Any]]:
    yield {"store": pg_server_url, "schema": pg_schema}


def shared(where: dict[str, Any], **options: Any) -> aura.Runtime:
    return aura.Runtime(**where, missions=ALL, shared=True, lease_ttl=2, heartbeat=0.2, **options)


def test_a_queue_limit_holds_between_runtimes_and_each_mission_starts_once(
    where: dict[str, Any],
) -> None:
    q = aura.Queue("q", concurrency=2)
    with shared(where, queues=[q]) as a, shared(where, queues=[q]) as b:
        ids = [f"g{i}" for i in range(10)]
        for i, mission_id in enumerate(ids):  # both enqueue, interleaved
            (a if i % 2 else b).enqueue(q, qm.gate, mission_id=mission_id)
        assert len(a.queue("q").running) == 2
        ran_on: dict[str, str] = {}
        for n, mission_id in enumerate(ids):  # released from either runtime, in turn
            rt = b if n % 2 else a
            rt.wait(mission_id, until={S.WAITING}, timeout=60)
            assert len(rt.queue("q").running) <= 2
            holders = [
                name for name, x in (("a", a), ("b", b)) if x._sharing.leases.holds(mission_id)
            ]
            assert len(holders) == 1, holders  # one runtime runs it
            ran_on[mission_id] = holders[0]
            rt.signal(mission_id, "go")
            assert rt.handle(mission_id).result(timeout=60) == f"ran {mission_id}"
        order = check_queue_log(a.store, "q", 2)  # never more than 2 slots, each start once
        assert sorted(order) == sorted(ids)
        assert set(ran_on.values()) == {"a", "b"}  # both runtimes dispatched and ran some


def test_a_dedup_id_is_held_across_runtimes(where: dict[str, Any]) -> None:
    q = aura.Queue("q", concurrency=1)
    with shared(where, queues=[q]) as a, shared(where, queues=[q]) as b:
        a.enqueue(q, qm.gate, mission_id="first", dedup_id="nightly")
        with pytest.raises(aura.QueueDeduplicatedError) as refused:
            b.enqueue(q, qm.gate, mission_id="second", dedup_id="nightly")
        assert refused.value.mission_id == "first"
        a.wait("first", until={S.WAITING}, timeout=60)
        b.signal("first", "go")
        assert a.handle("first").result(timeout=60) == "ran first"
        check_queue_log(a.store, "q", 1)


def test_children_go_on_when_the_runtime_they_started_on_stops(where: dict[str, Any]) -> None:
    b = shared(where)
    try:
        with shared(where, max_missions=100) as a:
            a.start(cm.awaits_waiter, "cancel", mission_id="parent")
            assert cm.REACHED["w"].wait(60)
            assert a.wait("w", until={S.WAITING}, timeout=60).status is S.WAITING
            assert a.get("parent").waiting_for == "child mission 'w'"
        # a closed and handed parent and child back: b takes both and goes on.
        b.signal("w", "go", "from b")
        assert b.handle("w").result(timeout=60) == "from b"
        assert b.handle("parent").result(timeout=60) == "from b"
        assert b.system.exists("mission/parent")
    finally:
        b.close()


def test_cancelling_a_parent_from_another_runtime_cancels_its_child(
    where: dict[str, Any],
) -> None:
    with shared(where) as a, shared(where, max_missions=0) as client:
        a.start(cm.grandparent, mission_id="top")
        assert cm.REACHED["w"].wait(60)
        client.cancel("top", "not needed")
        for mission_id in ("top", "mid", "w"):
            assert client.wait(mission_id, timeout=60).status is S.CANCELLED


def test_fan_out_from_one_runtime_is_gathered_whoever_runs_the_children(
    where: dict[str, Any],
) -> None:
    with shared(where) as a, shared(where):
        a.start(cm.fan_out, 20, mission_id="fan")
        assert a.handle("fan").result(timeout=120) == [3 * i for i in range(20)]


def test_two_runtimes_opening_at_once_start_each_missed_tick_once(where: dict[str, Any]) -> None:
    t0 = calendar.timegm((2026, 1, 1, 0, 30, 0))
    clock = VirtualClock(t0)
    hourly = aura.Schedule("hourly", sm.on_tick, "0 * * * *", args=("h",), catch_up="all")
    with shared(where, clock=clock, schedules=[hourly]):
        pass  # registers the schedule
    clock.advance(3 * 3600)  # 01:00, 02:00 and 03:00 were missed
    opened: list[aura.Runtime] = []
    gate = threading.Barrier(2)

    def open_one() -> None:
        gate.wait()
        opened.append(shared(where, clock=clock, schedules=[hourly]))

    threads = [threading.Thread(target=open_one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len(opened) == 2
        expected = [tick_id("hourly", t0 + 30 * 60 + h * 3600) for h in range(3)]
        for mission_id in expected:
            assert opened[0].wait(mission_id, timeout=60).status is S.COMPLETED
        assert tick_missions(opened[0].store) == dict.fromkeys(expected, 1)
        for rt in opened:
            assert rt.schedules()[0].last_tick == t0 + 30 * 60 + 2 * 3600
    finally:
        for rt in opened:
            rt.close()
