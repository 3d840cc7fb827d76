"""Shared fixtures of the aura tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import missions as m


@pytest.fixture(autouse=True)
def clean_hooks() -> Iterator[None]:
    """Reset the step hooks in tests/aura/missions.py; open every gate after."""
    m.GATES.clear()
    m.BARRIERS.clear()
    m.CALLS.clear()
    m.FLAKY.clear()
    m.SAGA.clear()
    m.CANCELLED.clear()
    m.TOOL_CALLS.clear()
    m.CHARGES.clear()
    yield
    for gate in m.GATES.values():
        gate.set()
