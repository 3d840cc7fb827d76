"""The aura console script, through its real entry point in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ENTRY = "import sys; from aura._cli import main; sys.exit(main())"


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
