"""Child: open a store read-only while another process writes; report what it sees.

argv: path stream want. Reads ``stream`` until it has at least ``want`` events
(polling the store, not sleeping on a timer: each pass re-reads), checking the
versions are contiguous, then prints ``SAW <n>``. Exits 3 if a write is allowed.
"""

import sys

from eventstore import EventStore, NewEvent, StoreReadOnlyError


def main() -> None:
    path, stream, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = EventStore.open(path, readonly=True)
    try:
        store.append(stream, [NewEvent("forbidden")])
        sys.exit(3)
    except StoreReadOnlyError:
        pass
    print("READY", flush=True)
    seen = 0
    while seen < want:
        versions = [e.version for e in store.read(stream)]
        assert versions == list(range(1, len(versions) + 1)), versions[:10]
        seen = len(versions)
    print("SAW", seen, flush=True)
    store.close()


if __name__ == "__main__":
    main()
