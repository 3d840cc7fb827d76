"""Backoff between restarts: a supervisor may delay a restart by
``min * 2**n`` (capped at ``max``, jittered by the system's RNG) for the n-th
consecutive failure, forgetting past failures after ``reset_after`` quiet
seconds. OTP has no backoff (it restarts at once); without a ``Backoff`` a
supervisor does the same.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delay before a restart. Defaults: restart at once, then 0.1 s, 0.2 s, ...
    up to 10 s; ±10 % jitter; forget failures after 30 quiet seconds."""

    min: float = 0.1
    max: float = 10.0
    jitter: float = 0.1
    reset_after: float = 30.0
    first_immediate: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.min <= self.max:
            raise ValueError("Backoff needs 0 <= min <= max")
        if not 0 <= self.jitter < 1:
            raise ValueError("Backoff.jitter must be in [0, 1)")


class _BackoffState:
    def __init__(self, policy: Backoff | None) -> None:
        self.policy = policy
        self.consecutive = 0
        self.last_failure: float | None = None

    def next_delay(self, now: float, rng: random.Random) -> float:
        p = self.policy
        if p is None:
            return 0.0
        if self.last_failure is not None and now - self.last_failure >= p.reset_after:
            self.consecutive = 0
        self.last_failure = now
        n = self.consecutive
        self.consecutive += 1
        if p.first_immediate:
            if n == 0:
                return 0.0
            n -= 1
        delay: float = min(p.max, p.min * (2**n))
        return max(0.0, delay * (1 + rng.uniform(-p.jitter, p.jitter)))
