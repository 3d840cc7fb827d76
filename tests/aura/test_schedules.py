"""Schedules: one mission per cron tick, exactly once across restarts,
crashes and SIGKILLs (the tick is the mission id), a catch-up policy for
ticks missed while no runtime was up, pause/resume/list from Python and
the CLI."""

from __future__ import annotations

import calendar
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

import aura
from actors import FaultInjector, SimulatedCrash
from aura.core._messages import MissionMessage, Start
from aura.core._schedules import next_tick, tick_id
from aura.testing import VirtualClock
from eventstore import EventStore

from . import schedule_missions as sm

NODE = Path(__file__).parent / "children" / "schedule_node.py"
ROOT = Path(__file__).resolve().parent.parent.parent
T0 = calendar.timegm((2026, 1, 1, 0, 30, 0))  # 00:30 UTC


def hourly(catch_up: str) -> aura.Schedule:
    return aura.Schedule("hourly", sm.on_tick, "0 * * * *", args=("h",), catch_up=catch_up)


def open_rt(data: Path, clock: VirtualClock, schedule: aura.Schedule, **kw: object) -> aura.Runtime:
    return aura.Runtime(data, missions=[sm.on_tick], schedules=[schedule], clock=clock, **kw)  # type: ignore[arg-type]


def tick_missions(store: object) -> dict[str, int]:
    """Each schedule mission's id -> how many Starts its log holds."""
    decoder = msgspec.msgpack.Decoder(MissionMessage)
    found = {}
    for stream in store.streams():  # type: ignore[attr-defined]
        if stream.startswith("mission/") and "@" in stream:
            events = store.read(stream)  # type: ignore[attr-defined]
            found[stream[len("mission/") :]] = sum(
                1
                for e in events
                if e.kind == "message" and isinstance(decoder.decode(e.data), Start)
            )
    return found


@pytest.mark.parametrize(
    ("catch_up", "hours"),
    [("all", [1, 2, 3, 4]), ("latest", [4]), ("none", [])],
)
def test_ticks_missed_while_no_runtime_ran_follow_the_catch_up_policy(
    tmp_path: Path, catch_up: str, hours: list[int]
) -> None:
    clock = VirtualClock(T0)
    with open_rt(tmp_path, clock, hourly(catch_up)) as rt:
        assert [v.mission_id for v in rt.missions()] == []  # a new schedule misses nothing
        (view,) = rt.schedules()
        assert view.next_tick == T0 + 30 * 60
    clock.advance(3 * 3600 + 45 * 60)  # down from 00:30 to 04:15
    expected = {tick_id("hourly", T0 - 30 * 60 + h * 3600): h for h in hours}
    with open_rt(tmp_path, clock, hourly(catch_up)) as rt:
        results = {mid: rt.wait(mid, timeout=30).result for mid in expected}
        assert results == {mid: [T0 - 30 * 60 + h * 3600, "h", mid] for mid, h in expected.items()}
        assert {v.mission_id for v in rt.missions()} == set(expected)
        (view,) = rt.schedules()
        assert view.last_tick == T0 - 30 * 60 + 4 * 3600  # handled, whatever ran
        assert view.next_tick == T0 - 30 * 60 + 5 * 3600
    # Opened again at the same moment: every tick was handled, nothing starts twice.
    with open_rt(tmp_path, clock, hourly(catch_up)) as rt:
        assert tick_missions(rt.store) == dict.fromkeys(expected, 1)


def test_a_crash_between_starting_a_tick_and_recording_it_starts_it_once(
    tmp_path: Path,
) -> None:
    clock = VirtualClock(T0)
    with open_rt(tmp_path, clock, hourly("all")):
        pass
    clock.advance(2 * 3600)  # 01:00 and 02:00 are due
    faults = FaultInjector(lambda point, where, hit: point == "schedule_started")
    with pytest.raises(SimulatedCrash):
        open_rt(tmp_path, clock, hourly("all"), faults=faults)  # dies once they started
    with EventStore.open(tmp_path / "events", readonly=True) as store:
        assert sorted(tick_missions(store)) == [
            "hourly@2026-01-01T01:00:00Z",
            "hourly@2026-01-01T02:00:00Z",
        ]
        assert [e.kind for e in store.read("schedule/hourly")] == ["registered"]  # no tick yet
    with open_rt(tmp_path, clock, hourly("all")) as rt:  # starts them again: no-ops
        assert tick_missions(rt.store) == {
            "hourly@2026-01-01T01:00:00Z": 1,
            "hourly@2026-01-01T02:00:00Z": 1,
        }
        assert rt.schedules()[0].last_tick == T0 + 90 * 60


