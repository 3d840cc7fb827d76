"""The base class of every supervised actor, and the envelopes it receives.

Failure capture (pykka has no supervision, so we catch every path here):

- an exception (or ``BaseException``) in :meth:`Actor.receive` crashes the
  actor: no further message is handled by this incarnation, its mailbox is
  moved to the cell's buffer for the next incarnation, an asker gets
  :class:`ActorCrashedError`, and the parent supervisor is told;
- :class:`Shutdown` raised in :meth:`Actor.receive` ends the incarnation
  in order (``stopped()`` runs) with OTP's ``shutdown`` exit reason: not a
  crash, and a transient child is not restarted after it;
- an exception in :meth:`Actor.started` (pykka's ``on_start``, which never
  reaches ``on_failure``) fails the start; the supervisor sees it as a failed
  (re)start;
- nothing ever propagates into pykka, so pykka's process-wide
  ``ActorRegistry.stop_all()`` on ``BaseException`` can never fire.

Asks carry their own reply future inside the envelope (pykka sees a tell), so
a reply can be delivered by whichever incarnation finally handles it.
"""

from __future__ import annotations

import queue
import sys
from typing import Any

import pykka

from ._errors import ActorCrashedError, ActorStoppedError, MessageRejectedError
from ._host import CellHost, SystemHost
from ._lifecycle import Shutdown


class _Tell:
    __slots__ = ("message",)

    def __init__(self, message: object) -> None:
        self.message = message


class _Ask:
    __slots__ = ("message", "reply")

    def __init__(self, message: object, reply: pykka.ThreadingFuture[Any]) -> None:
        self.message = message
        self.reply = reply


class _Ping:
    """Asked right after start: answered once ``started()`` has returned."""


Envelope = _Tell | _Ask


class _WakeUp:
    """Put straight into a stopped actor's inbox (a stopped pykka ref refuses
    tells) so its thread returns from ``inbox.get()`` and exits."""

    message = None
    reply_to = None


def _fail(future: pykka.ThreadingFuture[Any], err: BaseException) -> None:
    future.set_exception((type(err), err, err.__traceback__))


