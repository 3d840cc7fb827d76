"""One owner per data directory: a second runtime never runs a mission the
first one runs. Real processes: the second one is refused at once, or (as a
hot standby) takes over when the first is SIGKILLed, and every step result
is recorded exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import msgspec
import pytest

import aura
from aura.engine._ownership import is_owned, read_holder
from eventstore import EventStore

from . import missions as m
from .processes import child_env, cli_process, read_until, recorded_in

NODE = Path(__file__).parent / "children" / "mission_node.py"
MISSIONS, STEPS = 2, 8


def recorded(data: Path) -> Counter[str]:
    """How many times each step's successful result is in the log."""
    with EventStore.open(data / "events", readonly=True) as log:
        return recorded_in(log)


def node(
    data: Path, effects: Path, incarnation: int, *, standby: bool = False
) -> subprocess.Popen[bytes]:
    env = child_env(AURA_TEST_EFFECTS=str(effects), AURA_TEST_INCARNATION=str(incarnation))
    if standby:
        env["AURA_TEST_STANDBY"] = "1"
    return subprocess.Popen(
        [sys.executable, str(NODE), str(data), str(MISSIONS), str(STEPS), "slow_steps"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def all_keys() -> set[str]:
    return {f"m-{i}/1/{s}" for i in range(MISSIONS) for s in range(STEPS)}


def test_a_second_runtime_is_refused_naming_the_holder(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.approval]) as rt:
        rt.start(m.approval, None, mission_id="a")
        assert is_owned(tmp_path)
        with pytest.raises(aura.DirectoryLockedError) as caught:
            aura.Runtime(tmp_path, missions=[m.approval])
        assert f"pid {os.getpid()}" in str(caught.value)
        assert caught.value.holder is not None and caught.value.holder.pid == os.getpid()
        # The refused runtime changed nothing: the owner goes on.
        rt.signal("a", "approve", "yes")
        rt.signal("a", "note", "n")
        assert rt.handle("a").result(timeout=30) == {"draft": 2, "verdict": "yes", "note": "n"}
    assert not is_owned(tmp_path)
    with aura.Runtime(tmp_path, missions=[m.approval]) as rt:  # free again once closed
        assert rt.get("a").status is aura.MissionStatus.COMPLETED
    holder = read_holder(tmp_path)
    assert holder is not None and holder.pid == os.getpid()


def test_a_second_process_on_the_directory_runs_no_step(tmp_path: Path) -> None:
    """The reported bug: a second process opening the directory one step
    later recovered the same missions and ran their steps again."""
    data, effects = tmp_path / "data", tmp_path / "effects.txt"
    first = node(data, effects, 0)
    read_until(first, b"EFFECT", 2)  # mid-mission
    second = node(data, effects, 1)
    _, err = second.communicate(timeout=60)
    assert second.returncode != 0
    assert b"DirectoryLockedError" in err and f"pid {first.pid}".encode() in err
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err.decode()
    assert out.count(b"RESULT") == MISSIONS
    runs = Counter(line.split()[0] for line in effects.read_text().splitlines())
    assert set(runs) == all_keys()
    assert set(runs.values()) == {1}, f"steps ran more than once: {runs}"
    assert set(recorded(data).values()) == {1}


def test_a_hot_standby_takes_over_a_sigkilled_owner(tmp_path: Path) -> None:
    data, effects = tmp_path / "data", tmp_path / "effects.txt"
    owner = node(data, effects, 0)
    read_until(owner, b"STARTED")
    standby = node(data, effects, 1, standby=True)
    read_until(standby, b"WAITING")
    read_until(owner, b"EFFECT", 3)  # the standby is blocked on the lock meanwhile
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    read_until(standby, b"TOOK_OVER")
    out, err = standby.communicate(timeout=120)
    assert standby.returncode == 0, err.decode()
    expected = sum(i * i for i in range(STEPS))
    results = {
        line.split()[1]: int(line.split()[2])
        for line in out.decode().splitlines()
        if line.startswith("RESULT")
    }
    assert results == {f"m-{i}": expected for i in range(MISSIONS)}
    # Every step's result is recorded once; a step runs again only if it was
    # in flight (its result not journaled) when the owner died.
    assert recorded(data) == Counter({key: 1 for key in all_keys()})
    runs = [line.split() for line in effects.read_text().splitlines()]
    by_key = Counter(key for key, _ in runs)
    assert set(by_key) == all_keys()
    twice = [key for key, n in by_key.items() if n > 1]
    assert len(twice) <= MISSIONS, f"more steps re-ran than were in flight: {twice}"
    assert {inc for _, inc in runs} == {"0", "1"}  # both processes did real work


def test_aura_worker_standby_and_aura_run_beside_an_owner(tmp_path: Path) -> None:
    """`aura run` on a directory a worker owns hands the mission to it; a
    standby worker finishes it after the owner is SIGKILLed; `aura run` of
    an id that is owned is refused."""
    data, effects = tmp_path / "data", tmp_path / "effects.txt"
    env = {"AURA_TEST_EFFECTS": str(effects)}
    owner = cli_process(data, "worker", "--app", "tests.aura.missions", **env)
    read_until(owner, b"serving")
    run = cli_process(
        data, "run", "tests.aura.missions:slow_steps", "--input", "[8]", "--id", "w-1", **env
    )
    read_until(owner, b"EFFECT", 2)
    again = cli_process(
        data, "run", "tests.aura.missions:slow_steps", "--input", "[8]", "--id", "w-1"
    )
    _, err = again.communicate(timeout=60)
    assert again.returncode == 1
    assert b"owned by the runtime of pid" in err and b"w-1" in err
    standby = cli_process(
        data,
        "worker",
        "--app",
        "tests.aura.missions",
        "--standby",
        **env,
        AURA_TEST_INCARNATION="1",
    )
    read_until(standby, b"standby:")
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    read_until(standby, b"serving")
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err.decode()
    assert msgspec.json.decode(out.strip().splitlines()[-1]) == sum(i * i for i in range(8))
    standby.send_signal(signal.SIGTERM)
    _, err = standby.communicate(timeout=60)
    assert standby.returncode == 0, err.decode()
    assert recorded(data) == Counter({f"w-1/1/{s}": 1 for s in range(8)})
