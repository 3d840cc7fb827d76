"""Child: a supervision tree of durable ledgers fed from stdin.

argv: path mode n_actors. mode "serve": each stdin line "<actor> <value>" is
asked to that actor; after the ask returns (the message is durable) it prints
"ACK <actor> <value>". mode "dump": prints each actor's state as JSON lines.
The parent SIGKILLs "serve" at random moments.
"""

import json
import sys

from actors import ActorSystem, ChildSpec, Supervisor
from eventstore import EventStore
from tests.actors.ledger_actor import Add, CrashableLedger, Get


def main() -> None:
    path, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with EventStore.open(path) as store, ActorSystem("node", store=store) as system:
        children = [ChildSpec(f"ledger/{i}", CrashableLedger) for i in range(n)]
        system.spawn(ChildSpec("ledgers", lambda: Supervisor(children, max_restarts=10)))
        if mode == "dump":
            for i in range(n):
                print(json.dumps([f"ledger/{i}", system.ask(f"ledger/{i}", Get())]), flush=True)
            return
        print("READY", flush=True)
        for line in sys.stdin:
            actor, value = line.split()
            system.ask(actor, Add(int(value)))
            print(f"ACK {actor} {value}", flush=True)


if __name__ == "__main__":
    main()
