"""What a supervisor is told and asked, and what it answers.

The messages are internal (the system sends them: a child's exit, a due
restart, the OTP calls); :class:`ChildInfo` and :class:`ChildCounts` are the
public answers of ``which_children`` and ``count_children``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ._cell import ChildSpec, RestartType
from ._lifecycle import ExitReason, LifecycleState

ChildStatus = Literal["running", "passivated", "restarting", "terminated"]


@dataclass(frozen=True)
class ChildInfo:
    """One child as its supervisor sees it (OTP ``which_children``).

    ``status``: ``running`` (an incarnation is up), ``passivated`` (idle, no
    incarnation; its next message starts one), ``restarting`` (its restart
    is due: OTP's ``restarting``), ``terminated`` (its spec is kept but it
    runs no incarnation: OTP's ``undefined``; ``restart_child`` starts it).
    ``restarts``: how often this supervisor has restarted it.
    """

    id: str
    status: ChildStatus
    state: LifecycleState
    kind: Literal["supervisor", "worker"]
    restart: RestartType
    significant: bool
    restarts: int


@dataclass(frozen=True)
class ChildCounts:
    """OTP ``count_children``: ``specs`` children in all; ``active`` with a
    running incarnation; ``passivated`` idle ones (alive to their callers:
    the next message wakes them); ``supervisors`` and ``workers`` by kind;
    ``restarts_in_window``: restarts counted against the intensity now (not
    OTP's: what an operator asks next)."""

    specs: int
    active: int
    passivated: int
    supervisors: int
    workers: int
    restarts_in_window: int = 0


class ChildExit:
    """A child's incarnation ended: ``reason`` None (normal), a
    :class:`Shutdown`, or the error that crashed it or failed its start."""

    __slots__ = ("generation", "id", "reason")

    def __init__(self, child_id: str, generation: int, reason: ExitReason) -> None:
        self.id = child_id
        self.generation = generation
        self.reason = reason


class RestartDue:
    __slots__ = ("token",)

    def __init__(self, token: int) -> None:
        self.token = token


class StartChild:
    __slots__ = ("activate", "spec")

    def __init__(self, spec: ChildSpec, *, activate: bool = True) -> None:
        self.spec = spec
        self.activate = activate


class StartFromTemplate:
    __slots__ = ("activate", "args", "id")

    def __init__(self, child_id: str, args: tuple[object, ...], *, activate: bool) -> None:
        self.id = child_id
        self.args = args
        self.activate = activate


class StartChildren:
    __slots__ = ("activate", "specs")

    def __init__(self, specs: Sequence[ChildSpec], *, activate: bool) -> None:
        self.specs = specs
        self.activate = activate


class ChildCall:
    """``terminate`` / ``restart`` / ``delete`` (OTP's calls of those names)
    or ``remove`` (terminate and delete: ``ActorSystem.stop``)."""

    __slots__ = ("id", "op")

    def __init__(self, op: Literal["terminate", "restart", "delete", "remove"], child_id: str):
        self.op = op
        self.id = child_id


class WhichChildren:
    __slots__ = ("detailed",)

    def __init__(self, *, detailed: bool) -> None:
        self.detailed = detailed


class CountChildren:
    pass
