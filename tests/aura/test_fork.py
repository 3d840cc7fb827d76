"""rt.fork / aura fork: a new mission from another's history up to event N,
then live with the code deployed now; what the copy recorded never runs again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

import aura
from aura import MissionStatus as S
from aura.core._messages import MissionMessage, StepDone
from eventstore import EventStore

from . import fork_missions as fm
from . import missions as am
from .test_cli import aura_cli


@pytest.fixture(autouse=True)
def broken() -> Iterator[None]:
    fm.BROKEN["value"] = True
    fm.RAN.clear()
    yield
    fm.BROKEN["value"] = True


def failed_article(path: Path) -> int:
    """Run the article until publish fails; the position of the event before it."""
    with aura.Runtime(path, missions=[fm.article]) as rt:
        with pytest.raises(aura.MissionFailedError, match="rejects"):
            rt.start(fm.article, "lmdb", mission_id="a").result(timeout=30)
        history = list(rt.store.read("mission/a"))
    decoder = msgspec.msgpack.Decoder(MissionMessage)
    failed = next(
        e.version
        for e in history
        if e.kind == "message"
        and isinstance(msg := decoder.decode(e.data), StepDone)
        and not msg.ok
    )
    return failed - 1


def test_a_failed_run_is_retried_from_the_step_before_with_fixed_code(tmp_path: Path) -> None:
    before_failure = failed_article(tmp_path)
    assert [r.split()[0] for r in fm.RAN] == ["gather", "draft", "publish"]
    fm.BROKEN["value"] = False  # the fix is deployed
    fm.RAN.clear()
    with aura.Runtime(tmp_path, missions=[fm.article]) as rt:
        handle = rt.fork("a", from_position=before_failure, new_id="a-retry")
        assert handle.result(timeout=30) == {"out": "published: draft from facts about lmdb"}
        assert fm.RAN == ["publish a-retry/1/2"]  # gather and draft were replayed, not run
        assert rt.get("a").status is S.FAILED  # the source is untouched
        assert rt.get("a-retry").memory == {"facts": "facts about lmdb"}
        assert rt.verify_audit().ok
        source = list(rt.store.read("mission/a", 1, before_failure))
        copy = list(rt.store.read("mission/a-retry", 1, before_failure))
        assert [(e.kind, e.version) for e in copy] == [(e.kind, e.version) for e in source]
        default = rt.fork("a", from_position=before_failure)
        assert default.mission_id == f"a-fork-{before_failure}"
        assert default.result(timeout=30)["out"].startswith("published")


def test_bad_forks_are_refused_and_write_nothing(tmp_path: Path) -> None:
    before_failure = failed_article(tmp_path)
    with aura.Runtime(tmp_path, missions=[fm.article]) as rt:
        rt.fork("a", from_position=1, new_id="taken")
        rt.wait("taken", timeout=30)  # it fails again: publish is still broken
        head = rt.store.head_position()
        last = rt.store.version("mission/a")
        cases = [
            ({"from_position": 0}, ">= 1"),
            ({"from_position": "3"}, ">= 1"),
            ({"from_position": last + 1}, f"has {last} events"),
            ({"from_position": last}, "is failed at event"),
            ({"from_position": before_failure, "new_id": "taken"}, "already exists"),
            ({"from_position": before_failure, "new_id": "a/b"}, "without '/'"),
        ]
        for kwargs, message in cases:
            with pytest.raises(aura.AuraError, match=message):
                rt.fork("a", **kwargs)  # type: ignore[arg-type]
        with pytest.raises(aura.AuraError, match="no mission 'nobody'"):
            rt.fork("nobody", from_position=1)
        assert rt.store.head_position() == head  # nothing was written


def test_a_fork_across_continue_as_new_starts_from_the_copied_run(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[am.looper], archive_completed_after=None) as rt:
        result = rt.start(am.looper, 0, 60, mission_id="l").result(timeout=60)
        assert result["run"] >= 2
        rt.compact(completed_after=None)  # older runs archived: the fork reads them too
        events = list(rt.store.read("mission/l", archived=True))
        decoder = msgspec.msgpack.Decoder(MissionMessage)
        second_run = next(
            e.version
            for e in events
            if e.kind == "message" and type(decoder.decode(e.data)).__name__ == "NewRun"
        )
        fork = rt.fork("l", from_position=second_run + 3, new_id="l2")
        assert fork.result(timeout=60) == result
        assert rt.get("l2").run == result["run"]  # began in run 2, went on as the source did
        assert rt.store.load_snapshot("mission/l2").version >= second_run


def test_aura_fork_is_delivered_by_the_next_runtime(tmp_path: Path) -> None:
    before_failure = failed_article(tmp_path)
    sent = aura_cli("--data", str(tmp_path), "fork", "a", "--from", str(before_failure))
    assert sent.returncode == 0, sent.stderr
    new_id = f"a-fork-{before_failure}"
    assert f"fork queued for mission {new_id!r}" in sent.stdout
    again = aura_cli("--data", str(tmp_path), "fork", "a", "--from", "999")
    assert again.returncode == 1 and "cannot fork from event 999" in again.stderr
    fm.BROKEN["value"] = False
    with aura.Runtime(tmp_path, missions=[fm.article]) as rt:
        assert rt.wait(new_id, timeout=30).result["out"].startswith("published")
    with EventStore.open(tmp_path / "events", readonly=True) as log:
        assert log.version(f"mission/{new_id}") > before_failure


def test_a_fork_interrupted_after_its_commit_finishes_at_the_next_open(tmp_path: Path) -> None:
    before_failure = failed_article(tmp_path)
    fm.BROKEN["value"] = False
    rt = aura.Runtime(tmp_path, missions=[fm.article])
    rt.fork("a", from_position=before_failure, new_id="f")
    rt.close()  # maybe before publish ran, maybe after: either way nothing is lost
    with aura.Runtime(tmp_path, missions=[fm.article]) as rt:
        assert rt.wait("f", timeout=30).result["out"].startswith("published")
    assert [r for r in fm.RAN if r.startswith(("gather f/", "draft f/"))] == []
