"""The README's crash test example, run as a user would: it passes against
its mission, and fails once the mission code is made non-deterministic (a
planted bug)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent.parent / "README.md"


def example() -> str:
    text = README.read_text()
    section = text.split("Copy this into your test suite")[1]
    return section.split("```python", 1)[1].split("```", 1)[0]


def run(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_example.py").write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_example_is_short_and_passes(tmp_path: Path) -> None:
    source = example()
    assert len(source.strip().splitlines()) < 30
    done = run(tmp_path, source)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_example_finds_a_planted_bug(tmp_path: Path) -> None:
    planted = example().replace(
        "await ctx.step(charge, order, 100)",
        "await ctx.step(charge, order, __import__('random').randint(1, 10**9))",
    )
    assert planted != example()
    done = run(tmp_path, planted)
    assert done.returncode == 1
    assert "CrashSafetyError" in done.stdout
