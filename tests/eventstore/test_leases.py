"""Leases and fenced writes, on every backend that has them (memory, LMDB, PostgreSQL).

A lease makes one owner the writer of a resource; a write fenced with a
lease whose epoch is no longer current is refused whole. The SIGSTOP test
is the real thing: a process paused past its lease wakes up and cannot
append.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventstore import (
    InvalidEventError,
    Lease,
    LeaseLostError,
    MemoryEventStore,
    NewEvent,
)
from eventstore.lmdb import LmdbEventStore
from eventstore.postgres import PostgresEventStore
from tests.postgres_server import fresh_schema

CHILD = Path(__file__).parent / "children" / "fenced_appender.py"


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Backend:
    def __init__(self, store: Any, clock: ManualClock | None) -> None:
        self.store = store
        self.clock = clock

    def expire(self, lease: Lease) -> None:
        """Let ``lease`` run out: advance the manual clock, or (PostgreSQL,
        whose clock is the server's) wait until the server's clock passed it."""
        if self.clock is not None:
            self.clock.now = lease.expires + 0.001
            return
        while self.store.lease_clock() <= lease.expires:
            time.sleep(0.01)


@pytest.fixture(params=["memory", "lmdb", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        clock = ManualClock()
        yield Backend(MemoryEventStore(clock=clock), clock)
        return
    if request.param == "lmdb":
        clock = ManualClock()
        with LmdbEventStore.open(tmp_path / "events", clock=clock) as store:
            yield Backend(store, clock)
        return
    url = request.getfixturevalue("pg_server_url")
    with fresh_schema(url) as schema, PostgresEventStore.open(url, schema=schema) as store:
        yield Backend(store, None)


def ev(data: str) -> list[NewEvent]:
    return [NewEvent("e", data.encode())]


def test_one_owner_at_a_time_and_renewal_keeps_the_epoch(backend: Backend) -> None:
    store = backend.store
    a = store.acquire_lease("m1", "runtime-a", 0.5)
    assert a is not None and (a.owner, a.epoch) == ("runtime-a", 1)
    assert store.acquire_lease("m1", "runtime-b", 0.5) is None  # held and live
    again = store.acquire_lease("m1", "runtime-a", 30)
    assert again is not None and again.epoch == 1 and again.expires > a.expires
    assert store.lease("m1") == again
    assert store.lease("nobody") is None


def test_a_taken_lease_fences_the_old_owner_off(backend: Backend) -> None:
    store = backend.store
    old = store.acquire_lease("m1", "runtime-a", 0.3)
    assert store.append("m1", ev("a1"), fence=old) == 1
    backend.expire(old)
    new = store.acquire_lease("m1", "runtime-b", 30)
    assert new is not None and new.epoch == old.epoch + 1
    with pytest.raises(LeaseLostError) as info:
        store.append("m1", ev("a2"), fence=old)
    assert (info.value.holder, info.value.held_epoch) == ("runtime-b", 2)
    with pytest.raises(LeaseLostError):
        store.append_many([("m1", ev("a3"), None), ("other", ev("a3"), None)], fence=old)
    assert store.version("other") == 0  # the whole call was refused
    assert store.append("m1", ev("b1"), fence=new) == 2
    assert [e.data for e in store.read("m1")] == [b"a1", b"b1"]
    assert [x.resource for x in store.renew_leases("runtime-a", 30)] == []
    assert [x.resource for x in store.renew_leases("runtime-b", 30)] == ["m1"]


def test_renewal_extends_every_lease_of_an_owner_at_once(backend: Backend) -> None:
    store = backend.store
    for name in ("m1", "m2", "m3"):
        store.acquire_lease(name, "runtime-a", 0.5)
    store.acquire_lease("m4", "runtime-b", 0.5)
    before = store.lease("m1")
    renewed = store.renew_leases("runtime-a", 60)
    assert [x.resource for x in renewed] == ["m1", "m2", "m3"]
    assert all(x.epoch == 1 and x.expires > before.expires for x in renewed)
    assert store.lease("m4").expires < renewed[0].expires


def test_a_released_lease_is_free_at_once_with_the_next_epoch(backend: Backend) -> None:
    store = backend.store
    a = store.acquire_lease("m1", "runtime-a", 60)
    assert store.release_lease("m1", "runtime-b") is False  # not b's to release
    assert store.release_lease("m1", "runtime-a") is True
    b = store.acquire_lease("m1", "runtime-b", 60)
    assert b is not None and b.epoch == a.epoch + 1
    with pytest.raises(LeaseLostError):
        store.append("m1", ev("late"), fence=a)


def test_a_fenced_op_fails_alone_inside_a_shared_commit(backend: Backend) -> None:
    """Many writers share commits; the one with a stale fence is refused,
    the others commit."""
    store = backend.store
    stale = store.acquire_lease("m1", "runtime-a", 0.3)
    backend.expire(stale)
    current = store.acquire_lease("m1", "runtime-b", 60)
    barrier = threading.Barrier(8)
    outcomes: dict[int, object] = {}

    def write(i: int) -> None:
        barrier.wait()
        fence = stale if i == 0 else current if i == 1 else None
        try:
            outcomes[i] = store.append(f"s{i}" if i > 1 else "m1", ev(str(i)), fence=fence)
        except LeaseLostError as err:
            outcomes[i] = err

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert isinstance(outcomes[0], LeaseLostError)
    assert all(outcomes[i] == 1 for i in range(1, 8))
    assert [e.data for e in store.read("m1")] == [b"1"]


def test_a_write_fenced_by_several_leases_needs_every_one(backend: Backend) -> None:
    """One commit for two missions carries both leases: losing either
    refuses the whole commit."""
    store = backend.store
    a = store.acquire_lease("mission/a", "runtime-a", 0.3)
    b = store.acquire_lease("mission/b", "runtime-a", 60)
    batch = [("mission/a", ev("1"), None), ("mission/b", ev("1"), None)]
    assert store.append_many(batch, fence=[a, b]) == [1, 1]
    backend.expire(a)
    assert store.acquire_lease("mission/a", "runtime-b", 60) is not None
    with pytest.raises(LeaseLostError) as lost:
        store.append_many(batch, fence=(a, b))
    assert lost.value.resource == "mission/a"
    assert (store.version("mission/a"), store.version("mission/b")) == (1, 1)
    assert store.append("mission/b", ev("2"), fence=[b]) == 2


def test_claims_take_expired_leases_under_a_prefix_at_the_next_epoch(backend: Backend) -> None:
    store = backend.store
    old = [store.acquire_lease(f"mission/{i}", "dead", 0.3) for i in range(5)]
    live = store.acquire_lease("mission/live", "alive", 60)
    other = store.acquire_lease("worker/dead", "dead", 0.3)
    assert live is not None and other is not None and all(old)
    backend.expire(max(old, key=lambda x: x.expires))  # type: ignore[arg-type,return-value]
    assert store.claim_leases("mission/", "taker", 60, 0) == []
    first = store.claim_leases("mission/", "taker", 60, 3)
    rest = store.claim_leases("mission/", "taker", 60, 10)
    taken = first + rest
    assert (len(first), len(rest)) == (3, 2)
    assert sorted(x.resource for x in taken) == [f"mission/{i}" for i in range(5)]
    assert all(x.owner == "taker" and x.epoch == 2 for x in taken)
    assert store.claim_leases("mission/", "someone", 60, 10) == []  # all live again
    assert store.lease("worker/dead").owner == "dead"  # another prefix: untouched
    listed = store.leases("mission/")
    assert [x.resource for x in listed] == sorted(
        [f"mission/{i}" for i in range(5)] + ["mission/live"]
    )
    with pytest.raises(LeaseLostError):
        store.append("mission/0", ev("late"), fence=old[0])


def test_a_released_lease_is_claimable_and_a_done_one_is_not(backend: Backend) -> None:
    store = backend.store
    handed = store.acquire_lease("mission/handed", "a", 60)
    finished = store.acquire_lease("mission/finished", "a", 60)
    assert handed is not None and finished is not None
    assert store.release_lease("mission/handed", "a") is True
    assert store.release_lease("mission/finished", "a", done=True) is True
    assert store.release_lease("mission/finished", "a") is False  # nobody's now
    claimed = store.claim_leases("mission/", "b", 60, 10)
    assert [(x.resource, x.epoch) for x in claimed] == [("mission/handed", 2)]
    again = store.acquire_lease("mission/finished", "c", 60)  # a redrive, say
    assert again is not None and again.epoch == finished.epoch + 1
    assert store.renew_leases("a", 60) == []


def test_two_claimers_never_take_the_same_lease(backend: Backend) -> None:
    store = backend.store
    n = 200
    leases = [store.acquire_lease(f"mission/{i}", "dead", 0.3) for i in range(n)]
    backend.expire(max(leases, key=lambda x: x.expires))  # type: ignore[arg-type,return-value]
    barrier = threading.Barrier(4)
    got: dict[str, list[str]] = {}

    def claim(who: str) -> None:
        barrier.wait()
        mine: list[str] = []
        while batch := store.claim_leases("mission/", who, 60, 7):
            mine += [x.resource for x in batch]
        got[who] = mine

    threads = [threading.Thread(target=claim, args=(f"c{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [r for rs in got.values() for r in rs]
    assert sorted(everything) == sorted(f"mission/{i}" for i in range(n))  # each exactly once
    for who, resources in got.items():
        assert all(store.lease(r).owner == who for r in resources)


def test_bad_lease_arguments_are_typed_errors(backend: Backend) -> None:
    store = backend.store
    with pytest.raises(InvalidEventError):
        store.acquire_lease("", "a", 1)
    with pytest.raises(InvalidEventError):
        store.acquire_lease("m", "", 1)
    with pytest.raises(InvalidEventError):
        store.acquire_lease("m", "a", 0)
    with pytest.raises(InvalidEventError):
        store.append("m", ev("x"), fence=("m", "a", 1))  # type: ignore[arg-type]
    assert store.version("m") == 0


def _line(proc: subprocess.Popen[bytes], deadline: float = 30.0) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line:
        raise AssertionError(f"child ended early: {proc.wait(deadline)}")
    return line


@pytest.fixture(params=["lmdb", "postgres"])
def shared_target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """Where two processes share a store: (an LMDB directory, "-") or (URL, schema)."""
    if request.param == "lmdb":
        return str(tmp_path / "events"), "-"
    return request.getfixturevalue("pg_server_url"), request.getfixturevalue("pg_schema")


def _open(target: tuple[str, str]) -> Any:
    where, schema = target
    if schema == "-":
        return LmdbEventStore.open(where)
    return PostgresEventStore.open(where, schema=schema)


def test_a_process_paused_past_its_lease_cannot_append_after_waking(
    shared_target: tuple[str, str],
) -> None:
    """On PostgreSQL the child runs free and is stopped wherever it is
    (inside a commit too). On LMDB it is stopped between commits: inside
    one it would hold LMDB's writer lock and every writer would wait for it
    (no other process can take its lease meanwhile either)."""
    ttl = 1.0
    paced = shared_target[1] == "-"
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), *shared_target, "child", str(ttl), *(["paced"] * paced)],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
    )
    assert proc.stdin is not None

    def go() -> None:
        if paced:
            proc.stdin.write(b"go\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]

    try:
        assert _line(proc) == "LEASE 1"
        acked = []
        for _ in range(20):
            go()
            acked.append(int(_line(proc).split()[1]))
        os.kill(proc.pid, signal.SIGSTOP)
        with _open(shared_target) as store:
            held = store.lease("mission-1")
            assert held is not None and held.owner == "child"
            while (mine := store.acquire_lease("mission-1", "parent", 60)) is None:
                time.sleep(0.05)  # the paused child's lease runs out on the server's clock
            assert mine.epoch == 2
            taken_at = store.append("mission-1", ev("parent:1"), fence=mine)
            os.kill(proc.pid, signal.SIGCONT)
            go()
            rest = proc.communicate(timeout=60)[0].decode().split("\n")
            acked += [int(x.split()[1]) for x in rest if x.startswith("ACK")]
            assert "LOST 2" in rest
            events = list(store.read("mission-1"))
        # Every acknowledged append is there once; none of the child's after the takeover.
        versions = [e.version for e in events]
        assert versions == list(range(1, len(events) + 1))
        child_after = [e for e in events if e.version > taken_at and e.data.startswith(b"child")]
        assert child_after == []
        assert sorted(acked) == [e.version for e in events if e.data.startswith(b"child")]
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait()


def test_a_claim_ends_a_holder_stuck_mid_commit_and_then_takes_its_leases(
    pg_server_url: str, pg_schema: str
) -> None:
    """A holder paused inside a commit holds its lease rows (and the head)
    locked: SKIP LOCKED alone would pass over its expired leases forever and
    every writer would wait on the head. The claimer ends its sessions."""
    import psycopg

    with (
        PostgresEventStore.open(pg_server_url, schema=pg_schema) as holder,
        PostgresEventStore.open(pg_server_url, schema=pg_schema) as taker,
    ):
        leases = [holder.acquire_lease(f"mission/{i}", "holder", 0.5) for i in range(3)]
        assert all(lease is not None for lease in leases)
        holder.append("mission/0", ev("before"), fence=leases[0])
        stuck = psycopg.connect(pg_server_url, application_name=holder.session)
        stuck.execute(
            f"SELECT 1 FROM {pg_schema}.leases WHERE starts_with(resource, 'mission/') FOR SHARE"
        )
        stuck.execute(f"SELECT value FROM {pg_schema}.meta WHERE key = 'head' FOR UPDATE")
        Backend(taker, None).expire(max(leases, key=lambda x: x.expires))  # type: ignore[arg-type]
        first = taker.claim_leases("mission/", "taker", 30, 10)
        claimed = first + taker.claim_leases("mission/", "taker", 30, 10)
        assert sorted(x.resource for x in claimed) == [f"mission/{i}" for i in range(3)]
        assert all(x.epoch == 2 for x in claimed)
        with pytest.raises(psycopg.OperationalError):
            stuck.execute("SELECT 1")  # its session was ended: the locks are gone
        mine = next(x for x in claimed if x.resource == "mission/0")
        taker.append("mission/0", ev("after"), fence=mine)  # the head is free again
        with pytest.raises(LeaseLostError):
            holder.append("mission/0", ev("late"), fence=leases[0])
        assert [e.data for e in taker.read("mission/0")] == [b"before", b"after"]


def test_a_renewal_is_not_held_up_by_a_stuck_holder_locking_its_rows(
    pg_server_url: str, pg_schema: str
) -> None:
    """A holder paused inside a commit whose fence named a lease it had
    lost holds that row, now another owner's: the owner's heartbeat must
    not wait for it to wake (its own leases would run out meanwhile)."""
    import psycopg

    with (
        PostgresEventStore.open(pg_server_url, schema=pg_schema) as holder,
        PostgresEventStore.open(pg_server_url, schema=pg_schema) as live,
    ):
        gone = holder.acquire_lease("mission/old", "holder", 0.5)
        mine = live.acquire_lease("mission/live", "live", 30)
        assert gone is not None and mine is not None
        stuck = psycopg.connect(pg_server_url, application_name=holder.session)
        stuck.execute(f"SELECT 1 FROM {pg_schema}.leases WHERE resource = 'mission/live' FOR SHARE")
        Backend(live, None).expire(gone)
        renewed = live.renew_leases("live", 30)
        assert [(x.resource, x.epoch) for x in renewed] == [("mission/live", 1)]
        assert renewed[0].expires > mine.expires
        with pytest.raises(psycopg.OperationalError):
            stuck.execute("SELECT 1")  # the stuck holder's session was ended
