"""Child: append until the file-size limit makes the disk "full".

argv: path limit_bytes. Prints one line per acknowledged append ("ACK n"),
then "FULL <error class> <message>" for the typed error, then "AGAIN <error
class>" for a second attempt after the failure.
"""

import resource
import signal
import sys

from eventstore import EventStore, EventStoreError, NewEvent


def main() -> None:
    path, limit = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    store = EventStore.open(path, map_size=1 << 24)
    n = 0
    payload = b"x" * 4000
    try:
        while True:
            store.append("s", [NewEvent("blob", payload + str(n).encode())])
            n += 1
            print("ACK", n, flush=True)
    except EventStoreError as err:
        print("FULL", type(err).__name__, str(err).replace("\n", " "), flush=True)
    try:
        store.append("s", [NewEvent("blob", payload)])
        print("AGAIN ok", flush=True)
    except EventStoreError as err:
        print("AGAIN", type(err).__name__, flush=True)
    store.close()


if __name__ == "__main__":
    main()
