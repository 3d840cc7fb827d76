"""A one-line progress indicator on stderr for long CLI work (replaying or
compacting large logs); silent unless stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self._label = label
        self._total = max(total, 1)
        self._stream = stream if stream is not None else sys.stderr
        self._on = self._stream.isatty()
        self._last = 0.0
        self._done = 0

    def advance(self, n: int = 1) -> None:
        self._done += n
        if not self._on:
            return
        now = time.monotonic()
        if now - self._last >= 0.1 or self._done >= self._total:
            self._last = now
            pct = 100 * self._done // self._total
            self._stream.write(f"\r{self._label}: {self._done:,}/{self._total:,} ({pct}%)")
            self._stream.flush()

    def close(self) -> None:
        if self._on:
            self._stream.write("\r" + " " * (len(self._label) + 40) + "\r")
            self._stream.flush()
