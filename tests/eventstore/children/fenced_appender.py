"""Child: hold a lease and append under it until the lease is lost.

argv: url-or-path schema ("-": an LMDB directory) owner ttl. Prints
``LEASE <epoch>``, then ``ACK <version>`` after each fenced append
returned, and ``LOST <epoch>`` when an append is refused with
LeaseLostError (then it exits 0). The parent SIGSTOPs it past its lease
and takes the lease over. A fifth argument ``paced``: wait for a line on
stdin before each append (so it is stopped between commits: on LMDB a
process stopped inside a commit holds the writer lock, and every writer
waits until it continues).
"""

import sys

from eventstore import EventStore, LeaseLostError, NewEvent


def main() -> None:
    url, schema, owner, ttl = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    paced = sys.argv[5:] == ["paced"]
    opened = EventStore.open(url) if schema == "-" else EventStore.open(url, schema=schema)
    with opened as store:
        lease = store.acquire_lease("mission-1", owner, ttl)
        assert lease is not None, "the parent lets the child take the lease first"
        print(f"LEASE {lease.epoch}", flush=True)
        i = 0
        while True:
            i += 1
            if paced and not sys.stdin.readline():
                return
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
