"""What mission code sees: ``MissionContext`` and the awaitables it returns.

Mission code is a deterministic ``async def`` driven by the mission actor
with ``coroutine.send``, never by an event loop: it advances only when a
journaled message is handled. Every command it issues (schedule a step, ...)
gets the next sequence number and a fingerprint (kind, name, hash of the
arguments); on replay the same commands must come out in the same order.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

import msgspec

from ..core._budget import Budget
from ..core._definitions import MissionDef, StepDef, mission_definition, step_definition
from ..core._errors import AuraError, DefinitionError, QueryError, ToolDenied
from ..core._messages import PARENT_CLOSE_POLICIES
from ..core._queues import QueueDeduplicatedError
from ..core._retry import RetryPolicy
from ..core._tags import check_tags
from ..governance._memory import MissionMemory


class MissionDriver(Protocol):
    """What the context and its awaitables need of what drives the mission
    code (the mission actor; the replay debugger's probe): the outcomes
    journaled so far, and a way to issue each kind of command. Defined here,
    below the actor, so the actor imports this module and not the reverse."""

    results: dict[int, Any]
    fired: set[int]
    delivered: dict[int, Any]
    memory: MissionMemory
    now: float
    replaying: bool
    queries: dict[str, Callable[..., Any]]
    answering: bool
    """A query handler runs now: nothing may be issued or written."""

    def issue_step(
        self,
        definition: StepDef,
        args: tuple[Any, ...],
        retry: RetryPolicy | None,
        compensate: StepDef | None = None,
    ) -> StepFuture: ...

    def issue_timer(self, seconds: float) -> TimerFuture: ...

    def issue_signal_wait(self, name: str, timeout: float | None) -> SignalFuture: ...

    def issue_tool(
        self, name: str, args: dict[str, Any], compensate: StepDef | None = None
    ) -> ToolFuture: ...

    def issue_child(self, start: ChildStart) -> ChildFuture: ...

    def issue_enqueue(self, start: QueuedStart) -> EnqueueFuture: ...

    def run_history(self) -> int: ...

    def patched(self, change_id: str) -> bool: ...

    def continue_as_new_suggested(self) -> bool: ...


class StepFailedError(AuraError):
    """A step failed for good (its retries, if any, are used up)."""

    def __init__(self, name: str, seq: int, error_type: str, error: str, attempt: int) -> None:
        self.step = name
        self.seq = seq
        self.error_type = error_type
        self.error = error
        self.attempt = attempt
        super().__init__(
            f"step {name} (#{seq}) failed after attempt {attempt}: {error_type}: {error}"
        )


class ChildMissionError(AuraError):
    """A child mission (``ctx.start_child``) did not complete: it failed, was
    cancelled, dead-lettered, or could not start (another mission has its id)."""

    def __init__(self, mission_id: str, status: str, error: str) -> None:
        self.mission_id = mission_id
        self.status = status
        self.error = error
        super().__init__(f"child mission {mission_id!r} {status}: {error}")


class ArgumentEncodingError(AuraError, TypeError):
    """Arguments or a result that cannot be journaled (msgpack)."""


def encode_args(
    what: str | Callable[[], str], args: tuple[Any, ...] | list[Any]
) -> tuple[bytes, list[Any]]:
    """Encode ``args`` for the journal and return them as replay will see them.
    ``what`` names them in the error (a callable: built only if needed)."""
    try:
        raw = msgspec.msgpack.encode(args if type(args) is list else list(args))
    except (TypeError, msgspec.EncodeError) as err:
        name = what if isinstance(what, str) else what()
        raise ArgumentEncodingError(f"{name}: arguments cannot be journaled: {err}") from err
    return raw, msgspec.msgpack.decode(raw)


def fingerprint(kind: str, name: str, raw_args: bytes) -> str:
    return f"{kind} {name}#{hashlib.sha256(raw_args).hexdigest()[:12]}"


class Awaitable:
    """Base of what mission code awaits; yields itself to the driver.
    (Not an ABC: the driver's isinstance check is on every step.)"""

    __slots__ = ()

    def ready(self) -> bool:
        """Whether the outcome is known (journaled)."""
        raise NotImplementedError

    def outcome(self) -> Any:
        """The value, or raise the failure, once ready."""
        raise NotImplementedError

    def __await__(self) -> Generator[Awaitable, None, Any]:
        if not self.ready():
            yield self
        return self.outcome()


class SignalTimeoutError(AuraError, TimeoutError):
    """``ctx.wait_signal`` timed out before the signal arrived."""


class TimerFuture(Awaitable):
    def __init__(self, actor: MissionDriver, seq: int) -> None:
        self._actor = actor
        self.seq = seq

    def ready(self) -> bool:
        return self.seq in self._actor.fired

    def outcome(self) -> None:
        return None


class SignalFuture(Awaitable):
    def __init__(self, actor: MissionDriver, seq: int, name: str) -> None:
        self._actor = actor
        self.seq = seq
        self.name = name

    def ready(self) -> bool:
        return self.seq in self._actor.delivered or self.seq in self._actor.fired

    def outcome(self) -> Any:
        if self.seq in self._actor.delivered:
            return self._actor.delivered[self.seq]
        raise SignalTimeoutError(f"signal {self.name!r} did not arrive in time")


class StepFuture(Awaitable):
    __slots__ = ("_actor", "name", "seq")

    def __init__(self, actor: MissionDriver, seq: int, name: str) -> None:
        self._actor = actor
        self.seq = seq
        self.name = name

    def ready(self) -> bool:
        return self.seq in self._actor.results

    def outcome(self) -> Any:
        done = self._actor.results[self.seq]
        if done.ok:
            return done.value
        raise StepFailedError(self.name, self.seq, done.error_type, done.error, done.attempt)


class ToolFuture(StepFuture):
    def outcome(self) -> Any:
        done = self._actor.results[self.seq]
        if not done.ok and done.error_type == "ToolDenied":
            reason = done.error.split(": ", 1)[1] if ": " in done.error else done.error
            raise ToolDenied(self.name, reason)
        return super().outcome()


class ChildFuture(StepFuture):
    """What ``ctx.start_child`` returns: await it for the child's result;
    ``mission_id`` names the child (``rt.get``, ``rt.signal`` it meanwhile)."""

    __slots__ = ()

    @property
    def mission_id(self) -> str:
        return self.name

    def outcome(self) -> Any:
        done = self._actor.results[self.seq]
        if done.ok:
            return done.value
        raise ChildMissionError(self.name, done.error_type, done.error)


class EnqueueFuture(StepFuture):
    """What ``ctx.enqueue`` returns: await it for the enqueued mission's id
    (once the enqueue is durable)."""

    __slots__ = ()

    def outcome(self) -> Any:
        done = self._actor.results[self.seq]
        if done.ok:
            return done.value
        if done.error_type == "QueueDeduplicatedError" and isinstance(done.value, list):
            queue, dedup_id, holder = done.value
            raise QueueDeduplicatedError(queue, dedup_id, holder)
        raise AuraError(done.error)


@dataclass(frozen=True)
class ChildStart:
    """A child mission as ``ctx.start_child`` asks for it."""

    definition: MissionDef
    args: tuple[Any, ...]
    mission_id: str | None
    parent_close: str
    budget: Budget | None
    tags: dict[str, str]


@dataclass(frozen=True)
class QueuedStart:
    """A mission as ``ctx.enqueue`` puts it on a queue."""

    queue: str
    definition: MissionDef
    args: tuple[Any, ...]
    mission_id: str | None
    priority: int
    dedup_id: str


class Gather(Awaitable):
    def __init__(self, parts: tuple[Awaitable, ...]) -> None:
        self.parts = parts

    def ready(self) -> bool:
        return all(p.ready() for p in self.parts)

    def outcome(self) -> list[Any]:
        return [p.outcome() for p in self.parts]


@dataclass(frozen=True)
class MissionInfo:
    mission_id: str
    run: int
    name: str
    history_length: int
    """Events in the log of this run so far."""
    replaying: bool
    continue_as_new_suggested: bool = False
    """This run's history passed the mission's ``history_limit``: call
    ``ctx.continue_as_new(...)`` at the next convenient point."""


class ContinueAsNew(BaseException):
    """Raised by ``ctx.continue_as_new`` to end the run; never catch it."""

    def __init__(self, args: tuple[Any, ...]) -> None:
        super().__init__("continue as new")
        self.args_for_next_run = args


class MissionContext:
    """The mission's only door to the world: every effect goes through it."""

    def __init__(self, actor: MissionDriver, mission_id: str, run: int, name: str) -> None:
        self._actor = actor
        self._mission_id = mission_id
        self._run = run
        self._name = name
        self._rng_state: random.Random | None = None  # made on first use: ~2.5 KB

    @property
    def _rng(self) -> random.Random:
        if self._rng_state is None:
            seed = hashlib.sha256(f"{self._mission_id}/{self._run}".encode()).digest()
            self._rng_state = random.Random(int.from_bytes(seed[:8], "big"))
        return self._rng_state

    @property
    def memory(self) -> MissionMemory:
        """The mission's memory: a mapping whose writes are journaled and
        audited, survives crashes and restarts, readable as ``rt.get(id).memory``."""
        return self._actor.memory

    @property
    def info(self) -> MissionInfo:
        actor = self._actor
        return MissionInfo(
            self._mission_id,
            self._run,
            self._name,
            actor.run_history(),
            actor.replaying,
            actor.continue_as_new_suggested(),
        )

    def continue_as_new(self, *args: Any) -> NoReturn:
        """End this run and start the next run of the same mission id with
        ``args``: memory, cost, budget and pending signals carry over, the
        history starts empty (the old run is archived). Does not return."""
        raise ContinueAsNew(args)

    def step(
        self,
        fn: Callable[..., Any],
        *args: Any,
        retry: RetryPolicy | None = None,
        compensate: Callable[..., Any] | None = None,
    ) -> StepFuture:
        """Schedule step ``fn(*args)``; await the result. Steps run off the
        mission, at least once, and their results are recorded exactly once.

        ``retry`` overrides the step's own policy for this call.
        ``compensate``: a step called as ``compensate(result)`` if the mission
        later fails or is cancelled; completed steps are compensated in
        reverse order of completion (a saga), each compensation a journaled,
        retried step of its own.
        """
        self._no_effect_in_query("ctx.step")
        definition: StepDef = step_definition(fn)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise DefinitionError(f"ctx.step retry= must be a RetryPolicy, got {retry!r}")
        undo = step_definition(compensate) if compensate is not None else None
        return self._actor.issue_step(definition, args, retry, undo)

    def tool(
        self, name: str, /, *, compensate: Callable[..., Any] | None = None, **args: Any
    ) -> ToolFuture:
        """Call tool ``name`` with keyword ``args`` through the gateway; await
        its result. The gateway checks this run's two tokens, the agent's
        allow-list and the arguments first; a refusal raises
        ``aura.ToolDenied`` here. A tool call is a step: retried, timed out,
        heartbeated, journaled, replayed, and with ``compensate=`` (a step,
        called with the tool's result) undone if the mission later fails or
        is cancelled. (So a tool cannot take an argument named ``compensate``.)"""
        self._no_effect_in_query("ctx.tool")
        if not isinstance(name, str) or not name:
            raise TypeError("ctx.tool needs a tool name")
        undo = step_definition(compensate) if compensate is not None else None
        return self._actor.issue_tool(name, args, undo)

    def start_child(
        self,
        mission: Callable[..., Any],
        *args: Any,
        mission_id: str | None = None,
        parent_close: str = "cancel",
        budget: Budget | None = None,
        tags: dict[str, str] | None = None,
    ) -> ChildFuture:
        """Start child mission ``mission(ctx, *args)``; await the handle for its
        result (``ctx.gather`` several to fan out). The child is a mission of
        its own (own history, retries, supervision, ``rt.get``/``signal``/
        ``cancel`` by its id); this mission's history records its start and
        its outcome once, and what the child spent counts toward this
        mission's budget when its outcome arrives. ``mission_id``: the
        child's id (default ``<this id>.<run>.<seq>``, the same on replay);
        starting is idempotent per id. A child that does not complete raises
        :class:`ChildMissionError` here. ``parent_close``: ``"cancel"``
        (default: the child is cancelled when this mission ends: completes,
        fails, is cancelled, continues as new, while the child still runs) or
        ``"abandon"`` (it runs on). ``budget``: the child's own (default: its
        definition's). The child's definition must be known to every runtime
        that may recover it (``Runtime(missions=[...])``)."""
        self._no_effect_in_query("ctx.start_child")
        definition = mission_definition(mission)
        if parent_close not in PARENT_CLOSE_POLICIES:
            raise TypeError(
                f"ctx.start_child parent_close= must be one of "
                f"{', '.join(PARENT_CLOSE_POLICIES)}, got {parent_close!r}"
            )
        if mission_id is not None and (
            not isinstance(mission_id, str) or not mission_id or "/" in mission_id
        ):
            raise TypeError(
                f"ctx.start_child mission_id= must be a non-empty str without '/', "
                f"got {mission_id!r}"
            )
        if mission_id == self._mission_id:
            raise TypeError(f"mission {mission_id!r} cannot be its own child")
        if budget is not None and not isinstance(budget, Budget):
            raise TypeError(f"ctx.start_child budget= must be an aura.Budget, got {budget!r}")
        return self._actor.issue_child(
            ChildStart(definition, args, mission_id, parent_close, budget, check_tags(tags))
        )

    def enqueue(
        self,
        queue: str,
        mission: Callable[..., Any],
        *args: Any,
        mission_id: str | None = None,
        priority: int = 0,
        dedup_id: str | None = None,
    ) -> EnqueueFuture:
        """Put ``mission(ctx, *args)`` on queue ``queue`` (``rt.enqueue``, done
        once: journaled like a step, replayed from the log); await it for the
        mission's id (default ``<this id>.<run>.<seq>``). A ``dedup_id`` in
        use raises :class:`QueueDeduplicatedError` here. The enqueued mission
        is not a child: this mission does not wait for it, nor end it."""
        self._no_effect_in_query("ctx.enqueue")
        definition = mission_definition(mission)
        if not isinstance(queue, str) or not queue:
            raise TypeError(f"ctx.enqueue needs a queue name, got {queue!r}")
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError(f"ctx.enqueue priority= must be an int, got {priority!r}")
        if dedup_id is not None and (not isinstance(dedup_id, str) or not dedup_id):
            raise TypeError(f"ctx.enqueue dedup_id= must be a non-empty str, got {dedup_id!r}")
        if mission_id is not None and (
            not isinstance(mission_id, str) or not mission_id or "/" in mission_id
        ):
            raise TypeError(
                f"ctx.enqueue mission_id= must be a non-empty str without '/', got {mission_id!r}"
            )
        return self._actor.issue_enqueue(
            QueuedStart(queue, definition, args, mission_id, priority, dedup_id or "")
        )

    def sleep(self, seconds: float) -> TimerFuture:
        """A durable timer: survives restarts, fires late rather than never."""
        self._no_effect_in_query("ctx.sleep")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise TypeError(f"ctx.sleep needs a number of seconds >= 0, got {seconds!r}")
        return self._actor.issue_timer(float(seconds))

    def wait_signal(self, name: str, *, timeout: float | None = None) -> SignalFuture:
        """Wait for ``rt.signal(mission_id, name, payload)``; returns the payload.
        Signals sent before the wait are kept and delivered in order. Raises
        :class:`SignalTimeoutError` after ``timeout`` seconds (durable timer)."""
        self._no_effect_in_query("ctx.wait_signal")
        if not isinstance(name, str) or not name:
            raise TypeError("ctx.wait_signal needs a non-empty signal name")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0
        ):
            raise TypeError(f"ctx.wait_signal timeout must be seconds >= 0, got {timeout!r}")
        return self._actor.issue_signal_wait(name, None if timeout is None else float(timeout))

    def set_event(self, key: str, value: Any) -> None:
        """Publish ``value`` under ``key`` for the outside world
        (``rt.get_event(mission_id, key)``): progress, partial results, what
        the mission waits for. Journaled and audited with the mission's next
        commit, replayed like memory; setting a key again replaces its value."""
        self._no_effect_in_query("ctx.set_event")
        self._actor.memory.publish(key, value)

    def patched(self, change_id: str) -> bool:
        """Version a change of mission code while missions are in flight
        (Temporal's ``patched``): ``if ctx.patched("fetch-v2"): new code else:
        old code``. A mission running live takes the new branch (and its log
        records that it did); one whose history was written by the old code
        past this point replays the old branch. Once no mission in flight
        can take the old branch, replace the ``if`` with the new code and a
        ``ctx.deprecate_patch("fetch-v2")``, then later drop that too."""
        if not isinstance(change_id, str) or not change_id:
            raise TypeError("ctx.patched needs a non-empty change id")
        self._no_effect_in_query("ctx.patched")
        return self._actor.patched(change_id)

    def deprecate_patch(self, change_id: str) -> None:
        """Mark where ``ctx.patched(change_id)`` was, once only its new branch
        is left: histories that recorded the change replay unchanged (a
        marker is no command, so nothing is compared), new runs record nothing."""
        if not isinstance(change_id, str) or not change_id:
            raise TypeError("ctx.deprecate_patch needs a non-empty change id")

    def set_query_handler(self, name: str, handler: Callable[..., Any]) -> None:
        """Answer ``rt.query(mission_id, name, *args)`` with ``handler(*args)``
        from the mission's current state, without writing to its history.
        The handler must only read: issuing a step, a timer, a signal wait,
        an event or a memory write from it raises :class:`QueryError`.
        Register handlers where the code runs on replay too (at the top of
        the mission): they are not journaled."""
        if not isinstance(name, str) or not name:
            raise TypeError("ctx.set_query_handler needs a non-empty name")
        if not callable(handler):
            raise TypeError(f"ctx.set_query_handler({name!r}) needs a callable")
        self._actor.queries[name] = handler

    def _no_effect_in_query(self, what: str) -> None:
        if self._actor.answering:
            raise QueryError(
                f"{what} inside a query handler: a query reads the mission's state and "
                "never writes to its history"
            )

    def gather(self, *awaitables: Awaitable) -> Gather:
        """Await several steps issued together; results in argument order."""
        for a in awaitables:
            if not isinstance(a, Awaitable):
                raise TypeError(f"ctx.gather takes what ctx.step returns, got {type(a).__name__}")
        return Gather(awaitables)

    def now(self) -> float:
        """Wall-clock seconds as journaled with the message being handled."""
        return self._actor.now

    def random(self) -> float:
        """A deterministic random float (same sequence on replay)."""
        return self._rng.random()

    def uuid(self) -> uuid.UUID:
        """A deterministic random UUID (same sequence on replay)."""
        return uuid.UUID(int=self._rng.getrandbits(128), version=4)
