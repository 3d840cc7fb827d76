"""ctx.set_event / rt.get_event and ctx.set_query_handler / rt.query:
published values are durable, replayed once and audited; queries read the
current state and never write to the history."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aura
from aura import MissionStatus as S
from aura.testing import run_mission
from eventstore import EventStore

from . import events_missions as em


def event_writes(path: Path, mission_id: str) -> list[tuple[str, Any]]:
    from aura.governance._memory import MEMORY, decode_write

    with EventStore.open(Path(path) / "events", readonly=True) as log:
        writes = [
            decode_write(e.data)
            for e in log.read(f"mission/{mission_id}", archived=True)
            if e.kind == MEMORY
        ]
    return [(w.key, w.value) for w in writes if w.event]


EXPECTED = [
    ("status", "planning"),
    ("progress", {"done": 1, "of": 3}),
    ("progress", {"done": 2, "of": 3}),
    ("progress", {"done": 3, "of": 3}),
    ("status", "waiting for go"),
    ("status", "finished (True)"),
    ("result", [0, 10, 20]),
]


def test_events_are_published_durably_and_read_by_key(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[em.reporter]) as rt:
        rt.start(em.reporter, 3, mission_id="r")
        rt.wait("r", timeout=30, until={S.WAITING})
        assert rt.get_event("r", "progress", timeout=0) == {"done": 3, "of": 3}
        assert rt.get_event("r", "status", timeout=0) == "waiting for go"
        assert rt.get_event("r", "never", timeout=0) is None
        assert rt.get_event("r", "never", timeout=0, default="none yet") == "none yet"
        assert "progress" not in rt.get("r").memory  # events are not memory
        with pytest.raises(aura.MissionNotFoundError):
            rt.get_event("nobody", "status", timeout=0)
        with pytest.raises(aura.AuraError, match="non-empty str"):
            rt.get_event("r", "", timeout=0)
        rt.signal("r", "go", True)
        assert rt.wait("r", timeout=30).result == [0, 10, 20]
        assert rt.get_event("r", "status", timeout=0) == "finished (True)"
        assert rt.verify_audit().ok
    with aura.Runtime(tmp_path, missions=[em.reporter]) as rt:  # read back after a restart
        assert rt.get_event("r", "progress", timeout=0) == {"done": 3, "of": 3}
    assert event_writes(tmp_path, "r") == EXPECTED  # each journaled once


def test_get_event_waits_until_the_value_is_published(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[em.reporter]) as rt:
        rt.start(em.reporter, 1, mission_id="w")
        rt.wait("w", timeout=30, until={S.WAITING})
        assert rt.get_event("w", "result", timeout=0, default="absent") == "absent"
        got: list[Any] = []
        waiter = threading.Thread(target=lambda: got.append(rt.get_event("w", "result", 30)))
        waiter.start()  # "result" is published only after the signal below
        rt.signal("w", "go", "now")
        waiter.join(30)
        assert got == [[0]]
        assert rt.get_event("w", "status", timeout=0) == "finished (now)"


def test_a_waiter_learns_the_runtime_closed(tmp_path: Path) -> None:
    rt = aura.Runtime(tmp_path, missions=[em.publish_then_wait])
    rt.start(em.publish_then_wait, mission_id="c")
    rt.wait("c", timeout=30, until={S.WAITING})
    errors: list[BaseException] = []

    def wait_for_ever() -> None:
        try:
            rt.get_event("c", "never")
        except aura.AuraError as err:
            errors.append(err)

    waiter = threading.Thread(target=wait_for_ever)
    waiter.start()
    rt.close()
    waiter.join(30)
    assert not waiter.is_alive() and "closed" in str(errors[0])


def test_queries_answer_from_the_current_state_and_write_nothing(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[em.reporter]) as rt:
        rt.start(em.reporter, 2, mission_id="q")
        rt.wait("q", timeout=30, until={S.WAITING})
        version = rt.store.version("mission/q")
        assert rt.query("q", "done") == [0, 10]
        assert rt.query("q", "plus", 2, 3) == [2, 5]
        with pytest.raises(aura.QueryError, match=r"no query 'missing'.*handlers: boom, done"):
            rt.query("q", "missing")
        with pytest.raises(aura.QueryError, match="raised ZeroDivisionError"):
            rt.query("q", "boom")
        with pytest.raises(aura.QueryError, match=r"ctx.memory\['x'\] written inside a query"):
            rt.query("q", "writes")
        with pytest.raises(aura.QueryError, match=r"ctx\.step inside a query handler"):
            rt.query("q", "steps")
        with pytest.raises(aura.QueryError, match="unencodable"):
            rt.query("q", "unencodable")
        with pytest.raises(aura.AuraError, match="cannot be"):
            rt.query("q", "plus", object(), 1)  # arguments must be encodable too
        with pytest.raises(aura.MissionNotFoundError):
            rt.query("nobody", "done")
        assert rt.store.version("mission/q") == version  # nothing journaled by any of it
        assert "x" not in rt.get("q").memory
    with aura.Runtime(tmp_path, missions=[em.reporter]) as rt:
        # Recovered by replay: the code registered its handlers again.
        assert rt.query("q", "done") == [0, 10]
        rt.signal("q", "go", 1)
        rt.wait("q", timeout=30)
        with pytest.raises(aura.QueryError, match="is completed: only a running or waiting"):
            rt.query("q", "done")


def test_events_show_in_history_and_audit(tmp_path: Path) -> None:
    from aura.operating._inspect import history

    with aura.Runtime(tmp_path, missions=[em.publish_then_wait]) as rt:
        rt.start(em.publish_then_wait, mission_id="h")
        rt.wait("h", timeout=30, until={S.WAITING})
        entries = [e for e in aura.export_audit(rt.store) if e["mission_id"] == "h"]
    assert "event.set" in [e["kind"] for e in entries]
    from aura.engine._place import Place

    kinds = [(e["kind"], e.get("summary")) for e in history(Place.of(tmp_path), "h")]
    assert ("event", "event ready = True") in kinds


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.frozensets(
        st.tuples(
            st.sampled_from(["before_append", "after_append", "in_handler", "during_recovery"]),
            st.integers(1, 8),
        ),
        max_size=3,
    )
)
def test_crashes_anywhere_publish_each_event_once(schedule: frozenset[tuple[str, int]]) -> None:
    import tempfile

    where = Path(tempfile.mkdtemp(prefix="aura-events-"))
    outcome = run_mission(em.reporter, 3, schedule=schedule, path=where, signals=[("go", True)])
    assert outcome.status == "completed" and outcome.result == [0, 10, 20]
    assert not outcome.reruns
    assert event_writes(where, "checked") == EXPECTED
