"""Child processes for the tests: the `aura` CLI and Python, run from the
repository root with it importable (so children import tests.aura.*)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def python(*args: str, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` to the end; its output as text."""
    return subprocess.run(
        [sys.executable, *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=child_env(),
        timeout=timeout,
    )


def cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``aura --data DATA *args`` to the end."""
    return python("-m", "aura.operating._cli", "--data", str(data), *args)


def cli_process(data: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
    """Start ``aura --data DATA *args``; the test reads its pipes."""
    return subprocess.Popen(
        [sys.executable, "-m", "aura.operating._cli", "--data", str(data), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=child_env(**env),
    )
