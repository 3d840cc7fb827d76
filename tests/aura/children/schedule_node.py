"""Child process: a runtime with a schedule that ticks every second
(catch-up ``all``), serving until it is killed. Each tick's mission prints
``TICK <mission id>`` from its step.

argv: data_dir
"""

import sys
import threading

import aura
from tests.aura import schedule_missions as sm


def main() -> None:
    every_second = aura.Schedule("sec", sm.on_tick, "* * * * * *", args=("s",), catch_up="all")
    with aura.Runtime(sys.argv[1], missions=[sm.on_tick], schedules=[every_second]):
        sys.stdout.write("SERVING\n")
        sys.stdout.flush()
        threading.Event().wait()  # until killed


if __name__ == "__main__":
    main()
