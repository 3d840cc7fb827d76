"""Typed errors of the actor layer, all under :class:`ActorError`."""

from __future__ import annotations


class ActorError(Exception):
    """Root of every error raised by :mod:`actors`."""


class ActorNotFoundError(ActorError, LookupError):
    """No actor is registered under this id in this system."""

    def __init__(self, actor_id: str) -> None:
        self.actor_id = actor_id
        super().__init__(f"no actor {actor_id!r} in this actor system")


class ActorStoppedError(ActorError):
    """The actor was stopped (or removed) and takes no more messages."""

    def __init__(self, actor_id: str, detail: str = "") -> None:
        self.actor_id = actor_id
        super().__init__(f"actor {actor_id!r} is stopped{': ' + detail if detail else ''}")


class ActorCrashedError(ActorError):
    """The actor crashed while handling (or before handling) your message.

    ``journaled`` says whether the message had been made durable before the
    crash: if True a durable actor applies it again on recovery (do not
    resend); if False it was not recorded and may be resent.
    """

    def __init__(self, actor_id: str, cause: BaseException, *, journaled: bool) -> None:
        self.actor_id = actor_id
        self.cause = cause
        self.journaled = journaled
        super().__init__(
            f"actor {actor_id!r} crashed handling the message "
            f"({'journaled, it will be applied on recovery' if journaled else 'not journaled'}): "
            f"{type(cause).__name__}: {cause}"
        )


class ActorStartError(ActorError):
    """An actor failed in its factory or its ``started`` hook."""

    def __init__(self, actor_id: str, cause: BaseException) -> None:
        self.actor_id = actor_id
        self.cause = cause
        super().__init__(f"actor {actor_id!r} failed to start: {type(cause).__name__}: {cause}")


class RestartLimitError(ActorError):
    """A supervisor exceeded its restart intensity and escalated."""

    def __init__(self, supervisor_id: str, child_id: str, max_restarts: int, period: float) -> None:
        self.supervisor_id = supervisor_id
        self.child_id = child_id
        super().__init__(
            f"supervisor {supervisor_id!r} gave up: more than {max_restarts} restarts in "
            f"{period}s (last failing child {child_id!r}); escalating to its parent"
        )


class HandlingUndoneError(ActorError):
    """Why an actor was restarted when a commit it was waiting for failed:
    the one journaling a message ``ask_many`` had it handle speculatively
    (``DurableActor.speculative_handling``), or the one of what its handling
    appended (``DurableActor.append_after``). Its state had gone past its
    log; the new incarnation replays the log. Not a fault of the actor: its
    supervisor restarts it at once and counts it against no restart limit."""

    def __init__(self, actor_id: str, cause: BaseException) -> None:
        self.actor_id = actor_id
        self.cause = cause
        super().__init__(
            f"actor {actor_id!r}: a commit its state depended on failed "
            f"({type(cause).__name__}: {cause}); restarted from its log"
        )


class MessageRejectedError(ActorError):
    """Raised by a handler to refuse a message without crashing the actor.

    A durable actor raises it (before journaling) for messages it cannot
    record, e.g. ones that cannot be encoded or a full disk.
    """


class DuplicateActorError(ActorError, ValueError):
    """An actor id is already registered in this system."""

    def __init__(self, actor_id: str) -> None:
        self.actor_id = actor_id
        super().__init__(f"an actor {actor_id!r} already exists in this actor system")


class AskTimeoutError(ActorError, TimeoutError):
    """No reply arrived within the ask's timeout. The message may still be handled."""

    def __init__(self, actor_id: str, timeout: float) -> None:
        self.actor_id = actor_id
        super().__init__(f"actor {actor_id!r} did not reply within {timeout}s")


class AlreadyPresentError(DuplicateActorError):
    """``start_child`` with the id of a terminated child whose spec the
    supervisor keeps (OTP ``already_present``): ``restart_child`` or
    ``delete_child`` it first."""

    def __init__(self, actor_id: str, supervisor_id: str) -> None:
        ActorError.__init__(
            self,
            f"supervisor {supervisor_id!r} keeps a terminated child {actor_id!r}: "
            "restart_child or delete_child it",
        )
        self.actor_id = actor_id
        self.supervisor_id = supervisor_id


class ChildRunningError(ActorError):
    """``restart_child`` / ``delete_child`` of a child that is not terminated
    (OTP ``running`` / ``restarting``): ``terminate_child`` it first."""

    def __init__(self, actor_id: str, status: str) -> None:
        self.actor_id = actor_id
        self.status = status
        super().__init__(f"child {actor_id!r} is {status}: terminate_child it first")


class MaxChildrenError(ActorError):
    """A dynamic supervisor already runs ``max_children`` children."""

    def __init__(self, supervisor_id: str, max_children: int) -> None:
        self.supervisor_id = supervisor_id
        self.max_children = max_children
        super().__init__(f"dynamic supervisor {supervisor_id!r} is at max_children={max_children}")


class SupervisorCallError(ActorError, TypeError):
    """A supervisor call made to something that cannot take it: an actor that
    is not a supervisor, or a dynamic supervisor asked to ``restart_child`` /
    ``delete_child`` (OTP ``simple_one_for_one``)."""
