"""Child: a runtime that runs (or resumes) MISSIONS missions of STEPS steps.

argv: data_dir (or a postgresql:// store) missions steps [mission name,
default many_steps]. With a store: AURA_TEST_SCHEMA, AURA_TEST_LEASE_TTL.
Env: AURA_TEST_EFFECTS (side-effect file), AURA_TEST_INCARNATION,
AURA_TEST_STANDBY (wait as a hot standby for the directory's owner: prints
"WAITING" before, "TOOK_OVER" once it owns the directory). Prints "STARTED"
once every mission is started and "RESULT <id> <value>" as each finishes; the
parent SIGKILLs it at random.
"""

import os
import sys

import aura
from tests.aura import missions


def main() -> None:
    path, count, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    mission = getattr(missions, sys.argv[4] if len(sys.argv) > 4 else "many_steps")
    standby = bool(os.environ.get("AURA_TEST_STANDBY"))
    if standby:
        sys.stdout.write("WAITING\n")
        sys.stdout.flush()
    where: dict[str, object] = {"path": path}
    if path.startswith("postgresql://"):
        ttl = float(os.environ.get("AURA_TEST_LEASE_TTL", "10"))
        where = {
            "store": path,
            "schema": os.environ["AURA_TEST_SCHEMA"],
            "lease_ttl": ttl,
            "heartbeat": ttl / 5,
        }
    with aura.Runtime(
        **where,  # type: ignore[arg-type]
        missions=[mission, missions.squares],  # squares: many_children's children
        max_workers=4,
        standby=standby,
    ) as rt:
        if standby:
            sys.stdout.write("TOOK_OVER\n")
            sys.stdout.flush()
        handles = [rt.start(mission, steps, mission_id=f"m-{i}") for i in range(count)]
        sys.stdout.write("STARTED\n")
        sys.stdout.flush()
        for h in handles:
            result = h.result(timeout=120)
            sys.stdout.write(f"RESULT {h.mission_id} {result}\n")  # one write per line
            sys.stdout.flush()


if __name__ == "__main__":
    main()
