"""aura: an embeddable runtime that makes AI-agent work durable.

Status: the mission runtime (``aura.Runtime``, ``MissionContext``) is not
built yet (issue 4). What is here is its contract-level groundwork, exactly
as DESIGN.md names it: the error types, ``RetryPolicy``, the mission
lifecycle and its transition table, and the ``@aura.mission`` /
``@aura.step`` definitions; plus the ``aura`` console script.
"""

from ._definitions import MissionDef, StepDef, mission, mission_definition, step, step_definition
from ._errors import (
    AuraError,
    DefinitionError,
    InvalidTransitionError,
    NonDeterminismError,
    NonRetryableError,
)
from ._lifecycle import TERMINAL, TRANSITIONS, MissionStatus, check_transition
from ._retry import NO_RETRY, RetryPolicy

__all__ = [
    "NO_RETRY",
    "TERMINAL",
    "TRANSITIONS",
    "AuraError",
    "DefinitionError",
    "InvalidTransitionError",
    "MissionDef",
    "MissionStatus",
    "NonDeterminismError",
    "NonRetryableError",
    "RetryPolicy",
    "StepDef",
    "check_transition",
    "mission",
    "mission_definition",
    "step",
    "step_definition",
]
