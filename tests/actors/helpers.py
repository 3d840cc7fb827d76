"""Test actors and waiting helpers (no sleeping: wait on conditions)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from actors import Actor, Shutdown


class Recorder:
    """A thread-safe event list you can wait on."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._cond = threading.Condition()

    def add(self, event: Any) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[Any]], bool], timeout: float = 10.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.events), timeout):
                raise AssertionError(f"condition not met within {timeout}s; events: {self.events}")

    def add_pair(self, first: Any, second: Any) -> None:
        self.add((first, second))

    def count(self, event: Any) -> int:
        with self._cond:
            return self.events.count(event)

    def clear(self) -> None:
        with self._cond:
            self.events.clear()


def capture_logger(sink: Recorder) -> Any:
    """A structlog logger that records each event dict into ``sink``."""

    def capture(_logger: Any, method: str, event_dict: dict[str, Any]) -> Any:
        sink.add({**event_dict, "level": method, "at": time.monotonic()})
        raise structlog.DropEvent

    return structlog.wrap_logger(None, processors=[capture])


class Probe(Actor):
    """Records its lifecycle; 'crash' raises, 'exit' stops itself, 'base' raises
    a BaseException, 'ping' answers (name, incarnation)."""

    incarnations: dict[str, int]

    def __init__(self, name: str, rec: Recorder, counts: dict[str, int]) -> None:
        super().__init__()
        self.name = name
        self.rec = rec
        counts[name] = counts.get(name, 0) + 1
        self.incarnation = counts[name]
        self.seen = 0

    def started(self) -> None:
        self.rec.add(("start", self.name))

    def stopped(self) -> None:
        self.rec.add(("stop", self.name))

    def receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError(f"{self.name} crashed on purpose")
        if message == "base":
            raise KeyboardInterrupt(f"{self.name} got a BaseException")
        if message == "exit":
            self.stop()
            return None
        if isinstance(message, tuple) and message[0] == "wait":
            message[1].wait(10)
            raise RuntimeError("crash after waiting")
        self.seen += 1
        return (self.name, self.incarnation, self.seen)


class FailingStart(Actor):
    def __init__(self, rec: Recorder) -> None:
        super().__init__()
        self.rec = rec

    def started(self) -> None:
        self.rec.add("failing start")
        raise ValueError("cannot start")

    def receive(self, message: Any) -> Any:  # pragma: no cover - never started
        return message


class Flaky(Probe):
    """A Probe whose start fails while ``fails[name] > 0`` (recording
    ``("fail", name)``); 'shutdown' exits with a typed Shutdown reason."""

    def __init__(self, name: str, rec: Recorder, fails: dict[str, int]) -> None:
        super().__init__(name, rec, {})
        self.fails = fails

    def started(self) -> None:
        if self.fails.get(self.name, 0) > 0:
            self.fails[self.name] -= 1
            self.rec.add(("fail", self.name))
            raise RuntimeError(f"{self.name} refuses to start")
        super().started()

    def receive(self, message: Any) -> Any:
        if message == "shutdown":
            raise Shutdown({"drained": True})
        return super().receive(message)
