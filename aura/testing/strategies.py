"""Hypothesis strategies for crash tests. Values repr as plain Python, so a
shrunk failing example can be pasted back as a regression test."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from . import POINTS


def crash_schedules(
    points: Sequence[str] = POINTS, *, max_hit: int = 40, max_crashes: int = 3
) -> st.SearchStrategy[frozenset[tuple[str, int]]]:
    """Sets of ``(point, hit)``: crash the ``hit``-th time ``point`` is reached."""
    return st.frozensets(
        st.tuples(st.sampled_from(list(points)), st.integers(1, max_hit)), max_size=max_crashes
    )


def signal_orders(signals: Sequence[tuple[str, Any]]) -> st.SearchStrategy[list[tuple[str, Any]]]:
    """The given signals, in every order."""
    return st.permutations(list(signals))


def failure_patterns(attempts: int) -> st.SearchStrategy[list[bool]]:
    """Which of a step's first ``attempts`` attempts fail (True: fails)."""
    return st.lists(st.booleans(), min_size=attempts, max_size=attempts)
