"""Child process: a parent mission and its child mission, SIGKILLed at one
chosen moment (or, with ``none``, run to the end).

argv: data_dir moment. Moments (the process kills itself with SIGKILL from
a fault plan, so the moment is exact):
- ``started``: the child's Start is journaled, its parent has heard nothing;
- ``told``: the child has completed, its outcome is not yet in the parent;
- ``cancel``: the parent was cancelled (its end is durable), the Cancel it
  sends its child (its third message: Start, a step, Cancel) is not yet
  journaled.
Prints ``RESULT <value>`` when the parent completes.
"""

import os
import signal
import sys
import threading
from collections import Counter

import aura
from actors import FaultInjector
from tests.aura import missions


@aura.mission
async def parent(ctx: aura.MissionContext, wait: bool) -> int:
    if wait:
        return int(await ctx.start_child(waits_forever, mission_id="kid"))
    return int(await ctx.start_child(missions.squares, 0, 3, mission_id="kid"))


KID_STARTED = threading.Event()


@aura.step
def kid_started() -> None:
    KID_STARTED.set()


@aura.mission
async def waits_forever(ctx: aura.MissionContext) -> int:
    await ctx.step(kid_started)
    return int(await ctx.wait_signal("never"))


def main() -> None:
    path, moment = sys.argv[1], sys.argv[2]
    appends: Counter[str] = Counter()
    kill_at = {
        "started": ("after_append", "mission/kid", 1),
        "told": ("before_append", "mission/p", 2),
        "cancel": ("before_append", "mission/kid", 3),
    }.get(moment)

    def plan(point: str, actor_id: str, hit: int) -> bool:
        appends[point, actor_id] += 1
        if kill_at == (point, actor_id, appends[point, actor_id]):
            os.kill(os.getpid(), signal.SIGKILL)
        return False

    faults = FaultInjector(plan if kill_at else None)
    wait = moment == "cancel"
    with aura.Runtime(
        path, missions=[parent, waits_forever, missions.squares], faults=faults
    ) as rt:
        handle = rt.start(parent, wait, mission_id="p")
        if wait:
            KID_STARTED.wait(30)  # the child starts once its parent's command is durable
            rt.wait("kid", until={aura.MissionStatus.WAITING}, timeout=30)
            rt.cancel("p")
            rt.wait("kid", timeout=30)  # the kill comes first
        sys.stdout.write(f"RESULT {handle.result(timeout=60)}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
