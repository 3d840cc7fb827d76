"""OTP supervisors on pykka.

A supervisor is itself a supervised :class:`Actor`, so trees nest and a
supervisor that gives up (restart intensity exceeded) crashes into its
parent: that is escalation. Children start in order, each ``started()``
finishing before the next begins, and stop in reverse order.

The rules are OTP's ``supervisor`` module's, edge cases included:

- intensity: every restart within the last ``period`` seconds counts, the
  boundary included; the supervisor gives up when more than
  ``max_restarts`` fall in the window (on the system's clock);
- a child's exit is judged by its restart type and exit reason: a
  ``permanent`` child is always restarted (a normal exit too), a
  ``transient`` one only after an abnormal exit, a ``temporary`` one never
  (it is removed); a kept child that is not restarted stays *terminated*
  (its spec kept, ``restart_child`` starts it again);
- a restart applies the strategy: ``one_for_all`` terminates the others in
  reverse start order and starts them all again in start order (terminated
  ones too, temporary ones are removed), ``rest_for_one`` the same for the
  child and those started after it;
- a restart that fails to start a child is tried again, counted again,
  for that child's whole group (``one_for_all``: everyone);
- a first start that fails leaves nothing behind: the id is free;
- significant children and ``auto_shutdown`` (OTP 24): the supervisor shuts
  itself down (exit reason ``shutdown``) when any / all of its significant
  children have exited on their own.

Where this differs from OTP (on purpose): a supervisor that gives up
crashes with :class:`RestartLimitError` (OTP exits with ``shutdown``, which a
transient parent would not restart; here escalation always reaches the
parent); restarts may be delayed by a :class:`Backoff`; a child may carry its
own restart limit (``ChildSpec.max_restarts``), past which it alone is given
up instead of the supervisor escalating; a restart whose start fails is
tried again at once, not after the supervisor's queued messages (OTP casts
``try_again_restart`` to itself).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any, Literal

from ._actor import Actor
from ._backoff import Backoff, _BackoffState
from ._cell import Cell, ChildSpec
from ._errors import (
    ActorError,
    ActorNotFoundError,
    ActorStartError,
    ActorStoppedError,
    AlreadyPresentError,
    ChildRunningError,
    DuplicateActorError,
    HandlingUndoneError,
    RestartLimitError,
    SupervisorCallError,
)
from ._lifecycle import ExitReason, LifecycleState, Shutdown, describe_exit, is_abnormal
from ._supervisor_calls import (
    ChildCall,
    ChildCounts,
    ChildExit,
    ChildInfo,
    ChildStatus,
    CountChildren,
    RestartDue,
    StartChild,
    StartChildren,
    StartFromTemplate,
    WhichChildren,
)

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
AutoShutdown = Literal["never", "any_significant", "all_significant"]
S = LifecycleState
_ALIVE = (S.NEW, S.STARTING, S.RUNNING, S.STOPPING)

__all__ = ["AutoShutdown", "Backoff", "Strategy", "Supervisor"]


class Supervisor(Actor):
    """Supervises ``children`` (started in order) plus any added at run time."""

    dynamic = False
    """True for :class:`DynamicSupervisor`: children are not kept once they
    end, and ``restart_child`` / ``delete_child`` do not apply."""

    def __init__(
        self,
        children: Sequence[ChildSpec] = (),
        *,
        strategy: Strategy = "one_for_one",
        max_restarts: int = 3,
        period: float = 5.0,
        backoff: Backoff | None = None,
        auto_shutdown: AutoShutdown = "never",
    ) -> None:
        super().__init__()
        if strategy not in ("one_for_one", "one_for_all", "rest_for_one"):
            raise ValueError(f"unknown strategy {strategy!r}")
        if max_restarts < 0 or period <= 0:
            raise ValueError("max_restarts must be >= 0 and period > 0")
        if auto_shutdown not in ("never", "any_significant", "all_significant"):
            raise ValueError(f"unknown auto_shutdown {auto_shutdown!r}")
        ids = [c.id for c in children]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate child ids in {ids}")
        self.strategy = strategy
        self.max_restarts = max_restarts
        self.period = period
        self.auto_shutdown = auto_shutdown
        for spec in children:
            self._check_spec(spec)
        self._initial = list(children)
        self._order: list[str] = []  # start order
        self._cells: dict[str, Cell] = {}
        self._restarts: deque[float] = deque()  # the intensity window
        self._awaiting: dict[str, int] = {}  # child -> token of the restart that starts it
        self._restart_counts: dict[str, int] = {}
        self._kinds: dict[str, bool] = {}  # child -> is a supervisor (known once started)
        self._child_restarts: dict[str, deque[float]] = {}
        self._backoff = _BackoffState(backoff)
        self._token = 0

    def _check_spec(self, spec: ChildSpec) -> None:
        if spec.significant and self.auto_shutdown == "never":
            raise ValueError(
                f"ChildSpec {spec.id!r} is significant but the supervisor's auto_shutdown "
                "is 'never' (OTP: bad_combination)"
            )

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
                self._stop_all("start failed")
                raise

    def stopped(self) -> None:
        self._stop_all("supervisor stopped")

    def receive(self, message: Any) -> Any:
        if isinstance(message, ChildExit):
            self._on_child_exit(message)
        elif isinstance(message, RestartDue):
            self._start_awaiting(message.token)
        elif isinstance(message, StartChild):
            return self._call_start(message.spec, message.activate)
        elif isinstance(message, StartFromTemplate):
            return self._start_from_template(message)
        elif isinstance(message, StartChildren):
            for spec in message.specs:
                err = self._call_start(spec, message.activate)
                if err is not None:
                    return err
        elif isinstance(message, ChildCall):
            return self._child_call(message)
        elif isinstance(message, WhichChildren):
            if not message.detailed:
                return [(cid, self._cells[cid].state) for cid in self._order]
            return [self._info(cid) for cid in self._order]
        elif isinstance(message, CountChildren):
            return self._counts()
        return None

    # ------------------------------------------------------------ children

    def _status(self, child_id: str) -> ChildStatus:
        if child_id in self._awaiting:
            return "restarting"
        state = self._cells[child_id].state
        if state is S.PASSIVATED:
            return "passivated"
        return "running" if state in _ALIVE else "terminated"

    def _is_supervisor(self, child_id: str) -> bool:
        actor = self._cells[child_id].actor
        if actor is not None:
            self._kinds[child_id] = isinstance(actor, Supervisor)
        return self._kinds.get(child_id, False)

    def _info(self, child_id: str) -> ChildInfo:
        cell = self._cells[child_id]
        return ChildInfo(
            id=child_id,
            status=self._status(child_id),
            state=cell.state,
            kind="supervisor" if self._is_supervisor(child_id) else "worker",
            restart=cell.spec.restart,
            significant=cell.spec.significant,
            restarts=self._restart_counts.get(child_id, 0),
        )

    def _counts(self) -> ChildCounts:
        statuses = [self._status(cid) for cid in self._order]
        supervisors = sum(1 for cid in self._order if self._is_supervisor(cid))
        return ChildCounts(
            specs=len(self._order),
            active=statuses.count("running"),
            passivated=statuses.count("passivated"),
            supervisors=supervisors,
            workers=len(self._order) - supervisors,
            restarts_in_window=len(self._prune_window(self.system.clock())),
        )

    def _prune_window(self, now: float) -> deque[float]:
        """The intensity window at ``now``: restarts at or after ``now - period``."""
        while self._restarts and self._restarts[0] < now - self.period:
            self._restarts.popleft()
        return self._restarts

    def _call_start(self, spec: ChildSpec, activate: bool) -> ActorError | None:
        """OTP ``start_child``: the error (as a value: a call must not crash
        the supervisor) or None."""
        existing = self._cells.get(spec.id)
        if existing is not None:
            if self._status(spec.id) == "terminated":
                return AlreadyPresentError(spec.id, self.actor_id)
            return DuplicateActorError(spec.id)
        try:
            self._check_spec(spec)
            self._check_room()
            self._add_and_start(spec, activate=activate)
        except ValueError as err:
            return ActorStartError(spec.id, err)
        except ActorError as err:
            return err
        return None

    def _check_room(self) -> None:
        """A dynamic supervisor refuses a child past ``max_children``."""

    def _start_from_template(self, message: StartFromTemplate) -> ActorError | None:
        return SupervisorCallError(
            f"supervisor {self.actor_id!r} has no child template: start_child takes a ChildSpec"
        )

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
            # A first start that fails leaves no entry behind (OTP).
            with cell.lock:
                cell.removed = True
            self._forget(spec.id)
            raise

    def _forget(self, child_id: str) -> None:
        cell = self._cells.pop(child_id, None)
        if child_id in self._order:
            self._order.remove(child_id)
        self._awaiting.pop(child_id, None)
        self._restart_counts.pop(child_id, None)
        self._kinds.pop(child_id, None)
        self._child_restarts.pop(child_id, None)
        if cell is not None:
            self.system._unregister(cell)

    def _remove(self, cell: Cell, reason: str) -> None:
        """Stop (if running) and forget a child: it is no longer supervised."""
        cell.stop(final=True, reason=reason)
        self._forget(cell.id)

    def _removes(self, cell: Cell) -> bool:
        return cell.spec.restart == "temporary" or self.dynamic

    def _terminated(self, cell: Cell, reason: str) -> None:
        """A child that ended and is not restarted: temporary ones (and every
        child of a dynamic supervisor) are removed, others kept terminated."""
        if self._removes(cell):
            self._remove(cell, reason)
        else:
            cell.terminate(reason)

    def _stop_all(self, reason: str) -> None:
        for cid in reversed(list(self._order)):
            cell = self._cells.get(cid)
            if cell is not None:
                cell.stop(final=True, reason=reason)
                self.system._unregister(cell)
        self._awaiting.clear()

    # ------------------------------------------------------------ OTP calls

    def _child_call(self, call: ChildCall) -> ActorError | None:
        cell = self._cells.get(call.id)
        if cell is None:
            return ActorNotFoundError(call.id)
        if call.op == "remove":
            self._remove(cell, "stopped by request")
        elif call.op == "terminate":
            self._awaiting.pop(call.id, None)
            self._terminated(cell, "terminated by request")
        elif self.dynamic:
            return SupervisorCallError(
                f"{call.op}_child does not apply to dynamic supervisor {self.actor_id!r} "
                "(OTP: simple_one_for_one); terminate_child removes a child"
            )
        elif (status := self._status(call.id)) != "terminated":
            return ChildRunningError(call.id, status)
        elif call.op == "delete":
            self._forget(call.id)
        else:
            try:
                cell.start()
            except ActorStartError as err:
                cell.terminate(f"restart_child failed: {err}")
                return err
        return None

    # ------------------------------------------------------------ exits

    def _on_child_exit(self, msg: ChildExit) -> None:
        cell = self._cells.get(msg.id)
        if cell is None or cell.generation != msg.generation or msg.id in self._awaiting:
            return  # a stale report about an incarnation already replaced
        reason = msg.reason
        if isinstance(reason, HandlingUndoneError):
            # A rollback, not a failure: restarted at once, nothing counted, no sibling.
            self._awaiting[msg.id] = self._token = self._token + 1
            self._start_awaiting(self._token)
            return
        spec = cell.spec
        abnormal = is_abnormal(reason)
        restart = spec.restart == "permanent" or (spec.restart == "transient" and abnormal)
        self._report_exit(cell, reason, restart)
        if not restart:
            self._terminated(cell, describe_exit(reason))
            self._check_auto_shutdown(cell.spec)
            return
        if spec.max_restarts is not None and self._child_exhausted(spec):
            self._give_up(cell, reason)
            return
        self._restart(msg.id)

    def _report_exit(self, cell: Cell, reason: ExitReason, restart: bool) -> None:
        fields = {
            "actor_id": cell.id,
            "parent": self.actor_id,
            "reason": describe_exit(reason),
            "restart": cell.spec.restart,
            "action": "restart" if restart else "remove" if self._removes(cell) else "keep",
        }
        if is_abnormal(reason):
            self.system.log.error("actor.crashed", **fields)
        elif self.system.logging_info():
            self.system.log.info("actor.exited", **fields)

    def _check_auto_shutdown(self, spec: ChildSpec) -> None:
        if not spec.significant or self.auto_shutdown == "never":
            return
        if self.auto_shutdown == "all_significant" and any(
            self._cells[cid].spec.significant and self._status(cid) != "terminated"
            for cid in self._order
        ):
            return
        raise Shutdown(f"auto_shutdown: significant child {spec.id!r} exited")

    # ------------------------------------------------------------ restarts

    def _restart(self, failed_id: str) -> None:
        """OTP ``restart/2``: count the restart (escalating past the limit),
        terminate the strategy's group and start it again."""
        now = self.system.clock()
        self._prune_window(now).append(now)
        if len(self._restarts) > self.max_restarts:
            self._escalate(failed_id)
        group = self._group(failed_id)
        for cid in reversed(group):
            cell = self._cells.get(cid)
            if cid == failed_id or cell is None or cid in self._awaiting:
                continue
            if cell.spec.restart == "temporary":
                self._remove(cell, f"sibling {failed_id!r} restarted ({self.strategy})")
                continue
            with cell.lock:
                cell.awaiting_restart = True  # buffer what is sent meanwhile
            cell.stop(final=False, reason=f"sibling {failed_id!r} restarted ({self.strategy})")
        self._token += 1
        token = self._token
        for cid in group:
            cell = self._cells.get(cid)
            if cell is not None:
                self._awaiting[cid] = token
                with cell.lock:
                    cell.awaiting_restart = True
        delay = self._backoff.next_delay(now, self.system.rng)
        if delay <= 0:
            self._start_awaiting(token)
            return
        me = self._cell
        assert me is not None
        self.system._scheduler.call_later(delay, lambda: me.tell(RestartDue(token), activity=False))

    def _group(self, failed_id: str) -> list[str]:
        if self.strategy == "one_for_one":
            return [failed_id]
        if self.strategy == "one_for_all":
            return list(self._order)
        return self._order[self._order.index(failed_id) :]

    def _start_awaiting(self, token: int) -> None:
        """Start, in start order, the children the restart ``token`` stands
        for. A failure is a restart of the failed child's group again."""
        for cid in list(self._order):
            if self._awaiting.get(cid) != token:
                continue
            cell = self._cells[cid]
            try:
                cell.start()
            except ActorStartError as err:
                self.system.log.error(
                    "actor.start_failed", actor_id=cid, parent=self.actor_id, error=str(err)
                )
                if cell.spec.max_restarts is not None and self._child_exhausted(cell.spec):
                    self._give_up(cell, err)
                    continue
                self._restart(cid)  # try again: counted, the whole group again
                return
            del self._awaiting[cid]
            self._restart_counts[cid] = self._restart_counts.get(cid, 0) + 1

    def _escalate(self, failed_id: str) -> None:
        self.system.log.error(
            "supervisor.gave_up",
            supervisor=self.actor_id,
            child=failed_id,
            max_restarts=self.max_restarts,
            period=self.period,
        )
        self._stop_all("supervisor escalated")
        raise RestartLimitError(self.actor_id, failed_id, self.max_restarts, self.period)

    def _child_exhausted(self, spec: ChildSpec) -> bool:
        """Record a restart of ``spec``; True if it is over its own limit."""
        now = self.system.clock()
        window = self._child_restarts.setdefault(spec.id, deque())
        while window and window[0] < now - spec.period:
            window.popleft()
        window.append(now)
        return spec.max_restarts is not None and len(window) > spec.max_restarts

    def _give_up(self, cell: Cell, error: ExitReason) -> None:
        self._awaiting.pop(cell.id, None)
        self._remove(cell, f"gave up after {cell.spec.max_restarts} restarts")
        self.system.log.error(
            "actor.given_up",
            actor_id=cell.id,
            parent=self.actor_id,
            max_restarts=cell.spec.max_restarts,
            period=cell.spec.period,
            error=repr(error),
        )
        if cell.spec.on_give_up is not None:
            cause = error if error is not None else ActorStoppedError(cell.id, "exited normally")
            cell.spec.on_give_up(cell.id, cause)
