"""Several runtimes sharing one PostgreSQL store (``shared=True``), in one
process: each mission runs on the runtime holding its lease, starts and
commands reach it from any runtime, a stopping runtime hands its missions
to the others, and the two ways of serving a store exclude each other.
An LMDB directory can be opened once per process: its runtimes share it
from worker processes (``test_lmdb_workers.py``). The multi-process crash
tests (SIGKILL, SIGSTOP) are in ``test_shared_workers.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import aura
from aura import MissionStatus as S
from aura.engine._ownership import DirectoryLockedError
from aura.engine._store_lease import StoreOwnedError, StoreSharedError

from . import missions as m


@pytest.fixture
def where(pg_server_url: str, pg_schema: str) -> Iterator[dict[str, Any]]:
    yield {"store": pg_server_url, "schema": pg_schema}


def shared(where: dict[str, Any], **options: Any) -> aura.Runtime:
    options.setdefault("missions", [m.approval, m.arithmetic])
    return aura.Runtime(
        **where,
        shared=True,
        lease_ttl=2,
        heartbeat=0.4,
        **options,
    )


def test_a_mission_runs_where_it_started_and_is_seen_and_steered_from_another_runtime(
    where: dict[str, Any],
) -> None:
    with shared(where) as a, shared(where) as b:
        a.start(m.approval, None, mission_id="r")
        a.wait("r", 30, until={S.WAITING})
        assert a._sharing.leases.holds("r") and not b._sharing.leases.holds("r")
        assert b.get("r").status is S.WAITING  # read from the log
        b.signal("r", "approve", "yes")  # through the store, to a
        b.signal("r", "note", "from b")
        assert b.handle("r").result(timeout=30) == {"draft": 2, "verdict": "yes", "note": "from b"}
        assert a.get("r").result == b.get("r").result
        assert not a._sharing.leases.holds("r")  # settled: its lease is given up as done
        assert a.verify_audit().ok


def test_starts_from_a_client_spread_over_the_runtimes_with_room(where: dict[str, Any]) -> None:
    with shared(where) as a, shared(where) as b, shared(where, max_missions=0) as client:
        ids = [f"s{i}" for i in range(20)]
        for i in ids:
            client.start(m.arithmetic, 3, mission_id=i)
        results = {i: client.handle(i).result(timeout=60) for i in ids}
        assert all(r["total"] == 3 and r["key_of"] == i for i, r in results.items())
        ran = {i: runner for i in ids for runner, rt in (("a", a), ("b", b)) if _ran(rt, i)}
        assert set(ran) == set(ids)
        assert set(ran.values()) == {"a", "b"}  # both took a share
        assert not client._sharing.leases.held()


def _ran(rt: aura.Runtime, mission_id: str) -> bool:
    return rt.system.exists("mission/" + mission_id)


def test_a_stopping_runtime_hands_its_waiting_missions_to_another(where: dict[str, Any]) -> None:
    b = shared(where)
    try:
        with shared(where) as a:
            for i in range(5):
                a.start(m.approval, None, mission_id=f"w{i}")
            for i in range(5):
                a.wait(f"w{i}", 30, until={S.WAITING})
        # a closed: its leases were handed back, b claims them and runs them.
        for i in range(5):
            b.signal(f"w{i}", "approve", i)
            b.signal(f"w{i}", "note", "n")
        for i in range(5):
            assert b.handle(f"w{i}").result(timeout=60) == {"draft": 2, "verdict": i, "note": "n"}
            assert _ran(b, f"w{i}")
        assert [c for c in m.CALLS if c[0] == "add"] == [("add", f"w{i}/1/0") for i in range(5)]
    finally:
        b.close()


def test_a_command_for_a_mission_nobody_runs_is_taken_by_a_runtime(where: dict[str, Any]) -> None:
    with shared(where) as a:
        a.start(m.approval, None, mission_id="x")
        a.wait("x", 30, until={S.WAITING})
        a._sharing.leases.release("x", done=False)  # as if handed back
        a.system.stop("mission/x")
        with shared(where, max_missions=0) as client:
            client.signal("x", "approve", "late")
            client.signal("x", "note", "n")
            assert client.handle("x").result(timeout=60)["verdict"] == "late"


def test_exclusive_and_shared_runtimes_exclude_each_other(where: dict[str, Any]) -> None:
    with shared(where), pytest.raises(StoreSharedError, match="shared runtime"):
        aura.Runtime(**where, missions=[m.approval])
    with aura.Runtime(**where, missions=[m.approval]) as alone:
        alone.start(m.approval, None, mission_id="e")
        alone.wait("e", 30, until={S.WAITING})
        with pytest.raises(StoreOwnedError):
            shared(where)
    with shared(where) as a:  # the single owner's missions are handed over
        a.signal("e", "approve", 1)
        a.signal("e", "note", 2)
        assert a.handle("e").result(timeout=60) == {"draft": 2, "verdict": 1, "note": 2}
        assert [c for c in m.CALLS if c[0] == "add"] == [("add", "e/1/0")]


def test_on_lmdb_a_single_owner_and_shared_runtimes_exclude_each_other(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with shared({"path": data}), pytest.raises(DirectoryLockedError):
        aura.Runtime(data, missions=[m.approval])
    with aura.Runtime(data, missions=[m.approval]) as alone:
        alone.start(m.approval, None, mission_id="e")
        alone.wait("e", 30, until={S.WAITING})
        with pytest.raises(DirectoryLockedError):
            shared({"path": data})
    with shared({"path": data}) as a:  # the single owner's missions are handed over
        assert a.store.lease("mission/e") is not None
        a.signal("e", "approve", 1)
        a.signal("e", "note", 2)
        assert a.handle("e").result(timeout=60) == {"draft": 2, "verdict": 1, "note": 2}
        assert [c for c in m.CALLS if c[0] == "add"] == [("add", "e/1/0")]


def test_a_runtime_whose_heartbeat_stalls_loses_its_missions_to_another_and_cannot_append(
    where: dict[str, Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runtime that stops renewing (paused, partitioned) past its lease:
    another claims its missions and finishes them. Its steps wait rather
    than start on leases that may have run out; when its heartbeat answers
    again it finds the missions gone and stops them, and every step result
    is recorded once. (Real processes, SIGKILL and SIGSTOP, and the fence
    refusing a woken runtime's writes: ``test_shared_workers.py``.)"""
    from eventstore import EventStore

    from .processes import recorded_in

    monkeypatch.setenv("AURA_TEST_EFFECTS", str(tmp_path / "effects.txt"))
    kw = {"missions": [m.slow_steps]}
    a = shared(where, **kw)
    try:
        for i in range(4):
            a.start(m.slow_steps, 12, mission_id=f"d{i}")
        a.wait("d0", 30, until={S.RUNNING})
        leases = a._sharing.leases
        beat = leases._beat
        # Its lease thread stalls (no renewal, no claims): its leases run out.
        leases._beat = leases._claim = lambda: None  # type: ignore[method-assign]
        with shared(where, **kw) as b:
            for i in range(4):
                assert b.wait(f"d{i}", 120).result == sum(s * s for s in range(12))
            # a learnt of the loss only where a write of its was refused;
            # its other missions' steps wait instead of starting.
            assert all(leases.current(i, wait=False) is None for i in leases.held())
            beat()  # its heartbeat is answered again
            assert not any(leases.holds(f"d{i}") for i in range(4))
            assert all(leases.current(f"d{i}") is False for i in range(4))
    finally:
        a.close()
    with EventStore.open(where["store"], schema=where["schema"], readonly=True) as log:
        recorded = recorded_in(log)
    assert recorded == {f"d{i}/1/{s}": 1 for i in range(4) for s in range(12)}


def test_a_budget_raised_from_another_runtime_resumes_the_mission_where_it_runs(
    where: dict[str, Any],
) -> None:
    with shared(where, missions=[m.spender]) as a, shared(where, missions=[m.spender]) as b:
        a.start(m.spender, 4, mission_id="p")
        assert a.wait("p", 30, until={S.WAITING}).waiting_for == "budget"
        assert a._sharing.leases.holds("p") and not b._sharing.leases.holds("p")
        b.raise_budget("p", usd=10)  # through the store, to a
        assert b.handle("p").result(timeout=30) == 0 + 1 + 2 + 3
        assert a.get("p").cost_usd == pytest.approx(1.6)  # past the first limit of $1.00
        assert not b._sharing.leases.holds("p")
