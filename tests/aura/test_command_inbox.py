"""Commands sent from other processes are applied once, however often
they are delivered: each is numbered in its mission's ``inbox/<id>``
stream, and the mission journals and checks that number. Delivery is at
least once (a crash between delivering and recording how far delivery
got, or a runtime taking a mission over, delivers again), so without the
number a cancel delivered again would cancel a resumed mission, and a
start with a reuse policy would begin another run."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec

import aura
from aura import MissionStatus as S
from aura.engine._commands import (
    COMMANDS_DONE,
    Command,
    CommandsDone,
    inbox_commands,
    queue_command,
)
from eventstore import EventStore, NewEvent

from . import missions as m


def _send(path: Path, command: Command) -> None:
    """Queue ``command`` as another process does, while no runtime runs:
    the next runtime delivers it as it opens."""
    with EventStore.open(path / "events") as store:
        queue_command(store, command)


def _forget_deliveries(path: Path) -> None:
    """What a crash between delivering commands and recording it leaves:
    ``$commands-done`` behind what was delivered."""
    with EventStore.open(path / "events") as store:
        store.append(COMMANDS_DONE, [NewEvent("done", msgspec.msgpack.encode(CommandsDone(0)))])


def test_a_cancel_delivered_again_does_not_cancel_the_resumed_mission(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.approval]) as rt:
        rt.start(m.approval, None, mission_id="r")
        rt.wait("r", 30, until={S.WAITING})
    _send(tmp_path, Command("cancel", "r", time.time(), reason="from elsewhere"))
    with aura.Runtime(tmp_path, missions=[m.approval]) as rt:
        rt.wait("r", 30, until={S.CANCELLED})
        rt.resume("r")
        rt.wait("r", 30, until={S.WAITING})
        assert rt.get("r").last_inbox == 1
    _forget_deliveries(tmp_path)
    with aura.Runtime(tmp_path, missions=[m.approval]) as rt:
        # The cancel (inbox 1) was delivered again as this runtime opened;
        # the mission had applied it, so it is still waiting.
        assert rt.get("r").status is S.WAITING
        rt.signal("r", "approve", "yes")
        rt.signal("r", "note", "n")
        assert rt.handle("r").result(timeout=30) == {"draft": 2, "verdict": "yes", "note": "n"}


def test_a_start_with_reuse_delivered_again_begins_no_second_run(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.arithmetic]) as rt:
        first = rt.start(m.arithmetic, 2, mission_id="a").result(timeout=30)
    again = Command(
        "start",
        "a",
        time.time(),
        name=m.arithmetic.__aura_mission__.name,
        payload=[3],
        reuse="always",
    )
    _send(tmp_path, again)
    with aura.Runtime(tmp_path, missions=[m.arithmetic]) as rt:
        second = rt.handle("a").result(timeout=30)
        assert rt.get("a").run == 2 and second != first
    _forget_deliveries(tmp_path)
    with aura.Runtime(tmp_path, missions=[m.arithmetic]) as rt:
        view = rt.get("a")  # the start was delivered again as this runtime opened
        assert (view.run, view.status, view.last_inbox) == (2, S.COMPLETED, 1)
    with EventStore.open(tmp_path / "events", readonly=True) as store:
        sent = inbox_commands(store, "a", 0)
        assert [(c.kind, c.inbox) for c in sent] == [("start", 1)]


def test_commands_to_one_mission_are_numbered_in_order_by_concurrent_senders(
    tmp_path: Path,
) -> None:
    import threading

    barrier = threading.Barrier(4)
    with EventStore.open(tmp_path / "events") as store:

        def send(i: int) -> None:
            barrier.wait()
            for j in range(5):
                signal = Command("signal", "r", time.time(), name="n", payload=[i, j])
                queue_command(store, signal)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sent = inbox_commands(store, "r", 0)
    assert [c.inbox for c in sent] == list(range(1, 21))
    assert sorted(tuple(c.payload) for c in sent) == [(i, j) for i in range(4) for j in range(5)]
