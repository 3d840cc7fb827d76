"""Chaos soak: a runtime in a child process runs many missions (sequential,
gather, saga, signals, timers, continue-as-new) while this process SIGKILLs
it at random moments and starts it again, until every mission is finished.

    python benchmarks/soak.py [--missions 60] [--kills 40] [--seed 1] [--budget 600]

Reports missions lost (not finished with the crash-free result: must be 0)
and duplicate post-journal side effects (a step that ran again after its
result was journaled: must be 0), and writes JSON. CI runs a small budget
of it (tests/aura/test_soak.py).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._report import report  # noqa: E402

CHILD = """
import sys
sys.path.insert(0, {root!r})
import aura
from tests.aura import missions as m
from aura.testing import VirtualClock

path, count = sys.argv[1], int(sys.argv[2])


def say(line):
    # One write per line: step threads write EFFECT lines to the same stdout,
    # and print() with several arguments writes them piecewise, so a RESULT
    # line could be split by an EFFECT line.
    sys.stdout.write(line + "\\n")
    sys.stdout.flush()

all_missions = [m.many_steps, m.many_steps_can, m.trip, m.approval, m.sleeper, m.arithmetic]
with aura.Runtime(path, missions=all_missions, max_workers=4, clock=VirtualClock()) as rt:
    handles = []
    for i in range(count):
        kind = i % 5
        mid = f"s-{{i}}"
        if kind == 0:
            handles.append(rt.start(m.many_steps, 12, mission_id=mid))
        elif kind == 1:
            handles.append(rt.start(m.many_steps_can, 12, mission_id=mid))
        elif kind == 2:
            handles.append(rt.start(m.trip, False, mission_id=mid))
        elif kind == 3:
            handles.append(rt.start(m.approval, None, mission_id=mid))
            view = rt.get(mid)
            if view.status.value not in ("completed", "failed", "cancelled", "dead"):
                for name, payload in (("approve", True), ("note", "ok")):
                    try:
                        rt.signal(mid, name, payload)
                    except aura.AuraError:
                        pass
        else:
            handles.append(rt.start(m.sleeper, 5.0, mission_id=mid))
    say("STARTED")
    for h in handles:
        try:
            value = h.result(timeout=300)
            say(f"RESULT {{h.mission_id}} completed {{value!r}}")
        except aura.MissionFailedError as err:
            say(f"RESULT {{h.mission_id}} failed {{err.view.error[:40]!r}}")
"""


def expected(i: int) -> tuple[str, str]:
    kind = i % 5
    if kind in (0, 1):
        return "completed", repr(sum(x * x for x in range(12)))
    if kind == 2:
        return "failed", repr("StepFailedError: step tests.aura.missions")
    if kind == 3:
        return "completed", repr({"draft": 2, "verdict": True, "note": "ok"})
    return "completed", "5.0"


def journaled_keys(data: Path) -> set[str]:
    from aura.operating._inspect import journaled_results
    from eventstore import EventStore

    keys: set[str] = set()
    if not (data / "events").exists():
        return keys
    with EventStore.open(data / "events", readonly=True) as store:
        for stream in store.streams():
            if stream.startswith("mission/"):
                keys.update(journaled_results(store, stream.split("/", 1)[1]))
    return keys


def soak(missions: int, kills: int, seed: int, budget: float) -> dict[str, Any]:
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="aura-soak-"))
    data, effects = work / "data", work / "effects.txt"
    started = time.monotonic()
    journaled_before: dict[int, set[str]] = {}
    results: dict[str, tuple[str, str]] = {}
    incarnation = 0
    killed = 0
    while True:
        journaled_before[incarnation] = journaled_keys(data)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "AURA_TEST_EFFECTS": str(effects),
            "AURA_TEST_INCARNATION": str(incarnation),
        }
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD.format(root=str(ROOT)), str(data), str(missions)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        assert proc.stdout is not None
        last = killed >= kills or time.monotonic() - started > budget
        wanted = 0 if last else rng.randrange(1, 40)
        for raw in proc.stdout:
            line = raw.decode().strip()
            if line.startswith("RESULT"):
                _, mid, status, value = line.split(" ", 3)
                results[mid] = (status, value)
            if line.startswith(("EFFECT", "RESULT")) and not last:
                wanted -= 1
                if wanted <= 0:
                    break
        if last:
            proc.wait(timeout=600)
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed += 1
        incarnation += 1
    runs: dict[str, list[int]] = defaultdict(list)
    if effects.exists():
        for line in effects.read_text().splitlines():
            key, inc = line.split()
            runs[key].append(int(inc))
    duplicates = sorted(
        key for key, incs in runs.items() for inc in incs if key in journaled_before.get(inc, set())
    )
    lost = []
    for i in range(missions):
        status, value = results.get(f"s-{i}", ("missing", ""))
        want_status, want_value = expected(i)
        if status != want_status or (status == "completed" and value != want_value):
            lost.append(f"s-{i}: {status} {value}")
    return {
        "missions": missions,
        "kills": killed,
        "seconds": time.monotonic() - started,
        "lost": lost,
        "duplicates": duplicates,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--missions", type=int, default=60)
    ap.add_argument("--kills", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--budget", type=float, default=600.0)
    args = ap.parse_args()
    r = soak(args.missions, args.kills, args.seed, args.budget)
    rows = [
        {
            "missions": r["missions"],
            "SIGKILLs": r["kills"],
            "seconds": r["seconds"],
            "missions lost": len(r["lost"]),
            "duplicate post-journal effects": len(r["duplicates"]),
        }
    ]
    notes = [f"lost: {r['lost'][:5]}", f"duplicates: {r['duplicates'][:5]}"]
    report("soak", rows, notes)
    if r["lost"] or r["duplicates"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
