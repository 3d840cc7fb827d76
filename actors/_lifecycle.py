"""Lifecycle states of a supervised actor, and how an actor's life ends.

An actor ends in one of three ways, as an Erlang process does:

- *normal*: it called :meth:`Actor.stop` (OTP ``normal``);
- *shutdown*: it raised :class:`Shutdown` (OTP ``shutdown``, or
  ``{shutdown, Term}`` with a reason), or its supervisor stopped it;
- *abnormal*: any other exception escaped a handler (a crash).

Normal and shutdown exits are not crashes: they are logged as exits, not
errors, and a ``transient`` child is not restarted after one.
"""

from __future__ import annotations

import enum


class LifecycleState(enum.Enum):
    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"
    PASSIVATED = "passivated"
    """Stopped for idleness; the next message re-activates it (durable actors)."""


class Shutdown(Exception):
    """Raise from a handler to end this actor with OTP's ``shutdown`` exit
    reason (``Shutdown()``) or ``{shutdown, reason}`` (``Shutdown(reason)``).

    The actor handles no further message; ``stopped()`` runs; an ask being
    handled fails with :class:`ActorStoppedError`; the supervisor treats the
    exit as orderly: a ``transient`` or ``temporary`` child is not restarted,
    a ``permanent`` one is, and nothing is logged as a crash.
    """

    def __init__(self, reason: object = None) -> None:
        self.reason = reason
        super().__init__(reason)

    def __str__(self) -> str:
        return "shutdown" if self.reason is None else f"shutdown: {self.reason}"

    def __repr__(self) -> str:
        return f"Shutdown({self.reason!r})"


ExitReason = BaseException | None
"""Why an incarnation ended: None for a normal exit, a :class:`Shutdown`,
or the exception that crashed it."""


def is_abnormal(reason: ExitReason) -> bool:
    """True for a crash: anything but a normal exit or a :class:`Shutdown`."""
    return reason is not None and not isinstance(reason, Shutdown)


def describe_exit(reason: ExitReason) -> str:
    if reason is None:
        return "normal"
    if isinstance(reason, Shutdown):
        return str(reason)
    return f"{type(reason).__name__}: {reason}"
