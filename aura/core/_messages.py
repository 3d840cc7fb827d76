"""The messages a mission journals (its mailbox), as tagged msgspec Structs.

Each carries ``at``, the wall-clock time its sender created it: it is
journaled with the message, so ``ctx.now()`` read while handling it is the
same on replay. Evolution follows the eventstore rules: new fields at the
end with defaults, never a type change.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from ._budget import Budget


class Start(msgspec.Struct, tag="start", frozen=True):
    mission: str
    args: list[Any]
    at: float
    budget: Budget | None = None
    """The mission's budget (from ``rt.start``, else its definition)."""
    reuse: str = "never"
    """The id-reuse policy of this start (``never``, ``if_failed``,
    ``always``). A Start is only journaled when it starts a run: the first
    one, or (with a policy other than ``never``) a new run of a settled id."""
    inbox: int = 0
    """Its number in the mission's ``inbox/<id>`` stream when another
    process sent it as a command (0: in-process): applied once."""
    deadline: float = 0.0
    """``rt.start(deadline=seconds)``: when (epoch seconds) the mission times
    out if it has not settled (0: never). Journaled, so it holds across restarts."""
    tags: dict[str, str] = {}
    """``rt.start(tags=...)``: what the user files the mission under (search
    attributes): shown and filtered by ``aura ls --tag``, the console, ``rt.missions``."""
    parent: str = ""
    """A child mission (``ctx.start_child``): the id of the mission that started it."""
    parent_close: str = ""
    """A child's parent-close policy: ``cancel`` (it is cancelled when its
    parent ends) or ``abandon`` (it runs on)."""
    trace: dict[str, str] = {}
    """The trace context of whoever started it (``Runtime(telemetry=)``, a
    W3C ``traceparent`` carrier): every run of the mission continues it."""


DEADLINE_SEQ = -1
"""The ``TimerFired`` seq of a mission's deadline (no command of its code)."""


PARENT_CLOSE_POLICIES = ("cancel", "abandon")
REUSE_POLICIES = ("never", "if_failed", "always")
REUSABLE_IF_FAILED = frozenset({"failed", "cancelled", "dead"})


def input_digest(mission: str, args: list[Any]) -> str:
    """What identifies a start's input: the definition and its arguments."""
    raw = msgspec.msgpack.encode([mission, args])
    return hashlib.sha256(raw).hexdigest()[:16]


class StepDone(msgspec.Struct, tag="step_done", frozen=True, gc=False):
    """The outcome of the step command ``seq`` whose fingerprint was ``fingerprint``.

    A mission keeps every final outcome of its run (replay reads them), so
    they are not tracked by the garbage collector (``gc=False``): a value is
    decoded from msgpack, a fresh tree that cannot refer back to its
    outcome, and a long run with structured results does not grow what
    every full collection traverses."""

    seq: int
    fingerprint: str
    ok: bool
    value: Any
    error_type: str
    error: str
    attempt: int
    at: float
    retry_in: float = -1.0
    """For a failed attempt: seconds until the next attempt, or -1 if the
    retry policy (decided where the exception was, in the executor) says
    this failure is final."""
    heartbeat: Any = None
    """The attempt's last ``aura.heartbeat`` details: the next attempt starts
    from them."""
    cost_usd: float = 0.0
    cost_tokens: int = 0
    """What the attempt reported with ``aura.report_cost``."""
    run: int = 0
    """The run that issued the step (0 in logs from before runs existed: run 1)."""


class Cancel(msgspec.Struct, tag="cancel", frozen=True):
    reason: str
    at: float
    force: bool = False
    """Terminate: end now as ``CANCELLED`` without compensating (also while
    compensating); steps in flight are abandoned."""
    inbox: int = 0
    """Its number in the mission's ``inbox/<id>`` stream when another
    process sent it as a command (0: in-process): applied once."""


class TimerFired(msgspec.Struct, tag="timer_fired", frozen=True):
    """Durable timer ``seq`` is due: a ``ctx.sleep`` ended, a signal wait
    timed out, or (with ``attempt``) the next attempt of step ``seq`` is due."""

    seq: int
    fingerprint: str
    at: float
    attempt: int = 0
    run: int = 0


class Signal(msgspec.Struct, tag="signal", frozen=True):
    name: str
    payload: Any
    at: float
    command: int = 0
    """Its number in ``$commands`` when another process sent it (0: in-process)."""
    key: str = ""
    """The sender's idempotency key: a signal with a key already delivered
    to this mission is dropped (not journaled), so a retried send counts once."""
    inbox: int = 0
    """Its number in the mission's ``inbox/<id>`` stream when another
    process sent it as a command (0: in-process): applied once."""


