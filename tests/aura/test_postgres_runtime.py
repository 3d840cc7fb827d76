"""A runtime on a PostgreSQL store: one owner at a time through a lease with
a fencing epoch. Real processes: a SIGKILLed owner's lease runs out and a
standby takes over; a SIGSTOPped owner woken after its lease was taken
cannot append; every step result is recorded exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

import aura
from aura.engine._store_lease import StoreOwnedError
from aura.operating._cli import main as cli_main
from eventstore import EventStore

from . import missions as m
from .processes import child_env, read_until, recorded_in, store_cli_process

NODE = Path(__file__).parent / "children" / "mission_node.py"
MISSIONS, STEPS = 2, 8


@pytest.fixture
def store(pg_server_url: str, pg_schema: str) -> Iterator[dict[str, Any]]:
    yield {"store": pg_server_url, "schema": pg_schema}


def recorded(where: dict[str, Any]) -> Counter[str]:
    """How many times each step's successful result is in the log."""
    with EventStore.open(where["store"], schema=where["schema"], readonly=True) as log:
        return recorded_in(log)


def node(
    where: dict[str, Any], effects: Path, incarnation: int, *, standby: bool = False
) -> subprocess.Popen[bytes]:
    env = child_env(
        AURA_TEST_EFFECTS=str(effects),
        AURA_TEST_INCARNATION=str(incarnation),
        AURA_TEST_SCHEMA=where["schema"],
        AURA_TEST_LEASE_TTL="1.0",
    )
    if standby:
        env["AURA_TEST_STANDBY"] = "1"
    return subprocess.Popen(
        [sys.executable, str(NODE), where["store"], str(MISSIONS), str(STEPS), "slow_steps"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def all_keys() -> set[str]:
    return {f"m-{i}/1/{s}" for i in range(MISSIONS) for s in range(STEPS)}


def test_a_runtime_on_postgres_runs_missions_and_a_second_one_is_refused(
    store: dict[str, Any],
) -> None:
    with aura.Runtime(**store, missions=[m.arithmetic, m.approval]) as rt:
        first = rt.start(m.arithmetic, 5, mission_id="a").result(timeout=30)
        rt.start(m.approval, None, mission_id="w")
        with pytest.raises(StoreOwnedError) as refused:
            aura.Runtime(**store, missions=[m.approval])
        assert f"pid {os.getpid()}" in str(refused.value)
        rt.signal("w", "approve", "yes")
        rt.signal("w", "note", "n")
        assert rt.handle("w").result(timeout=30) == {"draft": 2, "verdict": "yes", "note": "n"}
    with aura.Runtime(**store, missions=[m.arithmetic, m.approval]) as rt:  # free once closed
        assert rt.get("a").status is aura.MissionStatus.COMPLETED
        assert rt.handle("a").result(timeout=5) == first
        assert rt.get("w").status is aura.MissionStatus.COMPLETED


def test_the_cli_reads_and_steers_a_postgres_store(
    store: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AURA_STORE", store["store"])
    with aura.Runtime(**store, missions=[m.approval]) as rt:
        rt.start(m.approval, None, mission_id="w")
        rt.wait("w", until=(aura.MissionStatus.WAITING,), timeout=30)
        args = ["--store", store["store"], "--schema", store["schema"]]
        assert cli_main([*args, "ls", "--json"]) == 0
        listed = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        assert [(x["mission_id"], x["status"]) for x in listed] == [("w", "waiting")]
        assert "pid" in listed[0]["owner"]
        assert cli_main([*args, "signal", "w", "approve", '"yes"', "--wait", "30"]) == 0
        assert cli_main([*args, "signal", "w", "note", '"n"', "--wait", "30"]) == 0
        assert rt.handle("w").result(timeout=30)["verdict"] == "yes"
        capsys.readouterr()
        assert cli_main([*args, "history", "w", "--json"]) == 0
        kinds = [json.loads(x)["kind"] for x in capsys.readouterr().out.splitlines()]
        assert "signal" in kinds and kinds[-1] == "transition"
        assert cli_main([*args, "audit", "verify"]) == 0


def test_a_standby_takes_over_when_the_owners_lease_runs_out_after_sigkill(
    store: dict[str, Any], tmp_path: Path
) -> None:
    effects = tmp_path / "effects.txt"
    owner = node(store, effects, 0)
    read_until(owner, b"STARTED")
    standby = node(store, effects, 1, standby=True)
    read_until(standby, b"WAITING")
    read_until(owner, b"EFFECT", 3)
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    read_until(standby, b"TOOK_OVER")  # once the dead owner's 1 s lease ran out
    out, err = standby.communicate(timeout=120)
    assert standby.returncode == 0, err.decode()
    expected = sum(i * i for i in range(STEPS))
    results = {
        line.split()[1]: int(line.split()[2])
        for line in out.decode().splitlines()
        if line.startswith("RESULT")
    }
    assert results == {f"m-{i}": expected for i in range(MISSIONS)}
    assert recorded(store) == Counter({key: 1 for key in all_keys()})
    runs = [line.split() for line in effects.read_text().splitlines()]
    by_key = Counter(key for key, _ in runs)
    assert set(by_key) == all_keys()
    twice = [key for key, n in by_key.items() if n > 1]
    assert len(twice) <= MISSIONS, f"more steps re-ran than were in flight: {twice}"


def test_an_owner_paused_past_its_lease_cannot_append_when_it_wakes(
    store: dict[str, Any], tmp_path: Path
) -> None:
    effects = tmp_path / "effects.txt"
    owner = node(store, effects, 0)
    read_until(owner, b"STARTED")
    read_until(owner, b"EFFECT", 3)
    os.kill(owner.pid, signal.SIGSTOP)
    try:
        standby = node(store, effects, 1, standby=True)
        read_until(standby, b"TOOK_OVER")  # the paused owner's lease ran out
        read_until(standby, b"EFFECT", 2)  # the new owner is working
        os.kill(owner.pid, signal.SIGCONT)  # the old one wakes mid-step
        _, owner_err = owner.communicate(timeout=120)
        out, err = standby.communicate(timeout=120)
    finally:
        if owner.poll() is None:
            os.kill(owner.pid, signal.SIGCONT)
            owner.kill()
            owner.wait()
    assert standby.returncode == 0, err.decode()
    assert owner.returncode != 0  # it stopped: its writes were refused
    assert b"lease" in owner_err
    assert out.count(b"RESULT") == MISSIONS
    assert recorded(store) == Counter({key: 1 for key in all_keys()})
    lines = effects.read_text().splitlines()
    by_key = Counter(line.split()[0] for line in lines)
    twice = [key for key, n in by_key.items() if n > 1]
    assert len(twice) <= MISSIONS, f"more steps re-ran than were in flight: {twice}: {lines}"


def test_aura_worker_on_a_store_takes_runs_handed_over_and_a_standby_finishes_them(
    store: dict[str, Any], tmp_path: Path
) -> None:
    """`aura run` beside a worker that owns the store hands the mission to it;
    a standby worker on another "host" finishes it after the owner is
    SIGKILLed; every step result is recorded once."""
    url, schema = store["store"], store["schema"]
    env = {"AURA_TEST_EFFECTS": str(tmp_path / "effects.txt")}
    owner = store_cli_process(
        url, schema, "worker", "--app", "tests.aura.missions", "--lease", "1", **env
    )
    read_until(owner, b"serving")
    run = store_cli_process(
        url, schema, "run", "tests.aura.missions:slow_steps", "--input", "[8]", "--id", "w-1"
    )
    read_until(owner, b"EFFECT", 2)
    standby = store_cli_process(
        url, schema, "worker", "--app", "tests.aura.missions", "--standby", "--lease", "1",
        **env, AURA_TEST_INCARNATION="1",
    )  # fmt: skip
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
    assert recorded(store) == Counter({f"w-1/1/{s}": 1 for s in range(8)})


def test_a_database_outage_mid_run_fails_no_mission(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server stops under a running mission and comes back: the runtime
    retries, the mission completes, nothing is marked failed or dead and no
    journaled step runs twice."""
    from aura.testing import PostgresServer

    from ..actors.helpers import Recorder, capture_logger

    effects = tmp_path / "effects.txt"
    monkeypatch.setenv("AURA_TEST_EFFECTS", str(effects))
    log = Recorder()
    server = PostgresServer.start()
    try:
        with aura.Runtime(
            store=server.url,
            missions=[m.many_steps],
            lease_ttl=60,
            heartbeat=2,
            logger=capture_logger(log),
        ) as rt:
            handle = rt.start(m.many_steps, 30, mission_id="o1")
            log.wait_for(lambda ev: any(e.get("event") == "step.completed" for e in ev))
            server.stop()  # mid-run: the next commits fail
            # Until the runtime has hit the outage (a poll or a delivery failed).
            log.wait_for(
                lambda ev: any(
                    e.get("event") in ("delivery.retrying", "command.poll_failed") for e in ev
                ),
                timeout=60,
            )
            server.start_again()
            assert handle.result(timeout=120) == sum(i * i for i in range(30))
            assert rt.get("o1").status is aura.MissionStatus.COMPLETED
            assert rt.lost is None
        runs = Counter(line.split()[0] for line in effects.read_text().splitlines())
        assert len(runs) == 30
        with EventStore.open(server.url, readonly=True) as log_store:
            assert set(recorded_in(log_store).values()) == {1}
    finally:
        server.remove()
