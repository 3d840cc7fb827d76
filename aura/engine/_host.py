"""``MissionHost``: what a mission actor needs of the runtime that hosts it.

The runtime (``_runtime.Runtime``) and the replay debugger's sandbox
(``_replay``) both provide it. The mission actor depends on this protocol,
not on the runtime, so the arrows go one way: runtime -> mission actor ->
host protocol.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..core._definitions import MissionDef
from ..core._telemetry import Telemetry
from ..governance._gateway import ToolGateway


class StepSubmitter(Protocol):
    def submit(self, job: Any) -> None:
        """Run a step attempt (a ``StepJob``) off the actor."""


class BackgroundHost(Protocol):
    """What the runtime's background services (queue dispatchers, schedule
    runners) need of it: the log, the actor system, its step threads, its
    clock, and whether it is closing."""

    store: Any
    system: Any
    _closed: bool

    @property
    def _steps(self) -> Any: ...

    def _clock(self) -> float: ...


class MissionHost(Protocol):
    _definitions: dict[str, MissionDef]
    """The mission definitions it can run, by name."""
    _gateway: ToolGateway
    _history_limit: int
    _max_recovery_attempts: int
    _telemetry: Telemetry | None
    """Told about runs, transitions, events (``Runtime(telemetry=)``)."""

    @property
    def _steps(self) -> StepSubmitter: ...

    def _arm_timer(  # noqa: PLR0917
        self, mission_id: str, seq: int, fingerprint: str, deadline: float, attempt: int, run: int
    ) -> None:
        """Deliver ``TimerFired`` to the mission at ``deadline``."""

    def _settled(self, mission_id: str) -> None:
        """The mission settled (terminal or dead): wake its waiters."""

    def _unsettled(self, mission_id: str) -> None:
        """A settled mission began to run again."""

    def _status_changed(self) -> None:
        """Some mission changed status (``wait(until=)``)."""

    def _compact_later(self, stream: str, up_to: int) -> None:
        """A run ended (continue-as-new): archive it in the background."""

    def _mark_damaged(self, mission_id: str, err: BaseException) -> None:
        """The mission's log cannot be read: do not run it."""

    def _start_child(self, job: Any) -> None:
        """Start a child mission (a ``ChildJob``) unless it exists; tell its
        parent its outcome once it has one."""

    def _check_parent(self, mission_id: str, parent: str) -> None:
        """Cancel child ``mission_id`` if its parent has ended."""

    def _cancel_children(self, mission_ids: list[str], why: str) -> None:
        """Cancel these children (their parent ended)."""

    def _enqueue_for(self, job: Any) -> None:
        """Enqueue a mission for a mission (an ``EnqueueJob``); tell it the id."""
