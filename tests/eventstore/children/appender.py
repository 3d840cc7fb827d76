"""Child: several threads append batches forever, acknowledging each on stdout.

argv: target (a directory or a PostgreSQL URL) seed threads [schema]. Each acknowledged batch prints
``ACK <stream> <last_version> <size> <batch_id>`` after ``append`` returned.
Every event's data is ``<batch_id>:<index>/<size>`` so the parent can check
that no batch is partial. The parent SIGKILLs this process at random moments.
"""

import random
import sys
import threading

from eventstore import EventStore, NewEvent


def main() -> None:
    target, seed, n_threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    options = {"schema": sys.argv[4]} if len(sys.argv) > 4 else {}
    store = EventStore.open(target, **options)
    out_lock = threading.Lock()

    def work(t: int) -> None:
        rng = random.Random(seed * 1000 + t)
        seq = 0
        while True:
            seq += 1
            stream = rng.choice(["shared-a", "shared-b", f"own-{t}"])
            size = rng.randint(1, 6)
            batch_id = f"{seed}.{t}.{seq}"
            events = [NewEvent("e", f"{batch_id}:{i}/{size}".encode()) for i in range(size)]
            version = store.append(stream, events)
            with out_lock:
                sys.stdout.write(f"ACK {stream} {version} {size} {batch_id}\n")
                sys.stdout.flush()

    print("READY", flush=True)
    for t in range(n_threads):
        threading.Thread(target=work, args=(t,), daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
