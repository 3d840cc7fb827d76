"""pytest fixtures for testing missions (registered through the ``pytest11``
entry point when aura is installed)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..engine._runtime import Runtime
from ._check import Outcome, check_crash_safety
from ._clock import VirtualClock


@pytest.fixture
def aura_runtime(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """A factory of runtimes on a fresh data directory with a virtual clock
    (timers and retry waits fire at once) and one step thread (sync steps
    run one at a time, in the order issued); each is closed after the test.
    Its RNG (restart jitter) is registered with hypothesis."""
    opened: list[Runtime] = []

    def make(**options: Any) -> Runtime:
        options.setdefault("clock", VirtualClock())
        options.setdefault("max_workers", 1)
        rt = Runtime(tmp_path / f"aura-{len(opened)}", **options)
        opened.append(rt)
        try:
            from hypothesis import register_random

            register_random(rt.system.rng)
        except ImportError:  # pragma: no cover - hypothesis is a test dependency
            pass
        return rt

    yield make
    for rt in opened:
        rt.close()


@pytest.fixture
def crash_runtime(tmp_path: Path) -> Callable[..., Outcome]:
    """``crash_runtime(mission, *args, schedule=..., missions=, tools=)``:
    ``aura.testing.check_crash_safety`` (raises ``CrashSafetyError``)."""

    def check(mission: Any, *args: Any, **options: Any) -> Outcome:
        return check_crash_safety(mission, *args, **options)

    return check