def test_ticks_in_a_pause_never_run_and_resume_counts_from_then(tmp_path: Path) -> None:
    clock = VirtualClock()
    with open_rt(tmp_path, clock, hourly("all")) as rt:
        assert rt.pause_schedule("hourly", "migration") is True
        assert rt.pause_schedule("hourly") is False
        (view,) = rt.schedules()
        assert (view.paused, view.pause_reason, view.next_tick) == (True, "migration", None)
    clock.advance(2 * 3600)  # two ticks fall in the pause
    with open_rt(tmp_path, clock, hourly("all")) as rt:
        assert list(rt.missions()) == []
        assert rt.resume_schedule("hourly") is True
        assert rt.resume_schedule("hourly") is False
        resumed_at = clock()
        assert list(rt.missions()) == []  # none of the pause's ticks
    clock.advance(3600)  # one tick after the resume
    first = next_tick("0 * * * *", resumed_at)
    with open_rt(tmp_path, clock, hourly("all")) as rt:
        assert [v.mission_id for v in rt.missions()] == [tick_id("hourly", first)]


def test_the_cli_lists_pauses_and_resumes_schedules(tmp_path: Path) -> None:
    with open_rt(tmp_path, VirtualClock(), hourly("latest")):
        pass  # registers the schedule in the log
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def aura_cli(*args: str) -> str:
        cli = [sys.executable, "-m", "aura", "--data", str(tmp_path), *args]
        return subprocess.run(cli, capture_output=True, text=True, env=env, check=True).stdout

    assert "paused" in aura_cli("schedule", "pause", "hourly", "--reason", "migration")
    listed = msgspec.json.decode(aura_cli("schedules", "--json"))
    assert (listed["name"], listed["cron"], listed["paused"]) == ("hourly", "0 * * * *", True)
    assert (listed["pause_reason"], listed["next_tick"]) == ("migration", None)
    assert "hourly" in aura_cli("schedules") and "paused" in aura_cli("schedules")
    assert "was paused already" in aura_cli("schedule", "pause", "hourly")
    assert "resumed" in aura_cli("schedule", "resume", "hourly")
    listed = msgspec.json.decode(aura_cli("schedules", "--json"))
    assert listed["paused"] is False
    assert listed["next_tick"] is not None


def test_bad_schedules_are_refused(tmp_path: Path) -> None:
    with pytest.raises(aura.AuraError, match="is not a cron expression"):
        aura.Schedule("s", sm.on_tick, "every day")
    with pytest.raises(aura.AuraError, match="catch_up must be one of all, latest, none"):
        aura.Schedule("s", sm.on_tick, "0 * * * *", catch_up="some")
    with pytest.raises(aura.AuraError, match="non-empty str without '/'"):
        aura.Schedule("a/b", sm.on_tick, "0 * * * *")
    with (
        aura.Runtime(tmp_path, missions=[sm.on_tick]) as rt,
        pytest.raises(aura.AuraError, match="no schedule 'nope' in this runtime"),
    ):
        rt.pause_schedule("nope")
    cli = [sys.executable, "-m", "aura", "--data", str(tmp_path), "schedule", "pause", "nope"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cli, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 1
    assert "no schedule 'nope'" in done.stderr


def test_sigkill_at_random_ticks_runs_every_tick_exactly_once(tmp_path: Path) -> None:
    """A schedule ticking every second (catch-up all), its runtime SIGKILLed
    after a few ticks, twice, then stopped: the log holds one mission per
    second from the first tick to the last, each started once."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for ticks in (3, 2, 2):
        proc = subprocess.Popen(
            [sys.executable, str(NODE), str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        seen = 0
        while seen < ticks:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            seen += line.startswith("TICK")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with EventStore.open(tmp_path / "events", readonly=True) as store:
        missions = tick_missions(store)
    assert set(missions.values()) == {1}
    seconds = sorted(
        calendar.timegm(time.strptime(m.split("@")[1], "%Y-%m-%dT%H:%M:%SZ")) for m in missions
    )
    assert len(seconds) >= 3  # (a TICK line may be a step run again after a kill)
    assert seconds == list(range(seconds[0], seconds[-1] + 1))  # no tick missed, none twice
