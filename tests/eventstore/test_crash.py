"""Real crashes: a child process appending from several threads is SIGKILLed
at random moments, many times, on the same directory. After every kill the
reopened log must hold every acknowledged batch, whole, in order, with no gap
and no partial batch."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventstore import EventStore
from tests.postgres_server import fresh_schema

CHILD = Path(__file__).parent / "children" / "appender.py"
KILLS = int(os.environ.get("AURA_CRASH_KILLS", "30"))


def _read_acks(proc: subprocess.Popen[str], want: int, deadline_s: float) -> list[str]:
    """Read ACK lines until ``want`` of them arrived (or the child died)."""
    assert proc.stdout is not None
    lines: list[str] = []
    fd = proc.stdout.fileno()
    buf = b""
    while len(lines) < want:
        ready, _, _ = select.select([fd], [], [], deadline_s)
        if not ready:
            raise AssertionError(f"child produced only {len(lines)} acks in {deadline_s}s")
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
        *complete, buf = buf.split(b"\n")
        lines.extend(x.decode() for x in complete)
    return lines


def _drain(proc: subprocess.Popen[str]) -> list[str]:
    assert proc.stdout is not None
    rest = b""
    while chunk := os.read(proc.stdout.fileno(), 65536):
        rest += chunk
    # A line cut by the kill was never fully printed: its batch may or may
    # not be durable, so it is not counted as acknowledged.
    return [x.decode() for x in rest.split(b"\n")[:-1]]


@pytest.fixture(params=["lmdb", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """Where the child appends: (target, extra argv), an LMDB directory or a schema."""
    if request.param == "lmdb":
        yield str(tmp_path / "log"), []
        return
    url = request.getfixturevalue("pg_server_url")
    with fresh_schema(url) as schema:
        yield url, [schema]


def _open(target: tuple[str, list[str]]) -> Any:
    where, extra = target
    return EventStore.open(where, **({"schema": extra[0]} if extra else {}))


def test_sigkill_at_random_moments_loses_no_acknowledged_append(
    target: tuple[str, list[str]],
) -> None:
    rng = random.Random(int(os.environ.get("AURA_CRASH_SEED", "20261122")))
    acked: list[tuple[str, int, int, str]] = []  # stream, last_version, size, batch_id
    for round_no in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, str(CHILD), target[0], str(round_no), "4", *target[1]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            lines = _read_acks(proc, 1, 60)
            assert lines[0] == "READY", lines
            # Kill after a random number of acknowledgements: sometimes at once.
            lines += _read_acks(proc, rng.choice([0, 1, 5, 20, 80, 200]), 60)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        lines += _drain(proc)
        for line in lines:
            if line.startswith("ACK "):
                _, stream, version, size, batch_id = line.split()
                acked.append((stream, int(version), int(size), batch_id))
        _check(target, acked)
    assert len(acked) > KILLS  # the test really appended between kills


def _check(target: tuple[str, list[str]], acked: list[tuple[str, int, int, str]]) -> None:
    with _open(target) as store:
        by_stream: dict[str, list[bytes]] = {}
        for stream in store.streams():
            events = list(store.read(stream))
            assert [e.version for e in events] == list(range(1, len(events) + 1)), stream
            by_stream[stream] = [e.data for e in events]
        positions = [e.position for e in store.read_all()]
        assert positions == sorted(positions)
        assert len(positions) == sum(len(v) for v in by_stream.values())
    # Every acknowledged batch is there, whole, at the versions it was given.
    for stream, last, size, batch_id in acked:
        datas = by_stream.get(stream, [])
        got = datas[last - size : last]
        assert got == [f"{batch_id}:{i}/{size}".encode() for i in range(size)], (
            f"acknowledged batch {batch_id} of {stream} lost or changed"
        )
    # No batch is partial: each present batch id has all of its events, contiguous.
    for stream, datas in by_stream.items():
        parts: dict[str, list[int]] = defaultdict(list)
        for index, data in enumerate(datas):
            batch_id, frac = data.decode().split(":")
            i, size = map(int, frac.split("/"))
            parts[batch_id].append(index)
            assert i == len(parts[batch_id]) - 1, f"{stream}: batch {batch_id} out of order"
        for batch_id, idx in parts.items():
            size = int(datas[idx[0]].decode().split("/")[1])
            assert len(idx) == size, f"{stream}: partial batch {batch_id}"
            assert idx == list(range(idx[0], idx[0] + size)), f"{stream}: split batch {batch_id}"


def test_several_writer_processes_killed_one_at_a_time_lose_nothing(
    target: tuple[str, list[str]],
) -> None:
    """Three processes append to one store at once (shared streams too:
    optimistic concurrency across processes); one of them, chosen at
    random, is SIGKILLed over and over and started again while the others
    keep writing. Every acknowledged batch of every process is there, whole."""
    rng = random.Random(int(os.environ.get("AURA_CRASH_SEED", "20261207")))
    acked: list[tuple[str, int, int, str]] = []
    seeds = iter(range(1000, 2000))

    def start() -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, str(CHILD), target[0], str(next(seeds)), "2", *target[1]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert _read_acks(proc, 1, 60) == ["READY"]
        return proc

    def collect(lines: list[str]) -> None:
        for line in lines:
            if line.startswith("ACK "):
                _, stream, version, size, batch_id = line.split()
                acked.append((stream, int(version), int(size), batch_id))

    procs = [start() for _ in range(3)]
    try:
        for _ in range(max(KILLS // 3, 4)):
            victim = rng.randrange(len(procs))
            for i, proc in enumerate(procs):  # every process makes progress meanwhile
                collect(_read_acks(proc, rng.choice([1, 10, 40]) if i == victim else 1, 60))
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait()
            collect(_drain(procs[victim]))
            procs[victim] = start()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    for proc in procs:
        collect(_drain(proc))
    _check(target, acked)
    assert len({batch.split(".")[0] for *_, batch in acked}) > 3  # restarted ones wrote too
