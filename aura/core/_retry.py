"""Retry as a value: how often and how fast a failed step is tried again.

Retryability lives on the error (``aura.NonRetryableError``, or a type listed
in ``non_retryable``), not in the step. Waits between attempts are durable
timers in the runtime: a crash mid-backoff neither resets the attempt count
nor skips the wait.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import DefinitionError, NonRetryableError


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class RetryPolicy:
    """Defaults follow Temporal's, which users already know:

    - ``initial_interval`` = 1 s: wait before the second attempt;
    - ``backoff`` = 2.0: each wait is this times the previous one;
    - ``max_interval`` = 100 s: no wait is longer;
    - ``max_attempts`` = 0: unlimited (1 means "never retry");
    - ``non_retryable`` = (): exception types that fail the step at once
      (``NonRetryableError`` always does).
    """

    initial_interval: float = 1.0
    backoff: float = 2.0
    max_interval: float = 100.0
    max_attempts: int = 0
    non_retryable: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        if not _number(self.initial_interval) or self.initial_interval < 0:
            raise DefinitionError("RetryPolicy.initial_interval must be a number >= 0")
        if not _number(self.backoff) or self.backoff < 1:
            raise DefinitionError("RetryPolicy.backoff must be a number >= 1")
        if not _number(self.max_interval) or self.max_interval < self.initial_interval:
            raise DefinitionError("RetryPolicy.max_interval must be >= initial_interval")
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise DefinitionError("RetryPolicy.max_attempts must be an int (0 = unlimited)")
        if self.max_attempts < 0:
            raise DefinitionError("RetryPolicy.max_attempts must be >= 0 (0 = unlimited)")
        if not isinstance(self.non_retryable, tuple) or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in self.non_retryable
        ):
            raise DefinitionError("RetryPolicy.non_retryable must be a tuple of exception types")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        if attempt < 1:
            raise ValueError("attempt numbers start at 1")
        wait: float = self.initial_interval * self.backoff ** (attempt - 1)
        return min(self.max_interval, wait)

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """Whether to try again after ``error`` ended attempt ``attempt``."""
        if isinstance(error, (NonRetryableError, *self.non_retryable)):
            return False
        if not isinstance(error, Exception):
            return False  # KeyboardInterrupt, SystemExit, cancellation: never retried
        return self.max_attempts == 0 or attempt < self.max_attempts


NO_RETRY = RetryPolicy(max_attempts=1)
