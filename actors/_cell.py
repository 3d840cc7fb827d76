"""A cell is what an actor id names: the current incarnation (pykka ref),
its lifecycle state, and a buffer for messages that arrive while there is no
incarnation to take them (starting, restarting, passivated, passivating).

Callers address cells, never pykka refs, so a restarted or re-activated
actor is reached the same way and nothing sent in between is lost. Every
state change happens under the cell lock and is logged as one structlog
event.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pykka

from ._actor import Actor, Envelope, _Ask, _fail, _Ping, _Tell, _WakeUp
from ._errors import ActorStartError, ActorStoppedError
from ._host import SystemHost
from ._lifecycle import LifecycleState, Shutdown

RestartType = Literal["permanent", "transient", "temporary"]
ShutdownPolicy = float | Literal["brutal_kill", "infinity"]
S = LifecycleState


@dataclass(frozen=True)
class ChildSpec:
    """How a supervisor starts and restarts one child.

    ``factory`` builds a new, unstarted :class:`Actor` for each incarnation.
    ``restart``: ``permanent`` (always restarted), ``transient`` (restarted
    only after an abnormal exit), ``temporary`` (never restarted).
    ``shutdown`` (OTP's): seconds an orderly stop may take before the actor
    is killed, ``"infinity"`` to wait as long as it takes (give supervisors
    this), or ``"brutal_kill"`` to kill it at once. Killing cannot pre-empt
    a Python thread: a killed actor handles no further message and its
    ``stopped()`` is not called, but a handler already running finishes on
    its thread. ``significant``: its own exit may shut its supervisor down
    (see ``Supervisor(auto_shutdown=)``); not for permanent children.
    ``passivate_after``: seconds of inactivity after
    which the actor is stopped to free its thread and re-activated by its next
    message (only for actors whose state survives a restart, i.e. durable ones).
    """

    id: str
    factory: Callable[[], Actor]
    restart: RestartType = "permanent"
    shutdown: ShutdownPolicy = 5.0
    start_timeout: float = 30.0
    passivate_after: float | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False)
    max_restarts: int | None = None
    """This child's own restart limit within ``period`` seconds. Past it the
    supervisor gives up on the child alone (removes it and calls
    ``on_give_up(id, error)`` on the supervisor's thread) rather than letting
    one crash-looping child exhaust its own intensity and escalate."""
    period: float = 30.0
    on_give_up: Callable[[str, BaseException], None] | None = field(default=None, compare=False)
    significant: bool = False
    threaded: bool = True
    """False: the actor gets no thread of its own. Its messages are handled on
    the threads that send them, one at a time and in arrival order, under its
    execution lock; ``started()`` runs on the thread that (re)starts it. For
    actors whose handlers never block for long (a mission: one journal append
    and a slice of code), so ten thousand of them cost no threads and starting
    one costs no thread start. A tell or a timer then runs on the sender's
    thread (or the scheduler's): send from a thread that may do that work."""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError("ChildSpec.id must be a non-empty str")
        if not callable(self.factory):
            raise TypeError(f"ChildSpec {self.id!r}: factory must be callable")
        if self.restart not in ("permanent", "transient", "temporary"):
            raise ValueError(
                f"ChildSpec {self.id!r}: restart must be permanent, transient or temporary, "
                f"got {self.restart!r}"
            )
        if self.shutdown not in ("brutal_kill", "infinity") and not (
            isinstance(self.shutdown, (int, float)) and self.shutdown >= 0
        ):
            raise ValueError(
                f"ChildSpec {self.id!r}: shutdown must be seconds >= 0, 'brutal_kill' or "
                f"'infinity', got {self.shutdown!r}"
            )
        if self.significant and self.restart == "permanent":
            raise ValueError(
                f"ChildSpec {self.id!r}: a significant child must be transient or temporary"
            )
        if self.passivate_after is not None and self.passivate_after <= 0:
            raise ValueError(f"ChildSpec {self.id!r}: passivate_after must be > 0")
        if self.max_restarts is not None and (self.max_restarts < 0 or self.period <= 0):
            raise ValueError(f"ChildSpec {self.id!r}: max_restarts >= 0 and period > 0")


class Cell:
    def __init__(self, system: SystemHost, spec: ChildSpec, parent: Cell | None) -> None:
        self.system = system
        self.spec = spec
        self.id = spec.id
        self.parent = parent
        self.lock = threading.Lock()
        self.state = S.NEW
        self.ref: pykka.ActorRef[Any] | None = None
        self.actor: Actor | None = None
        self.generation = 0
        self.pending: deque[Envelope] = deque()
        self.last_active = system.clock()
        self.awaiting_restart = False
        self.removed = False
        self._passivating = False
        self._stop_requested = False
        self.draining = False  # threadless: a thread is handling `pending`
        self.exit_requested = False  # threadless: the actor called stop() on itself
        self.passivate_requested = False  # the actor called passivate() on itself
        # Held while a handler runs, on the actor's thread or inline on an
        # asker's thread; `inflight` counts envelopes in the pykka inbox.
        self.exec_lock = threading.Lock()
        self.inflight = 0

    # ------------------------------------------------------------ state

    def _set(self, state: LifecycleState, reason: str = "") -> None:
        """Change state; caller holds the lock."""
        old = self.state
        self.state = state
        self.system._lifecycle(self, old, state, reason)

    # ------------------------------------------------------------ start / stop

    def start(self) -> None:
        """Start a new incarnation and wait until its ``started()`` returned.

        Raises :class:`ActorStartError`. Buffered messages are handed to the
        new incarnation in arrival order before anything sent later.
        """
        with self.lock:
            if self.removed:
                raise ActorStoppedError(self.id, "removed from its supervisor")
            if self.state in (S.STARTING, S.RUNNING, S.STOPPING):
                return  # another thread started (or still runs) this incarnation
            self.generation += 1
            generation = self.generation
            self._set(S.STARTING)
        try:
            actor = self.spec.factory()
            if not isinstance(actor, Actor):
                raise TypeError(f"factory returned {type(actor).__name__}, not an actors.Actor")
            actor._bind(self, generation)
            if not self.spec.threaded:
                self._start_threadless(actor, generation)
                return
            ref = actor._launch()
        except ActorStartError:
            raise
        except BaseException as err:
            raise self._start_failed(generation, err) from err
        try:
            ref.ask(_Ping(), timeout=self.spec.start_timeout)
        except pykka.ActorDeadError:
            cause = actor._start_error or RuntimeError("died at start")
            raise self._start_failed(generation, cause) from cause
        except pykka.Timeout as err:
            ref.stop(block=False)
            cause = TimeoutError(f"started() took over {self.spec.start_timeout}s")
            raise self._start_failed(generation, cause) from err
        with self.lock:
            self.ref = ref
            self.actor = actor
            self.awaiting_restart = False
            self.last_active = self.system.clock()
            while self.pending:
                ref.tell(self.pending.popleft())
                self.inflight += 1
            self._set(S.RUNNING)
        self.system._track(self)

    def _start_threadless(self, actor: Actor, generation: int) -> None:
        self.exit_requested = False
        with self.exec_lock:
            try:
                actor.started()
            except BaseException as err:
                raise self._start_failed(generation, err) from err
        with self.lock:
            self.actor = actor
            self.awaiting_restart = False
            self.last_active = self.system.clock()
            self._set(S.RUNNING)
            drain = bool(self.pending) and not self.draining
            if drain:
                self.draining = True
        self.system._track(self)
        if drain:
            self._drain()

    def _drain(self) -> None:
        """Handle a threadless actor's mailbox on this thread until it is
        empty (the caller set ``draining``; only one thread drains at a time)."""
        while True:
            with self.lock:
                actor = self.actor
                if self.state is not S.RUNNING or actor is None or not self.pending:
                    self.draining = False
                    return
                envelope = self.pending.popleft()
            with self.exec_lock:
                actor._dispatch(envelope)
            if self.exit_requested:
                self._exit_threadless()
            elif self.passivate_requested:
                self.passivate_if_asked()

    def _exit_threadless(self) -> None:
        """A threadless actor stopped itself: stop it here, after its handler,
        and report the exit to its supervisor like a threaded one's."""
        with self.lock:
            if not self.exit_requested or self.state is not S.RUNNING:
                return
            self.exit_requested = False
            generation = self.generation
            self._set(S.STOPPING, "stopping itself")
        self._call_stopped(None)
        self._stop_threadless(final=False, reason="exited normally")
        with self.lock:
            self.awaiting_restart = True  # buffer until the supervisor judges the exit
        self.system._child_exited(self, generation)

    def _stop_threadless(self, *, final: bool, reason: str) -> None:
        """After ``stopped()`` ran: the incarnation is gone."""
        with self.lock:
            self.actor = None
            if final:
                self._drop_pending(reason)
            self._set(S.STOPPED, reason)
        self.system._untrack(self)

    def _call_stopped(self, timeout: float | None) -> bool:
        """A threadless actor's ``stopped()``, after the handler running now;
        False if that handler did not return within ``timeout`` seconds."""
        if not self.exec_lock.acquire(timeout=-1 if timeout is None else timeout):
            return False
        try:
            actor = self.actor
            if actor is None or actor._crashed:
                return True
            try:
                actor.stopped()
            except BaseException as err:  # stopping anyway: report, do not raise
                self.system.log.error("actor.stop_failed", actor_id=self.id, error=repr(err))
            return True
        finally:
            self.exec_lock.release()

    def _kill(self, *, final: bool, reason: str) -> None:
        """End the incarnation now (OTP ``kill``): it handles nothing more and
        its ``stopped()`` is not called; what waits in its mailbox is kept
        for the next incarnation (or failed, if ``final``)."""
        with self.lock:
            actor = self.actor
            if actor is not None:
                actor._crashed = True
                actor.actor_stopped.set()
                self._rescue_inbox(actor)
                actor.actor_inbox.put(_WakeUp())  # type: ignore[arg-type]
            self._stop_requested = False
            self.inflight = 0
            self.ref = None
            self.actor = None
            self._set(S.STOPPED, reason)
            if final:
                self._drop_pending(reason)
        self.system.log.warning("actor.killed", actor_id=self.id, reason=reason)
        self.system._untrack(self)

    def terminate(self, reason: str) -> None:
        """Stop and keep the cell terminated: known to its supervisor, taking
        no messages until ``restart_child`` starts it (OTP ``undefined``)."""
        self.stop(final=False, reason=reason)
        with self.lock:
            self.awaiting_restart = False
            self._drop_pending(reason)
            if self.state is not S.STOPPED:
                self._set(S.STOPPED, reason)
        self.system._untrack(self)

    def _start_failed(self, generation: int, err: BaseException) -> ActorStartError:
        with self.lock:
            if generation == self.generation:
                self.ref = None
                self.actor = None
                self.awaiting_restart = True
                self._set(S.FAILED, f"start failed: {type(err).__name__}: {err}")
        return ActorStartError(self.id, err)

    def stop(self, *, final: bool, reason: str = "stopped") -> None:
        """Orderly stop: handle what is already in the mailbox, then ``stopped()``.

        ``final``: the cell is being removed (pending asks fail); otherwise it
        keeps buffering for a restart.
        """
        with self.lock:
            ref = self.ref
            if final:
                self.removed = True
            if not self.spec.threaded and self.state is S.RUNNING:
                self._set(S.STOPPING, reason)
            elif ref is None or self.state is not S.RUNNING:
                if final:
                    self._drop_pending(reason)
                    if self.state is not S.STOPPED:
                        self._set(S.STOPPED, reason)
                return
            else:
                self._stop_requested = True
                self._set(S.STOPPING, reason)
        policy = self.spec.shutdown
        if policy == "brutal_kill":
            self._kill(final=final, reason=f"{reason}; killed (brutal_kill)")
            return
        timeout = None if policy == "infinity" else float(policy)
        if ref is None:
            if self._call_stopped(timeout):
                self._stop_threadless(final=final, reason=reason)
            else:
                self._kill(final=final, reason=f"{reason}; killed after its {timeout}s shutdown")
            return
        try:
            ref.stop(block=True, timeout=timeout)
        except pykka.Timeout:
            self._kill(final=final, reason=f"{reason}; killed after its {timeout}s shutdown")
            return
        with self.lock:
            self.ref = None
            self.actor = None
            if self.state not in (S.STOPPED, S.FAILED):
                self._set(S.STOPPED, reason)
            if final:
                self._drop_pending(reason)

    def _drop_pending(self, reason: str) -> None:
        while self.pending:
            env = self.pending.popleft()
            if isinstance(env, _Ask):
                _fail(env.reply, ActorStoppedError(self.id, reason))

    # ------------------------------------------------------------ callbacks from the actor thread

    def _rescue_inbox(self, actor: Actor) -> None:
        """Messages queued behind a crash or kill go to the next incarnation
        (caller holds the lock)."""
        rescued: list[Envelope] = []
        inbox = actor.actor_inbox
        while not inbox.empty():
            envelope = inbox.get()
            msg = envelope.message
            if isinstance(msg, (_Tell, _Ask)):
                rescued.append(msg)
            elif envelope.reply_to is not None:
                envelope.reply_to.set(None)
        self.pending.extendleft(reversed(rescued))

    def on_crash(self, generation: int, err: BaseException, actor: Actor) -> None:
        """The incarnation ended in a handler: a crash, or a :class:`Shutdown`
        it raised (then ``stopped()`` has run)."""
        with self.lock:
            if generation != self.generation:
                return
            self._rescue_inbox(actor)
            self.inflight = 0
            self.ref = None
            self.actor = None
            self.awaiting_restart = True
            if isinstance(err, Shutdown):
                self._set(S.STOPPED, f"exited: {err}")
            else:
                self._set(S.FAILED, f"crashed: {type(err).__name__}: {err}")
        self.system._untrack(self)
        self.system._child_failed(self, generation, err)

    def on_stopped(self, generation: int) -> None:
        """The incarnation finished an orderly stop (its own thread, in on_stop)."""
        with self.lock:
            if generation != self.generation:
                return
            if self._stop_requested:
                self._stop_requested = False
                return
            if not self._passivating:
                # The actor stopped itself: a normal exit, for its supervisor to judge.
                self.ref = None
                self.actor = None
                self.awaiting_restart = True
                self._set(S.STOPPED, "exited normally")
                exited = True
            else:
                exited = False
        if exited:
            self.system._untrack(self)
            self.system._child_exited(self, generation)
            return
        self._passivated()

    def _passivated(self) -> None:
        """The incarnation is gone after a passivation (threaded or not)."""
        with self.lock:
            self._passivating = False
            self.ref = None
            self.actor = None
            wake = bool(self.pending)
            # With messages waiting, go straight to NEW so a concurrent deliver()
            # buffers instead of starting a second incarnation.
            self._set(S.NEW if wake else S.PASSIVATED, "re-activating" if wake else "idle")
        self.system._untrack(self)
        if wake:
            self.system._activate_async(self)

    # ------------------------------------------------------------ delivery

    def deliver(self, envelope: Envelope, *, activity: bool = True) -> None:
        activate = drain = False
        with self.lock:
            if activity:
                self.last_active = self.system.clock()
            if self.state is S.RUNNING and self.ref is not None:
                self.ref.tell(envelope)
                self.inflight += 1
                return
            if self.removed or (self.state is S.STOPPED and not self.awaiting_restart):
                raise ActorStoppedError(self.id)
            self.pending.append(envelope)
            if self.state is S.RUNNING and not self.draining:  # threadless: drain here
                self.draining = drain = True
            elif self.state is S.PASSIVATED:
                activate = True
                self._set(S.NEW, "re-activating for a message")
        if drain:
            self._drain()
        elif activate:
            self.activate()

    def activate(self) -> None:
        """Start a passivated actor again (replaying its log if durable)."""
        try:
            self.start()
        except ActorStartError as err:
            with self.lock:
                self._drop_pending(f"re-activation failed: {err}")
            self.system._child_failed(self, self.generation, err)

    def register_passive(self) -> None:
        """Enter the tree without a thread: the first message activates it."""
        with self.lock:
            self._set(S.PASSIVATED, "registered passive")

    def passivate(self) -> bool:
        """Stop an idle incarnation without treating it as a termination."""
        with self.lock:
            if self.state is not S.RUNNING or self.pending or self.draining:
                return False
            if self.inflight or self.exec_lock.locked():
                return False
            ref = self.ref
            if ref is None and self.spec.threaded:
                return False
            self._passivating = True
            self._set(S.STOPPING, "passivating")
        if ref is not None:
            ref.stop(block=False)
            return True
        self._call_stopped(None)
        self._passivated()
        return True

    def tell(self, message: object, *, activity: bool = True) -> None:
        self.deliver(_Tell(message), activity=activity)

    def try_inline(self, message: object) -> tuple[bool, Any]:
        """Handle an ask on this thread if the actor is running and idle.

        Idle means nothing in its mailbox and no handler running; the ask then
        runs under the actor's execution lock, with no thread hand-off either
        way. The actor still handles one message at a time, and a sender's
        messages keep their order (anything it sent earlier is still in
        flight, so this one goes through the mailbox behind it). Returns
        ``(False, None)`` when the ask must go through the mailbox.
        """
        actor = self.claim()
        if actor is None:
            return False, None
        try:
            return True, actor._call_inline(message)
        finally:
            self.release()

    def claim(self) -> Actor | None:
        """Take the execution lock of a running, idle actor (else None), for
        handling a message on this thread; :meth:`release` gives it back."""
        with self.lock:
            self.last_active = self.system.clock()
            actor = self.actor
            if (
                self.state is not S.RUNNING
                or actor is None
                or self.inflight
                or self.pending
                or not self.exec_lock.acquire(blocking=False)
            ):
                return None
        return actor

    def release(self) -> None:
        self.exec_lock.release()
        if self.exit_requested:
            self._exit_threadless()
        elif self.passivate_requested:
            self.passivate_if_asked()

    def passivate_if_asked(self) -> None:
        """After a handler of an actor that asked to be passivated: do it
        now if it is idle; else the request stands until it is."""
        if self.passivate():
            self.passivate_requested = False

    def ask_future(self, message: object, *, inline: bool = False) -> pykka.ThreadingFuture[Any]:
        """Send an ask; the reply (or error) arrives on the returned future.
        ``inline``: try :meth:`try_inline` first."""
        future: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
        if inline:
            try:
                handled, reply = self.try_inline(message)
            except BaseException as err:
                _fail(future, err)
                return future
            if handled:
                future.set(reply)
                return future
        self.deliver(_Ask(message, future))
        return future

    def mailbox_done(self) -> None:
        """The actor thread finished one envelope from its inbox."""
        with self.lock:
            if self.inflight:
                self.inflight -= 1
