"""aura: an embeddable runtime that makes AI-agent work durable.

``Runtime`` runs and recovers missions made of steps (``ctx.step``,
``ctx.gather``, ``ctx.now/random/uuid``) with durable retries
(``RetryPolicy``), durable timers (``ctx.sleep``), signals (``rt.signal`` /
``ctx.wait_signal``), saga compensation, cancel, per-attempt timeouts and
heartbeats, non-determinism detection, dead letters and redrive. Governance:
``ctx.memory`` (journaled, audited), the audit hash chain
(``verify_audit``), tools behind a gateway that checks two signed tokens
(``@aura.tool``, ``ctx.tool``, ``ToolDenied``) and budgets (``Budget``,
``report_cost``, ``rt.raise_budget``).

Rooms (see ARCHITECTURE.md; a room imports only those before it):
``core`` (shared vocabulary), ``governance`` (memory, audit, tokens, tools,
gateway), ``engine`` (runtime, mission actor, steps, delivery),
``operating`` (CLI, worker, inspection, doctor, replay debugger, demo),
then ``testing`` and ``integrations`` on top. This module is the public API.
"""

from typing import Any

from .core._attempts import (
    HeartbeatTimeoutError,
    StepInfo,
    StepTimeoutError,
    current_step,
    heartbeat,
    report_cost,
)
from .core._budget import Budget
from .core._definitions import (
    MissionDef,
    StepDef,
    mission,
    mission_definition,
    step,
    step_definition,
)
from .core._errors import (
    AuraError,
    DefinitionError,
    InvalidTransitionError,
    NonDeterminismError,
    NonRetryableError,
    QueryError,
    ToolDenied,
)
from .core._lifecycle import TERMINAL, TRANSITIONS, MissionStatus, check_transition
from .core._queues import Queue, QueueDeduplicatedError, QueueView
from .core._retry import NO_RETRY, RetryPolicy
from .core._schedules import Schedule, ScheduleView
from .core._telemetry import Telemetry
from .engine._async_client import AsyncMissionHandle, AsyncRuntime
from .engine._context import (
    ArgumentEncodingError,
    ChildMissionError,
    MissionContext,
    MissionInfo,
    SignalTimeoutError,
    StepFailedError,
)
from .engine._mission_actor import MissionView
from .engine._ownership import DirectoryLockedError
from .engine._runtime import (
    MissionCancelledError,
    MissionConflictError,
    MissionDamagedError,
    MissionDeadError,
    MissionFailedError,
    MissionHandle,
    MissionNotFoundError,
    MissionTimeoutError,
    Runtime,
)
from .governance._audit import AuditEntry, AuditReport, export_audit, verify_audit
from .governance._gateway import ToolGateway
from .governance._memory import MemoryValueError, MissionMemory
from .governance._tokens import AgentIdentity, ExecutionToken, KeyFileError, TokenError
from .governance._tools import ToolDef, tool, tool_definition
from .operating._replay import Replay, ReplayStep, replay


def serve_console(
    where: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    read_only: bool = False,
) -> Any:
    """Serve the web console on a background thread and return its
    ``ConsoleServer`` (``.url`` carries the access token, ``.stop()`` ends it).

    ``where`` is a running :class:`Runtime` (the console reads its open log
    and shows its supervision tree) or a data directory / store URL.
    Needs the ``console`` extra: ``pip install 'aura[console]'``."""
    from .operating.console import ConsoleServer

    if isinstance(where, Runtime):
        server = ConsoleServer(
            runtime=where, host=host, port=port, token=token, read_only=read_only
        )
    else:
        server = ConsoleServer(where, host=host, port=port, token=token, read_only=read_only)
    return server.start()


__all__ = [
    "NO_RETRY",
    "AuditEntry",
    "Replay",
    "ReplayStep",
    "replay",
    "serve_console",
    "AgentIdentity",
    "ExecutionToken",
    "KeyFileError",
    "TokenError",
    "ToolDef",
    "ToolDenied",
    "ToolGateway",
    "tool",
    "tool_definition",
    "Budget",
    "report_cost",
    "AuditReport",
    "export_audit",
    "verify_audit",
    "ArgumentEncodingError",
    "MemoryValueError",
    "MissionMemory",
    "MissionCancelledError",
    "MissionConflictError",
    "MissionDamagedError",
    "MissionContext",
    "MissionDeadError",
    "MissionFailedError",
    "MissionHandle",
    "MissionInfo",
    "MissionNotFoundError",
    "MissionTimeoutError",
    "MissionView",
    "HeartbeatTimeoutError",
    "Runtime",
    "AsyncRuntime",
    "AsyncMissionHandle",
    "SignalTimeoutError",
    "StepFailedError",
    "Queue",
    "QueueDeduplicatedError",
    "QueueView",
    "Schedule",
    "Telemetry",
    "ScheduleView",
    "ChildMissionError",
    "StepInfo",
    "StepTimeoutError",
    "current_step",
    "heartbeat",
    "TERMINAL",
    "TRANSITIONS",
    "AuraError",
    "DefinitionError",
    "DirectoryLockedError",
    "InvalidTransitionError",
    "MissionDef",
    "MissionStatus",
    "NonDeterminismError",
    "NonRetryableError",
    "QueryError",
    "RetryPolicy",
    "StepDef",
    "check_transition",
    "mission",
    "mission_definition",
    "step",
    "step_definition",
]
