"""The aura console script, through its real entry point in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ENTRY = "import sys; from aura.operating._cli import main; sys.exit(main())"


def aura_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", ENTRY, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_demo_crashes_a_mission_and_resumes_it_without_rerunning_finished_steps(
    tmp_path: Path,
) -> None:
    done = aura_cli("demo", "--data", str(tmp_path / "data"))
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "SIGKILL process 1 mid-mission" in out
    assert "aura demo: OK" in out
    assert "plan                                  yes                    1 + 0" in out
    # A second run on the same directory is a new mission, and works too.
    again = aura_cli("--data", str(tmp_path / "data"), "demo")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "mission 'demo-research-2'" in again.stdout


def test_unknown_command_is_one_clear_error() -> None:
    bad = aura_cli("fly")
    assert bad.returncode == 2
    assert "invalid choice: 'fly'" in bad.stderr


def test_ls_show_and_history_read_the_log_of_a_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert aura_cli("demo", "--data", str(data)).returncode == 0
    listing = aura_cli("--data", str(data), "ls")
    assert listing.returncode == 0
    assert "demo-research-1          completed" in listing.stdout
    as_json = aura_cli("--data", str(data), "ls", "--json", "--status", "completed")
    assert '"mission_id":"demo-research-1"' in as_json.stdout
    assert aura_cli("--data", str(data), "ls", "--status", "failed").stdout.startswith("MISSION")
    shown = aura_cli("--data", str(data), "show", "demo-research-1")
    assert "status: completed" in shown.stdout and "steps_completed: 7" in shown.stdout
    hist = aura_cli("--data", str(data), "history", "demo-research-1")
    lines = hist.stdout.splitlines()
    assert "start" in lines[0] and "demo:research('durable agents')" in lines[0]
    assert any("signal       approve = True" in line for line in lines)
    assert "completed" in lines[-1]
    raw = aura_cli("--data", str(data), "history", "demo-research-1", "--json")
    assert raw.stdout.count("\n") == len(lines)


def test_inspection_errors_are_one_line_and_non_zero(tmp_path: Path) -> None:
    missing = aura_cli("--data", str(tmp_path / "nothing"), "ls")
    assert missing.returncode == 1
    assert missing.stderr.strip().startswith("aura: error: no aura data directory")
    assert len(missing.stderr.strip().splitlines()) == 1
    data = tmp_path / "data"
    aura_cli("demo", "--data", str(data))
    unknown = aura_cli("--data", str(data), "show", "nope")
    assert unknown.returncode == 1 and "no mission 'nope'" in unknown.stderr
