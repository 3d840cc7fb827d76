"""Damaged files are reported, located and contained. Real files are
damaged (truncated, overwritten with another file, a record's bytes flipped,
whole pages overwritten); every reader runs in a child process so that a
crash (SIGBUS, SIGSEGV) fails the test instead of killing it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import msgspec
import pytest

import aura

from .processes import cli, python


@aura.step
def echo(text: str) -> str:
    return text


@aura.mission(name="damage:echoes")
async def echoes(ctx: aura.MissionContext, text: str, wait: bool) -> str:
    said = await ctx.step(echo, text)
    if wait:
        await ctx.wait_signal("go")
    return said


def build(data: Path) -> None:
    """Three missions: a and c finished, b waiting after its one step."""
    with aura.Runtime(data, missions=[echoes]) as rt:
        rt.start(echoes, "MARKER-A", False, mission_id="a").result(timeout=30)
        rt.start(echoes, "MARKER-B", True, mission_id="b")
        rt.wait("b", 30, until={aura.MissionStatus.WAITING})
        rt.start(echoes, "MARKER-C", False, mission_id="c").result(timeout=30)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("pristine") / "data"
    build(data)
    return data


@pytest.fixture
def data(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(pristine, copy)
    (copy / "runtime.lock").unlink(missing_ok=True)
    return copy


OPEN_RUNTIME = """
import sys
import aura
from tests.aura.test_damage import echoes
try:
    aura.Runtime(sys.argv[1], missions=[echoes]).close()
except aura.AuraError as err:
    print(type(err).__name__, err)
except Exception as err:
    print(type(err).__name__, err)
"""


def open_runtime(data: Path) -> subprocess.CompletedProcess[str]:
    return python("-c", OPEN_RUNTIME, str(data))


def flip_step_record(data: Path, marker: bytes) -> int:
    """Break the tag of every stored StepDone carrying ``marker`` (LMDB may
    keep stale copies in free pages: all are changed). Returns how many."""
    path = data / "events" / "data.mdb"
    raw = bytearray(path.read_bytes())
    hits, at = 0, raw.find(marker)
    while at >= 0:
        tag = raw.rfind(b"step_done", max(0, at - 160), at)
        if tag >= 0:
            raw[tag : tag + 9] = b"step_dXne"
            hits += 1
        at = raw.find(marker, at + 1)
    path.write_bytes(bytes(raw))
    return hits


def test_a_truncated_store_file_is_a_clear_error_never_a_bus_error(data: Path) -> None:
    path = data / "events" / "data.mdb"
    os.truncate(path, path.stat().st_size // 2)
    for verb in (["ls"], ["stats"], ["history", "a"], ["audit", "verify"], ["doctor"]):
        done = cli(data, *verb)
        assert done.returncode == 1, (verb, done.returncode, done.stderr)
        assert "truncated" in done.stdout + done.stderr, (verb, done.stderr)
        assert "Traceback" not in done.stderr
    opened = open_runtime(data)
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.startswith("CorruptionError") and "truncated" in opened.stdout
    assert "data.mdb" in opened.stdout


def test_a_file_that_is_not_lmdb_is_a_clear_error(data: Path) -> None:
    (data / "events" / "data.mdb").write_bytes(os.urandom(64 * 1024))
    done = cli(data, "ls")
    assert done.returncode == 1 and "not an LMDB file" in done.stderr
    opened = open_runtime(data)
    assert opened.stdout.startswith("CorruptionError"), opened.stdout + opened.stderr


def test_one_undecodable_record_affects_only_its_mission(data: Path) -> None:
    assert flip_step_record(data, b"MARKER-B") >= 1
    listed = cli(data, "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["mission_id"]: r for r in map(msgspec.json.decode, listed.stdout.splitlines())}
    assert rows["a"]["status"] == rows["c"]["status"] == "completed"
    assert rows["b"]["status"] == "damaged"
    assert "mission/b" in rows["b"]["detail"] and "version" in rows["b"]["detail"]
    stats = msgspec.json.decode(cli(data, "stats", "--json").stdout)
    assert stats["by_status"] == {"completed": 2, "damaged": 1}

    history = cli(data, "history", "b")
    assert history.returncode == 1
    assert "mission/b" in history.stderr and "version 3" in history.stderr
    assert "position" in history.stderr and "Traceback" not in history.stderr
    assert "start" in history.stdout  # what is intact before the damage is shown
    assert cli(data, "show", "a").returncode == 0  # the others are untouched

    audit = cli(data, "audit", "verify")
    assert audit.returncode == 1 and "Traceback" not in audit.stderr
    assert "damaged" in audit.stderr and "mission/b" in audit.stderr

    doctor = cli(data, "doctor")
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    lines = doctor.stdout.splitlines()
    assert any(ln.startswith("DAMAGED") and "mission/b" in ln for ln in lines)
    assert any(ln.startswith("ok") and "mission/a " in ln for ln in lines)
    assert any(ln.startswith("ok") and "mission/c " in ln for ln in lines)

    # A runtime opens, runs the others, and refuses the damaged one by name.
    with aura.Runtime(data, missions=[echoes]) as rt:
        assert rt.get("a").result == "MARKER-A"
        with pytest.raises(aura.MissionDamagedError) as caught:
            rt.get("b")
        assert "mission/b" in str(caught.value) and "version 3" in str(caught.value)
        assert set(rt.damaged()) == {"b"}
        assert {v.mission_id for v in rt.missions()} == {"a", "c"}
        assert rt.start(echoes, "new", False, mission_id="d").result(timeout=30) == "new"
    # Nothing was written to the damaged log.
    again = cli(data, "history", "b")
    assert again.stdout == history.stdout


def test_overwritten_pages_are_found_by_doctor_and_do_not_crash_readers(data: Path) -> None:
    path = data / "events" / "data.mdb"
    raw = bytearray(path.read_bytes())
    page = 4096
    pages = {at // page for at in _all(raw, b"MARKER-C")} - {0, 1}
    assert pages
    for p in pages:
        raw[p * page : (p + 1) * page] = b"\xab" * page
    path.write_bytes(bytes(raw))
    doctor = cli(data, "doctor")
    assert doctor.returncode == 1, (doctor.returncode, doctor.stdout, doctor.stderr)
    assert "DAMAGED" in doctor.stdout and "Traceback" not in doctor.stderr
    for verb in (["ls"], ["stats"], ["audit", "verify"], ["history", "c"]):
        done = cli(data, *verb)
        assert done.returncode in (0, 1), (verb, done.returncode, done.stderr)
        assert "Traceback" not in done.stderr, (verb, done.stderr)


def _all(raw: bytearray, needle: bytes) -> list[int]:
    found, at = [], raw.find(needle)
    while at >= 0:
        found.append(at)
        at = raw.find(needle, at + 1)
    return found
