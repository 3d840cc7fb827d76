"""The contract-level pieces of aura: lifecycle table, RetryPolicy, definitions, errors."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import aura
from aura import MissionStatus as S

# ------------------------------------------------------------ lifecycle

ALLOWED = {
    (S.PENDING, S.RUNNING),
    (S.PENDING, S.CANCELLED),
    (S.PENDING, S.DEAD),
    (S.RUNNING, S.WAITING),
    (S.RUNNING, S.COMPENSATING),
    (S.RUNNING, S.COMPLETED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
    (S.RUNNING, S.DEAD),
    (S.WAITING, S.RUNNING),
    (S.WAITING, S.COMPENSATING),
    (S.WAITING, S.CANCELLED),
    (S.WAITING, S.DEAD),
    (S.COMPENSATING, S.FAILED),
    (S.COMPENSATING, S.CANCELLED),
    (S.COMPENSATING, S.DEAD),
    (S.DEAD, S.RUNNING),
}


def test_the_states_are_exactly_the_designed_ones() -> None:
    assert {s.name for s in S} == {
        "PENDING",
        "RUNNING",
        "WAITING",
        "COMPENSATING",
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "DEAD",
    }
    assert {s for s in S if s.terminal} == {S.COMPLETED, S.FAILED, S.CANCELLED}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(S, S)))
def test_transition_table_allows_exactly_the_designed_moves(old: S, new: S) -> None:
    if (old, new) in ALLOWED:
        assert aura.check_transition("m-1", old, new) is new
    else:
        with pytest.raises(aura.InvalidTransitionError) as info:
            aura.check_transition("m-1", old, new)
        assert "'m-1'" in str(info.value) and old.value in str(info.value)


# ------------------------------------------------------------ retry policy


def test_retry_policy_defaults_and_backoff() -> None:
    p = aura.RetryPolicy()
    assert (p.initial_interval, p.backoff, p.max_interval, p.max_attempts) == (1.0, 2.0, 100.0, 0)
    assert [p.delay(n) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 64, 100, 100]
    capped = aura.RetryPolicy(initial_interval=0.5, backoff=3, max_interval=5)
    assert [capped.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.5, 4.5, 5]
    with pytest.raises(ValueError):
        p.delay(0)


def test_retry_decisions_live_on_the_error() -> None:
    p = aura.RetryPolicy(max_attempts=3, non_retryable=(KeyError,))
    assert p.should_retry(RuntimeError("flaky"), 1)
    assert p.should_retry(RuntimeError("flaky"), 2)
    assert not p.should_retry(RuntimeError("flaky"), 3)
    assert not p.should_retry(KeyError("bad input"), 1)
    assert not p.should_retry(aura.NonRetryableError("give up"), 1)
    assert not p.should_retry(KeyboardInterrupt(), 1)
    assert aura.RetryPolicy().should_retry(RuntimeError(), 10_000)  # 0 = unlimited
    assert not aura.NO_RETRY.should_retry(RuntimeError(), 1)


@given(
    initial=st.floats(0, 50),
    backoff=st.floats(1, 10),
    extra=st.floats(0, 100),
    attempts=st.integers(1, 40),
)
def test_retry_delays_never_shrink_and_never_pass_the_cap(
    initial: float, backoff: float, extra: float, attempts: int
) -> None:
    p = aura.RetryPolicy(initial_interval=initial, backoff=backoff, max_interval=initial + extra)
    delays = [p.delay(n) for n in range(1, attempts + 1)]
    assert all(a <= b for a, b in itertools.pairwise(delays))
    assert all(0 <= d <= p.max_interval for d in delays)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_interval": -1},
        {"backoff": 0.5},
        {"max_interval": 0.1, "initial_interval": 1},
        {"max_attempts": -1},
        {"max_attempts": 1.5},
        {"max_attempts": True},
        {"non_retryable": [KeyError]},
        {"non_retryable": ("KeyError",)},
        {"initial_interval": "1"},
    ],
)
def test_bad_retry_policies_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(aura.DefinitionError):
        aura.RetryPolicy(**kwargs)


# ------------------------------------------------------------ definitions


@aura.step
def plain(x: int) -> int:
    return x + 1


@aura.step(retry=aura.RetryPolicy(max_attempts=5), timeout=30, heartbeat_timeout=5, name="fetch")
async def fetch(url: str) -> str:
    return url


@aura.mission
async def research(ctx: object, topic: str) -> str:
    return topic


def test_definitions_attach_to_the_function_and_leave_it_callable() -> None:
    assert plain(1) == 2
    d = aura.step_definition(plain)
    assert d.name == f"{__name__}:plain" and not d.is_async and d.retry is None
    f = aura.step_definition(fetch)
    assert (f.name, f.is_async, f.timeout, f.heartbeat_timeout) == ("fetch", True, 30, 5)
    assert f.retry == aura.RetryPolicy(max_attempts=5)
    m = aura.mission_definition(research)
    assert m.name == f"{__name__}:research" and m.fn is research


def test_bad_definitions_are_refused_with_a_clear_error() -> None:
    def sync_mission(ctx: object) -> None: ...

    async def no_ctx() -> None: ...

    async def kw_only(*, ctx: object) -> None: ...

    def gen() -> Any:
        yield 1

    for bad in (sync_mission, no_ctx, kw_only):
        with pytest.raises(aura.DefinitionError, match="mission"):
            aura.mission(bad)
    with pytest.raises(aura.DefinitionError, match="generators"):
        aura.step(gen)
    with pytest.raises(aura.DefinitionError, match="RetryPolicy"):
        aura.step(retry={"max_attempts": 3})  # type: ignore[call-overload]
    for value in (0, -1, "5", True):
        with pytest.raises(aura.DefinitionError, match="seconds"):
            aura.step(timeout=value)  # type: ignore[call-overload]
    with pytest.raises(aura.DefinitionError, match="name"):
        aura.step(name="  ")
    with pytest.raises(aura.DefinitionError, match="not a step"):
        aura.step_definition(lambda: None)
    with pytest.raises(aura.DefinitionError, match="not a mission"):
        aura.mission_definition(plain)


# ------------------------------------------------------------ errors


def test_errors_share_one_root() -> None:
    for err in (
        aura.DefinitionError,
        aura.InvalidTransitionError,
        aura.NonRetryableError,
        aura.NonDeterminismError,
    ):
        assert issubclass(err, aura.AuraError)


def test_non_determinism_error_shows_where_the_code_diverged() -> None:
    expected = ["step fetch#1", "step fetch#2", "timer 3600", "step summarize"]
    got = ["step fetch#1", "step fetch#2", "step summarize"]
    err = aura.NonDeterminismError("r-1", 2, expected, got)
    text = str(err)
    assert "'r-1'" in text and "command 2" in text
    assert ">> #2: log timer 3600 | code step summarize" in text
    assert "   #1: log step fetch#2 | code step fetch#2" in text
    assert "#3: log step summarize | code (nothing)" in text
