"""Child process: 10 missions on queue ``q``, across three processes.

argv: data_dir mode.
- ``enqueue``: the queue limited to one start an hour: enqueue j0..j9, j0
  runs, the other nine wait; exit.
- ``kill``: the queue with concurrency 4 and no rate limit: recovery hands
  out 4 slots at once (one ``dispatched`` record) and the process SIGKILLs
  itself right after that record is journaled, before any of the 4 starts.
- ``finish``: open again, print ``RESULT<i>`` for each mission, in order.
"""

import os
import signal
import sys

import aura
from actors import FaultInjector
from tests.aura import queue_missions as qm


def main() -> None:
    path, mode = sys.argv[1], sys.argv[2]

    def plan(point: str, where: str, hit: int) -> bool:
        if point == "queue_dispatched" and where == "queue/q":
            os.kill(os.getpid(), signal.SIGKILL)
        return False

    q = aura.Queue("q", rate=(1, 3600.0)) if mode == "enqueue" else aura.Queue("q", concurrency=4)
    faults = FaultInjector(plan if mode == "kill" else None)
    with aura.Runtime(path, missions=qm.ALL, queues=[q], faults=faults) as rt:
        if mode == "enqueue":
            for i in range(10):
                rt.enqueue(q, qm.quick, i, mission_id=f"j{i}")
            rt.handle("j0").result(timeout=60)
            return
        for i in range(10):
            sys.stdout.write(f"RESULT{rt.handle(f'j{i}').result(timeout=60)}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
