"""`aura demo`: crash a writer mid-work and show nothing acknowledged is lost.

Until the mission runtime lands this demonstrates the layer it stands on:
a child process journals "step" events for a mission stream, printing each
acknowledgement; the parent SIGKILLs it mid-stream, reopens the log and
checks every acknowledged event is there, then resumes from the exact
version the crash left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from eventstore import EventStore, NewEvent

STREAM = "mission/demo-1"


def child(data: str) -> None:
    """Runs in the child process: journal steps until killed."""
    with EventStore.open(Path(data) / "events") as store:
        version = store.version(STREAM)
        while True:
            version = store.append(
                STREAM,
                [NewEvent("step.completed", f"step {version + 1}".encode())],
                expected_version=version,
            )
            print(version, flush=True)


def run(data: Path, kill_after: int = 50) -> int:
    data.mkdir(parents=True, exist_ok=True)
    print(f"aura demo: data directory {data}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aura._demo", str(data)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    acked = 0
    for line in proc.stdout:
        acked = int(line)
        if acked >= kill_after:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    print(f"  child journaled and acknowledged up to version {acked}, then was SIGKILLed")
    with EventStore.open(data / "events") as store:
        events = list(store.read(STREAM))
        versions = [e.version for e in events]
        assert versions == list(range(1, len(versions) + 1)), "gap in the log"
        missing = acked - len(versions)
        print(f"  reopened: {len(versions)} events on disk, {max(0, missing)} acknowledged lost")
        if missing > 0:
            print("aura demo: FAILED, acknowledged events were lost", file=sys.stderr)
            return 1
        resumed = store.append(
            STREAM,
            [NewEvent("step.completed", f"step {len(versions) + 1}".encode())],
            expected_version=len(versions),
        )
        print(f"  resumed at version {resumed}: no step re-journaled, none skipped")
    print("aura demo: OK")
    return 0


if __name__ == "__main__":
    child(sys.argv[1])