class Actor(pykka.ThreadingActor):
    """Subclass and override :meth:`receive` (and optionally :meth:`started`,
    :meth:`stopped`). Address actors by id through their :class:`ActorSystem`,
    never by pykka ref: a restarted actor is a new object with a new ref.
    """

    use_daemon_thread = True
    journals_messages = False
    """True for ``DurableActor``s (checked per message: cheaper than an
    isinstance against pykka's ABC-based classes)."""

    @staticmethod
    def _create_actor_inbox() -> queue.SimpleQueue[Any]:
        # pykka's inbox protocol is put / get / empty, which a SimpleQueue
        # serves as one C object. pykka's default, a queue.Queue, is a lock,
        # three Conditions and a deque: ~3.8 KB that every idle actor (every
        # waiting mission) would keep.
        return queue.SimpleQueue()

    def __init__(self) -> None:
        super().__init__()
        self._cell: CellHost | None = None
        self._generation = 0
        self._start_error: BaseException | None = None
        self._crashed = False
        self._journaled = False  # set by DurableActor once the current message is durable

    # ------------------------------------------------------------ user hooks

    def started(self) -> None:
        """Called on the actor's thread before any message. Raising fails the start."""

    def receive(self, message: Any) -> Any:
        """Handle one message on the actor's thread; the return value answers an ask.

        Raise :class:`MessageRejectedError` to refuse a message without
        crashing; any other exception crashes this incarnation.
        """
        raise NotImplementedError(f"{type(self).__name__} must override receive()")

    def stopped(self) -> None:
        """Called on the actor's thread after an orderly stop (not after a crash)."""

    def stop(self) -> None:
        """Stop this actor after the current message: a normal exit, which
        its supervisor judges by restart type (``transient``: not restarted).
        To exit with the ``shutdown`` reason, raise :class:`Shutdown`."""
        cell = self._cell
        if cell is not None and not cell.spec.threaded:
            cell.exit_requested = True  # acted on once the handler returns
            return
        super().stop()

    def passivate(self) -> None:
        """Ask to be passivated once idle (after this handler, as soon as no
        message waits): the incarnation stops without it counting as an exit,
        and the next message starts a new one (a :class:`DurableActor`
        recovers its state from its log). An actor whose state lives only in
        memory loses it."""
        if self._cell is not None:
            self._cell.passivate_requested = True

    # ------------------------------------------------------------ context

    @property
    def actor_id(self) -> str:
        assert self._cell is not None, "the actor is not bound to a system yet"
        return self._cell.id

    @property
    def system(self) -> SystemHost:
        assert self._cell is not None, "the actor is not bound to a system yet"
        return self._cell.system

    def _bind(self, cell: CellHost, generation: int) -> None:
        self._cell = cell
        self._generation = generation

    def _launch(self) -> pykka.ActorRef[Any]:
        # pykka's start() would also register the ref in its process-global
        # ActorRegistry; this system keeps its own registry instead.
        self._start_actor_loop()
        return self.actor_ref

    # ------------------------------------------------------------ pykka hooks

    def on_start(self) -> None:
        try:
            self.started()
        except BaseException as err:
            self._start_error = err
            self.actor_stopped.set()

    def on_stop(self) -> None:
        try:
            self.stopped()
        finally:
            if self._cell is not None and not self._crashed:  # not killed meanwhile
                self._cell.on_stopped(self._generation)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Ping):
            return True
        if not isinstance(message, (_Tell, _Ask)) or self._cell is None:
            return None  # a wake-up after an inline crash, or nothing of ours
        cell = self._cell
        with cell.exec_lock:
            try:
                if not self._crashed:
                    self._dispatch(message)
            finally:
                cell.mailbox_done()
        if cell.passivate_requested and not self._crashed:
            cell.passivate_if_asked()
        return None

    def _dispatch(self, envelope: Envelope) -> None:
        """Handle one envelope on whichever thread holds the execution lock."""
        self._journaled = False
        if isinstance(envelope, _Ask):
            try:
                reply = self.receive(envelope.message)
            except MessageRejectedError as err:
                _fail(envelope.reply, err)
                return
            except Shutdown as exit:
                self._exit(exit)
                _fail(envelope.reply, ActorStoppedError(self.actor_id, f"exited: {exit}"))
                return
            except BaseException as err:
                journaled = self._journaled
                self._crash(err)
                _fail(envelope.reply, ActorCrashedError(self.actor_id, err, journaled=journaled))
                return
            envelope.reply.set(reply)
            return
        try:
            self.receive(envelope.message)
        except MessageRejectedError:
            pass  # a refused tell has nobody to tell; the handler logged it
        except Shutdown as exit:
            self._exit(exit)
        except BaseException as err:
            self._crash(err)

    def _call_inline(self, message: Any) -> Any:
        """Handle an ask on the caller's thread and return the reply directly
        (the cell checked the actor is idle and holds its execution lock)."""
        self._journaled = False
        try:
            return self.receive(message)
        except MessageRejectedError:
            raise
        except Shutdown as exit:
            self._exit(exit)
            self.actor_inbox.put(_WakeUp())  # type: ignore[arg-type]
            raise ActorStoppedError(self.actor_id, f"exited: {exit}") from exit
        except BaseException as err:
            journaled = self._journaled
            self._crash(err)
            self.actor_inbox.put(_WakeUp())  # type: ignore[arg-type]
            raise ActorCrashedError(self.actor_id, err, journaled=journaled) from err

    def _exit(self, reason: Shutdown) -> None:
        """End this incarnation in order with a shutdown reason: ``stopped()``
        runs here, then the cell reports the exit (no further message)."""
        try:
            self.stopped()
        except BaseException as err:  # exiting anyway: report, do not raise
            self.system.log.error("actor.stop_failed", actor_id=self.actor_id, error=repr(err))
        self._crash(reason)

    def _crash(self, err: BaseException) -> None:
        self._crashed = True
        self.actor_stopped.set()
        if self._cell is not None:
            self._cell.on_crash(self._generation, err, self)
        else:  # pragma: no cover - unbound actors are never started by us
            print(f"unsupervised actor crashed: {err!r}", file=sys.stderr)
