"""OTP supervisors on pykka.

A supervisor is itself a supervised :class:`Actor`, so trees nest and a
supervisor that gives up (restart intensity exceeded) crashes into its
parent: that is escalation. Children start in order, each ``started()``
finishing before the next begins, and stop in reverse order.

Restart intensity is exactly OTP's: at most ``max_restarts`` restarts within
any ``period`` seconds, one window per supervisor, on the system's monotonic
clock; a failed restart counts as a restart. Backoff delays a restart by
``min * 2**n`` (capped at ``max``, jittered by the system's RNG) for the n-th
consecutive failure, and forgets past failures after ``reset_after`` quiet
seconds.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._actor import Actor
from ._cell import Cell, ChildSpec
from ._errors import (
    ActorStartError,
    DuplicateActorError,
    HandlingUndoneError,
    RestartLimitError,
)

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]


@dataclass(frozen=True)
class Backoff:
    """Delay before a restart. Defaults: restart at once, then 0.1 s, 0.2 s, ...
    up to 10 s; ±10 % jitter; forget failures after 30 quiet seconds."""

    min: float = 0.1
    max: float = 10.0
    jitter: float = 0.1
    reset_after: float = 30.0
    first_immediate: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.min <= self.max:
            raise ValueError("Backoff needs 0 <= min <= max")
        if not 0 <= self.jitter < 1:
            raise ValueError("Backoff.jitter must be in [0, 1)")


class _BackoffState:
    def __init__(self, policy: Backoff | None) -> None:
        self.policy = policy
        self.consecutive = 0
        self.last_failure: float | None = None

    def next_delay(self, now: float, rng: random.Random) -> float:
        p = self.policy
        if p is None:
            return 0.0
        if self.last_failure is not None and now - self.last_failure >= p.reset_after:
            self.consecutive = 0
        self.last_failure = now
        n = self.consecutive
        self.consecutive += 1
        if p.first_immediate:
            if n == 0:
                return 0.0
            n -= 1
        delay: float = min(p.max, p.min * (2**n))
        return max(0.0, delay * (1 + rng.uniform(-p.jitter, p.jitter)))


class _ChildFailed:
    __slots__ = ("error", "generation", "id")

    def __init__(self, child_id: str, generation: int, error: BaseException) -> None:
        self.id = child_id
        self.generation = generation
        self.error = error


class _ChildExited:
    __slots__ = ("generation", "id")

    def __init__(self, child_id: str, generation: int) -> None:
        self.id = child_id
        self.generation = generation


class _RestartDue:
    __slots__ = ("ids", "token")

    def __init__(self, ids: list[str], token: int) -> None:
        self.ids = ids
        self.token = token


class _StartChild:
    __slots__ = ("activate", "spec")

    def __init__(self, spec: ChildSpec, *, activate: bool = True) -> None:
        self.spec = spec
        self.activate = activate


class _StartChildren:
    __slots__ = ("activate", "specs")

    def __init__(self, specs: Sequence[ChildSpec], *, activate: bool) -> None:
        self.specs = specs
        self.activate = activate


class _StopChild:
    __slots__ = ("id",)

    def __init__(self, child_id: str) -> None:
        self.id = child_id


class _WhichChildren:
    pass


class Supervisor(Actor):
    """Supervises ``children`` (started in order) plus any added at run time."""

    def __init__(
        self,
        children: Sequence[ChildSpec] = (),
        *,
        strategy: Strategy = "one_for_one",
        max_restarts: int = 3,
        period: float = 5.0,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__()
        if strategy not in ("one_for_one", "one_for_all", "rest_for_one"):
            raise ValueError(f"unknown strategy {strategy!r}")
        if max_restarts < 0 or period <= 0:
            raise ValueError("max_restarts must be >= 0 and period > 0")
        ids = [c.id for c in children]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate child ids in {ids}")
        self.strategy = strategy
        self.max_restarts = max_restarts
        self.period = period
        self._initial = list(children)
        self._order: list[str] = []  # start order
        self._cells: dict[str, Cell] = {}
        self._restarts: deque[float] = deque()
        self._child_restarts: dict[str, deque[float]] = {}
        self._backoff = _BackoffState(backoff)
        self._token = 0

    # ------------------------------------------------------------ lifecycle

    def started(self) -> None:
        # Children of a previous incarnation of this supervisor (it crashed)
        # are stopped first, like linked processes in OTP.
        assert self._cell is not None
        for leftover in reversed(self.system._children_of(self._cell)):
            leftover.stop(final=True, reason="supervisor restarted")
            self.system._unregister(leftover)
        for spec in self._initial:
            try:
                self._add_and_start(spec)
            except BaseException:
                self._stop_children(list(reversed(self._order)), final=True, reason="start failed")
                raise

    def stopped(self) -> None:
        self._stop_children(list(reversed(self._order)), final=True, reason="supervisor stopped")

    def receive(self, message: Any) -> Any:
        if isinstance(message, _ChildFailed):
            self._on_child_failed(message)
        elif isinstance(message, _ChildExited):
            self._on_child_exited(message)
        elif isinstance(message, _RestartDue):
            if message.token == self._token:
                self._restart(message.ids)
        elif isinstance(message, _StartChild):
            try:
                self._add_and_start(message.spec, activate=message.activate)
            except (ActorStartError, DuplicateActorError) as err:
                return err
            return None
        elif isinstance(message, _StartChildren):
            for spec in message.specs:
                try:
                    self._add_and_start(spec, activate=message.activate)
                except (ActorStartError, DuplicateActorError) as err:
                    return err
            return None
        elif isinstance(message, _StopChild):
            if message.id in self._cells:
                self._stop_children([message.id], final=True, reason="stopped by request")
                self._forget(message.id)
        elif isinstance(message, _WhichChildren):
            return [(cid, self._cells[cid].state) for cid in self._order]
        return None

    # ------------------------------------------------------------ children

    def _add_and_start(self, spec: ChildSpec, *, activate: bool = True) -> None:
        cell = self.system._register(spec, parent=self._cell)
        self._cells[spec.id] = cell
        self._order.append(spec.id)
        if not activate:
            cell.register_passive()
            return
        try:
            cell.start()
        except ActorStartError:
            if spec.restart == "temporary":
                self._forget(spec.id)
            raise

    def _forget(self, child_id: str) -> None:
        cell = self._cells.pop(child_id, None)
        if child_id in self._order:
            self._order.remove(child_id)
        if cell is not None:
            self.system._unregister(cell)

    def _stop_children(self, ids: list[str], *, final: bool, reason: str) -> None:
        for cid in ids:
            cell = self._cells.get(cid)
            if cell is not None:
                cell.stop(final=final, reason=reason)
                if final:
                    self.system._unregister(cell)

    def _on_child_failed(self, msg: _ChildFailed) -> None:
        cell = self._cells.get(msg.id)
        if cell is None or cell.generation != msg.generation:
            return  # a stale report about an incarnation already replaced
        if isinstance(msg.error, HandlingUndoneError):
            self._restart([msg.id])  # a rollback, not a failure: nothing counted, no sibling
            return
        if cell.spec.restart == "temporary":
            with cell.lock:
                cell.removed = True
                cell._drop_pending("temporary child crashed")
            self._forget(msg.id)
            return
        if cell.spec.max_restarts is not None and self._child_exhausted(cell.spec):
            self._give_up(cell, msg.error)
            return
        index = self._order.index(msg.id)
        if self.strategy == "one_for_one":
            targets = [msg.id]
        elif self.strategy == "one_for_all":
            targets = list(self._order)
        else:
            targets = self._order[index:]
        others = [cid for cid in targets if cid != msg.id]
        for cid in reversed(others):
            other = self._cells[cid]
            other.stop(final=False, reason=f"sibling {msg.id!r} crashed ({self.strategy})")
            with other.lock:
                other.awaiting_restart = True
        self._schedule_restart(targets, msg.id)

    def _child_exhausted(self, spec: ChildSpec) -> bool:
        """Record a restart of ``spec``; True if it is over its own limit."""
        now = self.system.clock()
        window = self._child_restarts.setdefault(spec.id, deque())
        while window and window[0] <= now - spec.period:
            window.popleft()
        if spec.max_restarts is not None and len(window) >= spec.max_restarts:
            return True
        window.append(now)
        return False

    def _give_up(self, cell: Cell, error: BaseException) -> None:
        with cell.lock:
            cell.removed = True
            cell._drop_pending(f"gave up after {cell.spec.max_restarts} restarts")
        self._forget(cell.id)
        self._child_restarts.pop(cell.id, None)
        self.system.log.error(
            "actor.given_up",
            actor_id=cell.id,
            parent=self.actor_id,
            max_restarts=cell.spec.max_restarts,
            period=cell.spec.period,
            error=repr(error),
        )
        if cell.spec.on_give_up is not None:
            cell.spec.on_give_up(cell.id, error)

    def _on_child_exited(self, msg: _ChildExited) -> None:
        cell = self._cells.get(msg.id)
        if cell is None or cell.generation != msg.generation:
            return
        if cell.spec.restart == "permanent":
            with cell.lock:
                cell.awaiting_restart = True
            self._schedule_restart([msg.id], msg.id)
        else:
            with cell.lock:
                cell.removed = True
                cell._drop_pending("exited normally")
            self._forget(msg.id)

    def _schedule_restart(self, targets: list[str], failed_id: str) -> None:
        now = self.system.clock()
        while self._restarts and self._restarts[0] <= now - self.period:
            self._restarts.popleft()
        if len(self._restarts) >= self.max_restarts:
            self._stop_children(
                list(reversed(self._order)), final=True, reason="supervisor escalated"
            )
            raise RestartLimitError(self.actor_id, failed_id, self.max_restarts, self.period)
        self._restarts.append(now)
        delay = self._backoff.next_delay(now, self.system.rng)
        self._token += 1
        if delay <= 0:
            self._restart(targets)
        else:
            token, me = self._token, self._cell
            assert me is not None
            self.system._scheduler.call_later(
                delay, lambda: me.tell(_RestartDue(targets, token), activity=False)
            )

    def _restart(self, targets: list[str]) -> None:
        for i, cid in enumerate(targets):
            cell = self._cells.get(cid)
            if cell is None:
                continue
            try:
                cell.start()
            except ActorStartError as err:
                # A failed restart counts as a restart: retry it and the rest.
                if cell.spec.max_restarts is not None and self._child_exhausted(cell.spec):
                    self._give_up(cell, err)
                    self._restart(targets[i + 1 :])
                    return
                self._schedule_restart(targets[i:], cid)
                return
