"""Budgets: what a mission may spend, and what it has spent.

Steps (and tools) report their cost with ``aura.report_cost(usd=, tokens=)``;
the cost travels in the step's journaled outcome, so the total is rebuilt
exactly on replay. A mission whose total passes its ``budget`` stops
advancing (status ``WAITING``, reason ``budget``): steps already running
finish and are recorded, nothing new starts, until ``rt.raise_budget`` or
``rt.cancel``.
"""

from __future__ import annotations

import math

import msgspec

from ._errors import DefinitionError


class Budget(msgspec.Struct, frozen=True):
    """Limits of a mission's spending; ``None`` means no limit on that measure."""

    usd: float | None = None
    tokens: int | None = None

    def __post_init__(self) -> None:
        if self.usd is not None and (
            isinstance(self.usd, bool)
            or not isinstance(self.usd, (int, float))
            or not math.isfinite(self.usd)
            or self.usd < 0
        ):
            raise DefinitionError(f"Budget(usd=) must be a finite number >= 0, got {self.usd!r}")
        if self.tokens is not None and (
            isinstance(self.tokens, bool) or not isinstance(self.tokens, int) or self.tokens < 0
        ):
            raise DefinitionError(f"Budget(tokens=) must be an int >= 0, got {self.tokens!r}")

    def exceeded_by(self, usd: float, tokens: int) -> str:
        """Why spending ``usd`` and ``tokens`` is over this budget ('' if it is not)."""
        over = []
        if self.usd is not None and usd > self.usd:
            over.append(f"${usd:.4f} spent of ${self.usd:.4f}")
        if self.tokens is not None and tokens > self.tokens:
            over.append(f"{tokens} tokens spent of {self.tokens}")
        return "; ".join(over)

    def raised(self, usd: float | None, tokens: int | None) -> Budget:
        return Budget(self.usd if usd is None else usd, self.tokens if tokens is None else tokens)


def check_cost(usd: object, tokens: object) -> tuple[float, int]:
    if isinstance(usd, bool) or not isinstance(usd, (int, float)) or not math.isfinite(usd):
        raise TypeError(f"report_cost(usd=) must be a finite number, got {usd!r}")
    if isinstance(tokens, bool) or not isinstance(tokens, int):
        raise TypeError(f"report_cost(tokens=) must be an int, got {tokens!r}")
    if usd < 0 or tokens < 0:
        raise ValueError(f"costs are >= 0, got usd={usd!r}, tokens={tokens!r}")
    return float(usd), tokens
