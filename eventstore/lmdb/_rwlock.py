"""A shared/exclusive lock guarding LMDB map resizes.

``mdb_env_set_mapsize`` may only be called while this process has no
transaction open. Every transaction (read chunk or write batch) holds the
lock shared; a resize holds it exclusive. Shared holds are short: readers
copy a bounded chunk of records out of a transaction, then release.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ResizeLock:
    def __init__(self) -> None:
        # Shared holds take the plain mutex (a C-level context manager, cheaper
        # than the Condition's); only waits go through the Condition.
        self._mu = threading.Lock()
        self._cond = threading.Condition(self._mu)
        self._shared = 0
        self._exclusive = False
        self._waiting_exclusive = 0

    def acquire_shared(self) -> None:
        with self._mu:
            while self._exclusive or self._waiting_exclusive:
                self._cond.wait()
            self._shared += 1

    def release_shared(self) -> None:
        with self._mu:
            self._shared -= 1
            if not self._shared and self._waiting_exclusive:
                self._cond.notify_all()

    @contextmanager
    def shared(self) -> Iterator[None]:
        self.acquire_shared()
        try:
            yield
        finally:
            self.release_shared()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting_exclusive += 1
            try:
                while self._exclusive or self._shared:
                    self._cond.wait()
            finally:
                self._waiting_exclusive -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()
