"""Several processes on one LMDB directory: one that dies holding LMDB's
writer lock or a reader slot does not wedge or bloat the others (LMDB's
robust mutex, ``reader_check`` at open)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from eventstore import NewEvent
from eventstore.lmdb import LmdbEventStore

HOLDER = """
import sys, lmdb
env = lmdb.open(sys.argv[1], max_dbs=16)
txn = env.begin(write=sys.argv[2] == "write")
if sys.argv[2] == "write":
    txn.put(b"x-half-written", b"never committed")
print("HOLDING", flush=True)
sys.stdin.readline()  # blocks until the parent kills it
"""

APPEND = """
import sys
from eventstore import NewEvent
from eventstore.lmdb import LmdbEventStore
with LmdbEventStore.open(sys.argv[1]) as store:
    print(store.append("s", [NewEvent("e", b"after")]), flush=True)
"""


def _append_elsewhere(path: Path) -> subprocess.CompletedProcess[str]:
    """APPEND in another process, with a deadline (a wedged lock would block it forever)."""
    return subprocess.run(
        [sys.executable, "-c", APPEND, str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _hold_and_kill(path: Path, mode: str) -> int:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "HOLDING\n"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    return holder.pid


def test_a_process_killed_holding_the_writer_lock_does_not_wedge_the_next_writer(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events"
    with LmdbEventStore.open(path) as store:
        store.append("s", [NewEvent("e", b"before")])
    _hold_and_kill(path, "write")
    # In another process, with a deadline: a wedged lock would block it forever.
    done = _append_elsewhere(path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"
    with LmdbEventStore.open(path) as store:
        assert [e.data for e in store.read("s")] == [b"before", b"after"]
        assert store.head_position() == 2  # the killed writer's half transaction left nothing


def test_a_reader_killed_inside_a_read_leaves_no_stale_slot(tmp_path: Path) -> None:
    path = tmp_path / "events"
    with LmdbEventStore.open(path) as store:  # open throughout: LMDB keeps its lock table
        store.append("s", [NewEvent("e", b"x")])
        pid = _hold_and_kill(path, "read")
        assert f" {pid} " in store._env.readers()  # LMDB's reader table: one line per slot
        # The next process to open the directory frees the dead one's slot.
        done = _append_elsewhere(path)
        assert done.returncode == 0, done.stderr
        assert f" {pid} " not in store._env.readers()
        assert store.version("s") == 2


def test_a_commit_that_wrote_nothing_does_not_make_the_write_cache_trusted(
    tmp_path: Path,
) -> None:
    """LMDB numbers write transactions, and this process trusts its cache
    in the transaction right after its own last commit. A commit that
    wrote nothing (a claim with nothing to claim) does not use up its
    number: another process's next commit gets it, and the cache must not
    be trusted after that."""
    path = tmp_path / "events"
    with LmdbEventStore.open(path) as store:
        assert store.append("s", [NewEvent("e", b"1")]) == 1
        assert store.claim_leases("x/", "me", 10, 10) == []  # commits, writes nothing
        done = _append_elsewhere(path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "2"
        assert store.append("s", [NewEvent("e", b"3")]) == 3
        assert [e.data for e in store.read("s")] == [b"1", b"after", b"3"]
        assert [e.position for e in store.read_all()] == [1, 2, 3]
