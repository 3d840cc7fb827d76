"""Asks to an idle actor run on the asking thread, without giving up the
actor guarantees: one message at a time, per-sender order, crash handling."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from actors import Actor, ActorCrashedError, ActorSystem, ChildSpec

from .helpers import Recorder


class Where(Actor):
    def __init__(self, rec: Recorder) -> None:
        super().__init__()
        self.rec = rec
        self.running = 0

    def receive(self, message: Any) -> Any:
        self.running += 1
        try:
            assert self.running == 1, "two handlers ran at once"
            if isinstance(message, threading.Event):
                self.rec.add("blocked")
                message.wait(10)
                return None
            if message == "crash":
                raise RuntimeError("inline crash")
            self.rec.add(message)
            return threading.get_ident()
        finally:
            self.running -= 1


def test_idle_actor_answers_on_the_callers_thread() -> None:
    rec = Recorder()
    with ActorSystem("t") as system:
        system.spawn(ChildSpec("w", lambda: Where(rec)))
        assert system.ask("w", "a") == threading.get_ident()
    with ActorSystem("t", inline_asks=False) as system:
        system.spawn(ChildSpec("w", lambda: Where(rec)))
        assert system.ask("w", "a") != threading.get_ident()


def test_busy_actor_takes_asks_through_its_mailbox_in_order() -> None:
    rec = Recorder()
    with ActorSystem("t") as system:
        system.spawn(ChildSpec("w", lambda: Where(rec)))
        gate = threading.Event()
        system.tell("w", gate)  # occupies the actor thread
        rec.wait_for(lambda ev: "blocked" in ev)
        # The actor is busy, so an inline-capable ask must queue, not run here.
        second = system._cell("w").ask_future("second", inline=True)
        system.tell("w", "third")
        gate.set()
        assert second.get(timeout=10) != threading.get_ident()
        rec.wait_for(lambda ev: "third" in ev)
        assert rec.events == ["blocked", "second", "third"]


def test_a_senders_earlier_tell_is_handled_before_its_inline_ask() -> None:
    rec = Recorder()
    with ActorSystem("t") as system:
        system.spawn(ChildSpec("w", lambda: Where(rec)))
        for i in range(200):
            system.tell("w", f"tell-{i}")
            system.ask("w", f"ask-{i}")
        expected = [x for i in range(200) for x in (f"tell-{i}", f"ask-{i}")]
        assert rec.events == expected


def test_an_inline_crash_restarts_the_actor_and_ends_its_thread() -> None:
    rec = Recorder()
    with ActorSystem("t") as system:
        system.spawn(ChildSpec("w", lambda: Where(rec)))
        first_thread = [t for t in threading.enumerate() if t.name.startswith("Where-")]
        with pytest.raises(ActorCrashedError, match="inline crash"):
            system.ask("w", "crash")
        for t in first_thread:
            t.join(10)
            assert not t.is_alive()
        system.ask("w", "after")
        assert rec.events[-1] == "after"
