"""Many threads appending at once through group commit. On PostgreSQL the
threads share two separately opened stores (two writers, as two hosts
would be), so the checks also hold across writers."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from eventstore import ConcurrencyError, EventStore, NewEvent
from tests.postgres_server import fresh_schema

Opener = Callable[[], Any]


@pytest.fixture(params=["lmdb", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    if request.param == "lmdb":
        store = EventStore.open(tmp_path / "s")
        yield lambda: store  # one process opens a directory once
        store.close()
        return
    url = request.getfixturevalue("pg_server_url")
    with fresh_schema(url) as schema:
        opened: list[Any] = []

        def open_one() -> Any:
            opened.append(EventStore.open(url, schema=schema))
            return opened[-1]

        yield open_one
        for store in opened:
            store.close()


def test_threads_on_distinct_and_shared_streams_lose_and_duplicate_nothing(
    opener: Opener,
) -> None:
    n_threads, per_thread = 16, 60
    barrier = threading.Barrier(n_threads)
    errors: list[BaseException] = []
    writers = [opener(), opener()]
    store = writers[0]

    def work(t: int) -> None:
        store = writers[t % 2]
        try:
            barrier.wait()
            for i in range(per_thread):
                stream = f"own-{t}" if i % 2 else "shared"
                size = 1 + i % 3
                version = store.append(
                    stream, [NewEvent("e", f"{t}:{i}:{j}".encode()) for j in range(size)]
                )
                # The returned version is the version of our last event.
                got = list(store.read(stream, version - size + 1, version))
                assert [e.data for e in got] == [f"{t}:{i}:{j}".encode() for j in range(size)]
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    everything = list(store.read_all())
    datas = Counter(e.data for e in everything)
    expected = {
        f"{t}:{i}:{j}".encode()
        for t in range(n_threads)
        for i in range(per_thread)
        for j in range(1 + i % 3)
    }
    assert set(datas) == expected and max(datas.values()) == 1
    positions = [e.position for e in everything]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    for stream in store.streams():
        versions = [e.version for e in store.read(stream)]
        assert versions == list(range(1, len(versions) + 1))


def test_optimistic_concurrency_admits_exactly_one_writer_per_version(opener: Opener) -> None:
    n_threads, rounds = 8, 40
    wins = Counter[int]()
    conflicts = Counter[int]()
    lock = threading.Lock()
    barrier = threading.Barrier(n_threads)
    writers = [opener(), opener()]
    store = writers[0]

    def work(t: int) -> None:
        store = writers[t % 2]
        barrier.wait()
        for _ in range(rounds):
            while True:
                seen = store.version("counter")
                try:
                    store.append(
                        "counter", [NewEvent("inc", str(t).encode())], expected_version=seen
                    )
                except ConcurrencyError as err:
                    assert err.actual > seen
                    with lock:
                        conflicts[t] += 1
                    continue
                with lock:
                    wins[t] += 1
                break

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert store.version("counter") == n_threads * rounds
    assert all(wins[t] == rounds for t in range(n_threads))
    assert sum(conflicts.values()) > 0  # contention really happened
    by_thread = Counter(e.data for e in store.read("counter"))
    assert all(by_thread[str(t).encode()] == rounds for t in range(n_threads))