class RaiseBudget(msgspec.Struct, tag="raise_budget", frozen=True):
    """New budget limits (``None``: keep that one)."""

    usd: float | None
    tokens: int | None
    at: float
    inbox: int = 0
    """Its ``inbox/<id>`` number when sent as a command (0: sent here)."""


class NewRun(msgspec.Struct, tag="new_run", frozen=True):
    """Continue-as-new: run ``run`` of the mission starts with ``args`` and
    what the previous run carries over. Journaled by the mission itself, and
    saved as its snapshot: recovery starts from here, older runs can be
    archived."""

    run: int
    mission: str
    args: list[Any]
    at: float
    memory: dict[str, Any] = {}
    cost_usd: float = 0.0
    cost_tokens: int = 0
    budget: Budget | None = None
    inbox: dict[str, list[Any]] = {}
    """Signals received but not yet waited for: the new run gets them."""
    last_command: int = 0
    input_digest: str = ""
    """``input_digest`` of the Start that began this chain of runs."""
    signal_keys: list[str] = []
    """Idempotency keys of the signals delivered so far (they stay deduplicated)."""
    last_inbox: int = 0
    """The newest ``inbox/<id>`` command applied (later runs stay deduplicated)."""
    deadline: float = 0.0
    """The mission's deadline carries over to its next runs."""
    tags: dict[str, str] = {}
    parent: str = ""
    parent_close: str = ""
    """A child mission's parent and parent-close policy carry over to its next runs."""
    trace: dict[str, str] = {}
    """The starter's trace context carries over too."""


MissionMessage = Start | StepDone | Cancel | TimerFired | Signal | RaiseBudget | NewRun


def inbox_number(message: object) -> int:
    """The ``inbox/<id>`` number of a message sent as a command, else 0."""
    return message.inbox if isinstance(message, (Start, Signal, Cancel, RaiseBudget)) else 0


STREAM_PREFIX = "mission/"
"""A mission's stream (and actor id) is ``mission/<mission id>``."""
TRANSITION = "transition"
"""Event kind of the status changes a mission appends itself."""


class Transition(msgspec.Struct, frozen=True):
    """Journaled (as a ``transition`` event) when a mission's status changes
    to one that recovery must know without replaying: started, terminal."""

    status: str
    reason: str = ""
    result: Any = None
    """The mission's result, on ``completed``: a finished mission can be
    read without its code."""
    name: str = ""
    steps: int = 0
    """Mission definition name and step results recorded, for reading a
    finished or dead mission from its log without replaying it."""
    cost_usd: float = 0.0
    cost_tokens: int = 0
    run: int = 0
    """The run it ended or began (0 in older logs, and for a dead letter)."""
    waiting_for: str = ""
    """For ``waiting``: what the mission waits on (signal name, timer due)."""
    inbox: int = 0
    """A redrive or resume sent as a command: its ``inbox/<id>`` number."""
    budget: Budget | None = None
    """The budget in effect (the start's, else the definition's, as raised
    since), so readers of the log see limits without the mission's code."""
    tags: dict[str, str] = {}
    """The mission's tags, so a reader of its last transition has them."""


RECOVERY = "recovery"
"""Event kind a runtime appends to an unfinished mission when it recovers it."""


class Recovery(msgspec.Struct, frozen=True):
    """A runtime recovered this mission (opening its data directory): who,
    and how many recoveries in a row found it with no progress since (the
    count ``max_recovery_attempts`` limits, across process restarts)."""

    pid: int
    host: str
    at: float
    attempt: int = 1


RESUMED = "resumed"
"""Event kind ``rt.resume`` appends to a cancelled mission it resumes."""


class Resumed(msgspec.Struct, frozen=True):
    """A cancelled mission was resumed: replay skips the Cancel message at
    ``cancel_version``, so the mission goes on as if it had not been cancelled
    (what arrived meanwhile, step results and timers, is applied in order)."""

    cancel_version: int
    at: float
    reason: str = ""


class Peek(msgspec.Struct, frozen=True):
    """A query for the mission's current view; never journaled."""


class Query(msgspec.Struct, frozen=True):
    """``rt.query``: ask a running mission's query handler ``name``; never journaled."""

    name: str
    args: list[Any]


class QueryAnswer(msgspec.Struct, frozen=True):
    value: Any = None
    error: str = ""
    """Why there is no answer (a ``QueryError`` for the caller)."""
