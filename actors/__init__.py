"""actors: supervision trees and durable actors on pykka.

pykka gives threads and mailboxes; this package adds what it lacks, with the
semantics of Erlang/OTP supervisors and Akka persistence:

- :class:`ActorSystem`: one registry, root supervisor and scheduler per
  instance (never process-global); actors are addressed by stable id.
- :class:`Supervisor` with :class:`ChildSpec` children, strategies
  ``one_for_one | one_for_all | rest_for_one``, restart types
  ``permanent | transient | temporary``, OTP restart intensity, escalation
  and :class:`Backoff`.
- :class:`Actor`: the base class; every failure path is caught.
- :class:`DurableActor`: persist-before-handle, snapshots, replay on
  restart, poison-message quarantine, passivation.
- :class:`FaultInjector` / :class:`SimulatedCrash`: crash injection.

Modules, lowest first (no module imports one below it in a circle):
``_errors``, ``_lifecycle``, ``_faults``, ``_scheduler``, ``_journal_writer``;
``_host`` (the protocols actors and cells see their system through);
``_actor`` (the base actor); ``_cell`` (one actor's place: spec, state,
mailbox) and ``_durable`` (persist-before-handle, replay); ``_supervisor``;
``_batch_asks`` (``ask_many``); ``_system`` (the registry and the root).
"""

from ._actor import Actor
from ._batch_asks import PreparedAsks
from ._cell import ChildSpec, RestartType
from ._durable import DEAD_LETTERS, DeadLetter, DurableActor, read_dead_letters
from ._errors import (
    ActorCrashedError,
    ActorError,
    ActorNotFoundError,
    ActorStartError,
    ActorStoppedError,
    AskTimeoutError,
    DuplicateActorError,
    HandlingUndoneError,
    MessageRejectedError,
    RestartLimitError,
)
from ._faults import POINTS, CrashAt, FaultInjector, SimulatedCrash
from ._lifecycle import LifecycleState
from ._supervisor import Backoff, Strategy, Supervisor
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
    "AskTimeoutError",
    "Backoff",
    "ChildSpec",
    "CrashAt",
    "DeadLetter",
    "DuplicateActorError",
    "DurableActor",
    "Escalation",
    "FaultInjector",
    "LifecycleState",
    "MessageRejectedError",
    "PreparedAsks",
    "HandlingUndoneError",
    "RestartLimitError",
    "RestartType",
    "SimulatedCrash",
    "Strategy",
    "Supervisor",
    "read_dead_letters",
    "quiet_logger",
]
