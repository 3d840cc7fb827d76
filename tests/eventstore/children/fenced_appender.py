"""Child: hold a lease and append under it until the lease is lost.

argv: url schema owner ttl. Prints ``LEASE <epoch>``, then ``ACK <version>``
after each fenced append returned, and ``LOST <epoch>`` when an append is
refused with LeaseLostError (then it exits 0). The parent SIGSTOPs it past
its lease and takes the lease over.
"""

import sys

from eventstore import EventStore, LeaseLostError, NewEvent


def main() -> None:
    url, schema, owner, ttl = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    with EventStore.open(url, schema=schema) as store:
        lease = store.acquire_lease("mission-1", owner, ttl)
        assert lease is not None, "the parent lets the child take the lease first"
        print(f"LEASE {lease.epoch}", flush=True)
        i = 0
        while True:
            i += 1
            try:
                version = store.append(
                    "mission-1", [NewEvent("step", f"{owner}:{i}".encode())], fence=lease
                )
            except LeaseLostError as err:
                print(f"LOST {err.held_epoch}", flush=True)
                return
            print(f"ACK {version}", flush=True)


if __name__ == "__main__":
    main()
