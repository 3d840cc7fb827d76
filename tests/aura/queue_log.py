"""Reading a queue's limits back from the log: what every queue test checks."""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec

from aura.core._lifecycle import SETTLED
from aura.core._messages import TRANSITION, MissionMessage, Start, Transition
from aura.core._queues import DISPATCHED, FINISHED, Dispatched, Finished

SETTLED_VALUES = {s.value for s in SETTLED}


def check_queue_log(store: Any, queue: str, concurrency: int) -> dict[str, int]:
    """Walk the whole log in commit order and assert: no more than
    ``concurrency`` slots are ever taken; each mission of the queue is
    started once, after its slot was given (dispatched) and settles before
    its slot is freed (finished). Returns each mission's dispatch order."""
    decoder = msgspec.msgpack.Decoder(MissionMessage)
    taken: set[str] = set()
    dispatched: dict[str, int] = {}
    freed: dict[str, int] = {}
    started: dict[str, int] = {}
    settled: dict[str, int] = {}
    starts: Counter[str] = Counter()
    order: dict[str, int] = {}
    for e in store.read_all():
        if e.stream == f"queue/{queue}":
            if e.kind == DISPATCHED:
                for mission_id in msgspec.msgpack.decode(e.data, type=Dispatched).mission_ids:
                    assert mission_id not in dispatched, f"{mission_id} dispatched twice"
                    dispatched[mission_id] = e.position
                    order[mission_id] = len(order)
                    taken.add(mission_id)
                assert len(taken) <= concurrency, f"{len(taken)} slots taken at {e.position}"
            elif e.kind == FINISHED:
                for mission_id in msgspec.msgpack.decode(e.data, type=Finished).mission_ids:
                    assert mission_id in taken, f"{mission_id} freed without a slot"
                    taken.discard(mission_id)
                    freed[mission_id] = e.position
        elif e.stream.startswith("mission/"):
            mission_id = e.stream.split("/", 1)[1]
            if e.kind == "message" and isinstance(decoder.decode(e.data), Start):
                starts[mission_id] += 1
                started.setdefault(mission_id, e.position)
            elif e.kind == TRANSITION:
                status = msgspec.msgpack.decode(e.data, type=Transition).status
                if status in SETTLED_VALUES:
                    settled.setdefault(mission_id, e.position)
    for mission_id, position in dispatched.items():
        if mission_id in started:
            assert position < started[mission_id], f"{mission_id} started before its slot"
            assert starts[mission_id] == 1, f"{mission_id} started {starts[mission_id]} times"
    for mission_id, position in freed.items():
        if mission_id in settled:
            assert settled[mission_id] < position, f"{mission_id} freed before it settled"
    return order
