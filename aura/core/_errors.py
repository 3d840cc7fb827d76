"""Typed errors of the mission runtime, all under :class:`AuraError`.

Each has one meaning; messages say what, where (mission, run, step, seq) and
how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence


class AuraError(Exception):
    """Root of every error raised by :mod:`aura`."""


class DefinitionError(AuraError, TypeError):
    """A mission or step definition is malformed, or a function is not one."""


class InvalidTransitionError(AuraError):
    """A mission lifecycle change the transition table does not allow."""

    def __init__(self, mission_id: str, old: str, new: str) -> None:
        self.mission_id = mission_id
        self.old = old
        self.new = new
        super().__init__(
            f"mission {mission_id!r}: cannot go from {old} to {new} "
            "(see aura.TRANSITIONS for the allowed lifecycle)"
        )


class NonRetryableError(AuraError):
    """Raise from a step to fail it at once, whatever its retry policy says."""


class ToolDenied(NonRetryableError):
    """The tool gateway refused a call (the tool never ran): bad or expired
    tokens, a tool this agent may not use, or arguments off the schema."""

    def __init__(self, tool: str, reason: str) -> None:
        self.tool = tool
        self.reason = reason
        super().__init__(f"tool {tool!r} denied: {reason}")


class QueryError(AuraError):
    """A query could not be answered: no such handler, the handler raised,
    its answer cannot be encoded, or it tried to change the mission (a query
    reads the mission's state and never writes to its history)."""


class NonDeterminismError(AuraError):
    """Replaying a mission's log against its code issued different commands.

    ``position`` is the index of the first differing command; ``expected`` is
    what the log recorded, ``got`` what the code issued. The mission is
    dead-lettered instead of being corrupted.
    """

    def __init__(
        self,
        mission_id: str,
        position: int,
        expected: Sequence[str],
        got: Sequence[str],
    ) -> None:
        self.mission_id = mission_id
        self.position = position
        self.expected = list(expected)
        self.got = list(got)
        super().__init__(
            f"mission {mission_id!r} is not deterministic: command {position} differs "
            f"from its log\n{render_diff(position, self.expected, self.got)}"
        )


def render_diff(
    position: int, expected: Sequence[str], got: Sequence[str], context: int = 2
) -> str:
    """A readable side-by-side of the commands around the first difference."""
    lo = max(0, position - context)
    hi = max(len(expected), len(got), position + 1)
    hi = min(hi, position + context + 1)
    lines = []
    for i in range(lo, hi):
        e = expected[i] if i < len(expected) else "(nothing)"
        g = got[i] if i < len(got) else "(nothing)"
        marker = ">>" if i == position else "  "
        lines.append(f"{marker} #{i}: log {e} | code {g}")
    return "\n".join(lines)
