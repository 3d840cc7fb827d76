"""Child processes for the tests: the `aura` CLI and Python, run from the
repository root with it importable (so children import tests.aura.*)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

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


def store_cli_process(store: str, schema: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
    """Start ``aura --store STORE --schema SCHEMA *args``; the test reads its pipes."""
    return subprocess.Popen(
        [sys.executable, "-m", "aura.operating._cli", "--store", store, "--schema", schema, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=child_env(**env),
    )


def read_until(proc: subprocess.Popen[bytes], word: bytes, count: int = 1) -> None:
    """Block on the child's stdout until ``count`` lines start with ``word``."""
    assert proc.stdout is not None
    while count:
        line = proc.stdout.readline()
        assert line, f"child ended before printing {word!r}: {proc.stderr.read().decode()}"  # type: ignore[union-attr]
        if line.startswith(word):
            count -= 1


def recorded_in(store: Any) -> Counter[str]:
    """How many times each step's successful result is in the log of ``store``."""
    import msgspec

    from aura.core._messages import MissionMessage, StepDone

    counts: Counter[str] = Counter()
    decoder = msgspec.msgpack.Decoder(MissionMessage)
    for stream in store.streams():
        if stream.startswith("mission/"):
            mission_id = stream.split("/", 1)[1]
            for e in store.read(stream, archived=True):
                if e.kind == "message":
                    msg = decoder.decode(e.data)
                    if isinstance(msg, StepDone) and msg.ok:
                        counts[f"{mission_id}/{msg.run or 1}/{msg.seq}"] += 1
    return counts
