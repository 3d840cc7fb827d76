"""The group committer on its own: who shares a batch, who gets which outcome,
and that no waiting caller is ever stranded (chain of wakes, interrupts)."""

from __future__ import annotations

import linecache
import signal
import sys
import threading
from collections import deque
from collections.abc import Sequence
from types import FrameType
from typing import Any

import pytest

from eventstore._group_commit import GroupCommitter


class ObservedQueue(deque[Any]):
    """The committer's queue, so a test can wait until callers are queued."""

    def __init__(self) -> None:
        super().__init__()
        self.cond = threading.Condition()

    def append(self, item: Any) -> None:
        super().append(item)
        with self.cond:
            self.cond.notify_all()

    def wait_len(self, n: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self) >= n, 10), f"{len(self)} queued, not {n}"


class Gated:
    """A run_batch whose batches starting with a gated op wait for the gate."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gates: dict[str, threading.Event] = {}
        self.entered: dict[str, threading.Event] = {}

    def gate(self, op: str) -> threading.Event:
        self.gates[op], self.entered[op] = threading.Event(), threading.Event()
        return self.gates[op]

    def __call__(self, ops: Sequence[str]) -> list[object]:
        self.batches.append(list(ops))
        gate = self.gates.get(ops[0])
        if gate is not None:
            self.entered[ops[0]].set()
            assert gate.wait(10)
        return [ValueError(op) if op.startswith("bad") else op.upper() for op in ops]


def committer(run: Gated) -> tuple[GroupCommitter[str], ObservedQueue]:
    c: GroupCommitter[str] = GroupCommitter(run)
    c._queue = queue = ObservedQueue()
    return c, queue


def submit_in_thread(
    c: GroupCommitter[str], op: str, results: dict[str, object]
) -> threading.Thread:
    def call() -> None:
        try:
            results[op] = c.submit(op)
        except ValueError as err:
            results[op] = err

    t = threading.Thread(target=call)
    t.start()
    return t


def test_callers_queued_during_a_commit_share_the_next_one() -> None:
    run = Gated()
    c, queue = committer(run)
    results: dict[str, object] = {}
    first = run.gate("first")
    threads = [submit_in_thread(c, "first", results)]
    queue.wait_len(1)
    for i, op in enumerate(["a", "bad", "c"]):
        threads.append(submit_in_thread(c, op, results))
        queue.wait_len(i + 2)  # queued in this order
    first.set()
    for t in threads:
        t.join()
    assert run.batches == [["first"], ["a", "bad", "c"]]
    assert isinstance(results.pop("bad"), ValueError)  # only its own caller fails
    assert results == {"first": "FIRST", "a": "A", "c": "C"}


def test_every_waiter_is_woken_and_the_next_head_leads() -> None:
    run = Gated()
    c, queue = committer(run)
    results: dict[str, object] = {}
    gate_1, gate_2 = run.gate("w1-0"), run.gate("w2-0")
    threads = [submit_in_thread(c, "w1-0", results)]
    queue.wait_len(1)
    wave_2 = [f"w2-{i}" for i in range(30)]
    for i, op in enumerate(wave_2):
        threads.append(submit_in_thread(c, op, results))
        queue.wait_len(i + 2)
    gate_1.set()
    assert run.entered["w2-0"].wait(10)
    # wave 2 commits as one batch (its first op waits on gate_2); those who
    # queue meanwhile form wave 3, led by its head once wave 2 is woken.
    wave_3 = [f"w3-{i}" for i in range(20)]
    for i, op in enumerate(wave_3):
        threads.append(submit_in_thread(c, op, results))
        queue.wait_len(len(wave_2) + i + 1)
    gate_2.set()
    for t in threads:
        t.join()
    assert run.batches == [["w1-0"], wave_2, wave_3]
    assert results == {op: op.upper() for op in ["w1-0", *wave_2, *wave_3]}
    assert not queue


class Interrupted(BaseException):
    pass


def blocked_in_wait(thread_id: int) -> bool:
    """Whether the thread is at the blocking acquire of ``await_turn``."""
    frame: FrameType | None = sys._current_frames().get(thread_id)
    while frame is not None:
        if frame.f_code.co_name == "await_turn":
            return "acquire" in linecache.getline(frame.f_code.co_filename, frame.f_lineno)
        frame = frame.f_back
    return False


def raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals")
def test_an_interrupted_waiter_takes_its_turn_before_the_interrupt_is_raised() -> None:
    run = Gated()
    c, queue = committer(run)
    results: dict[str, object] = {}
    gate = run.gate("first")
    main = threading.main_thread().ident
    assert main is not None
    previous = signal.signal(signal.SIGINT, raise_interrupted)
    try:
        threads = [submit_in_thread(c, "first", results)]
        queue.wait_len(1)

        def interrupt_main_then_queue_behind_it() -> None:
            queue.wait_len(2)
            polled = threading.Event()  # its timeout paces the poll, nothing else
            for _ in range(10_000):  # poll the main thread's stack: no event exists for it
                if blocked_in_wait(main):
                    break
                polled.wait(0.001)
            else:
                pytest.fail("the main thread never waited for its turn")
            signal.pthread_kill(main, signal.SIGINT)
            threads.append(submit_in_thread(c, "behind", results))
            queue.wait_len(3)
            gate.set()

        helper = threading.Thread(target=interrupt_main_then_queue_behind_it)
        helper.start()
        with pytest.raises(Interrupted):
            c.submit("main")  # queued behind "first"
        helper.join()
        for t in threads:
            t.join(10)
            assert not t.is_alive(), "a caller queued behind the interrupted one was stranded"
    finally:
        signal.signal(signal.SIGINT, previous)
    # The interrupt waited for main's turn: its op committed, and the caller
    # queued behind it was not stranded.
    assert run.batches == [["first"], ["main", "behind"]]
    assert results == {"first": "FIRST", "behind": "BEHIND"}
