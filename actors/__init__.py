"""actors: supervision trees and durable actors on pykka.

pykka gives threads and mailboxes; this package adds what it lacks, with the
semantics of Erlang/OTP supervisors and Akka persistence:

- :class:`ActorSystem`: one registry, root supervisor and scheduler per
  instance (never process-global); actors are addressed by stable id.
- :class:`Supervisor` with :class:`ChildSpec` children, strategies
  ``one_for_one | one_for_all | rest_for_one``, restart types
  ``permanent | transient | temporary``, OTP restart intensity, escalation,
  shutdown policies, significant children and ``auto_shutdown``, and
  :class:`Backoff`; :class:`DynamicSupervisor` (``simple_one_for_one``);
  OTP's calls on ``ActorSystem``: ``start_child``, ``terminate_child``,
  ``restart_child``, ``delete_child``, ``which_children`` (:class:`ChildInfo`),
  ``count_children`` (:class:`ChildCounts`).
- exit reasons: normal (``Actor.stop()``), :class:`Shutdown`, or a crash.
- :class:`Actor`: the base class; every failure path is caught.
- :class:`DurableActor`: persist-before-handle, snapshots, replay on
  restart, poison-message quarantine, passivation.
- :class:`FaultInjector` / :class:`SimulatedCrash`: crash injection.

Modules, lowest first (no module imports one below it in a circle):
``_errors``, ``_lifecycle`` (states, exit reasons), ``_faults``,
``_scheduler``, ``_journal_writer``, ``_backoff``; ``_host`` (the protocols
actors and cells see their system through); ``_actor`` (the base actor);
``_cell`` (one actor's place: spec, state, mailbox, shutdown) and
``_durable`` (persist-before-handle, replay); ``_supervisor_calls`` (what a
supervisor is told and answers); ``_supervisor`` (OTP's rules);
``_dynamic_supervisor``; ``_batch_asks`` (``ask_many``); ``_system`` (the
registry, the root, the OTP calls).
"""

from ._actor import Actor
from ._backoff import Backoff
from ._batch_asks import PreparedAsks
from ._cell import ChildSpec, RestartType, ShutdownPolicy
from ._durable import DEAD_LETTERS, DeadLetter, DurableActor, read_dead_letters
from ._dynamic_supervisor import DynamicSupervisor
from ._errors import (
    ActorCrashedError,
    ActorError,
    ActorNotFoundError,
    ActorStartError,
    ActorStoppedError,
    AlreadyPresentError,
    AskTimeoutError,
    ChildRunningError,
    DuplicateActorError,
    HandlingUndoneError,
    MaxChildrenError,
    MessageRejectedError,
    RestartLimitError,
    SupervisorCallError,
)
from ._faults import POINTS, CrashAt, FaultInjector, SimulatedCrash
from ._lifecycle import LifecycleState, Shutdown
from ._supervisor import AutoShutdown, Strategy, Supervisor
from ._supervisor_calls import ChildCounts, ChildInfo, ChildStatus
from ._system import ROOT, ActorSystem, Escalation, quiet_logger

__all__ = [
    "DEAD_LETTERS",
    "POINTS",
    "ROOT",
    "Actor",
    "ActorCrashedError",
    "ActorError",
    "ActorNotFoundError",
    "ActorStartError",
    "ActorStoppedError",
    "ActorSystem",
    "AlreadyPresentError",
    "AskTimeoutError",
    "AutoShutdown",
    "Backoff",
    "ChildCounts",
    "ChildInfo",
    "ChildRunningError",
    "ChildSpec",
    "ChildStatus",
    "CrashAt",
    "DeadLetter",
    "DuplicateActorError",
    "DurableActor",
    "DynamicSupervisor",
    "Escalation",
    "FaultInjector",
    "LifecycleState",
    "MaxChildrenError",
    "MessageRejectedError",
    "PreparedAsks",
    "HandlingUndoneError",
    "RestartLimitError",
    "RestartType",
    "Shutdown",
    "ShutdownPolicy",
    "SimulatedCrash",
    "Strategy",
    "Supervisor",
    "SupervisorCallError",
    "read_dead_letters",
    "quiet_logger",
]
