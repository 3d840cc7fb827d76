"""aura.testing: prove your own missions survive crashes, in pytest, with
hypothesis, without a server.

- ``VirtualClock``: pass as ``Runtime(clock=...)``; durable timers and retry
  waits fire at once, stamped with their deadline (``ctx.now()`` jumps).
  The harness and fixtures also run sync steps on one thread, one at a
  time in the order issued (async steps share one event loop).
- ``run_mission(mission, *args, schedule=...)``: runs a mission to the end on
  a fresh data directory, injecting crashes at journal points. Every
  injected crash is a process death: the runtime is dropped on the spot and
  a new one opens the directory and recovers (as after ``kill -9``).
  Points: the mission's journal (``before_append``, ``after_append``,
  ``in_handler`` - after handling, before its outputs are journaled -,
  ``during_recovery``), each step body (``step_before``, ``step_after``
  its side effect; compensations and tool calls are steps too), and the
  event log itself (``store_append``, ``store_read``: the operation fails
  with ``StoreIOError`` as on a bad disk, and the runtime must cope;
  ``store_commit``: a delivery batch that several missions handled during
  its commit fails, so each of them must undo it).
- ``check_crash_safety(...)``: runs it with and without the schedule and
  raises ``CrashSafetyError`` unless both end the same (status, result,
  recorded step results), no step ran again after its result was
  journaled, and the audit chain verifies.
- ``aura.testing.strategies``: hypothesis strategies for crash schedules,
  signal orders and step failure patterns.
- A pytest plugin (installed with aura): fixtures ``aura_runtime`` and
  ``crash_runtime``.
- ``PostgresServer``, ``fresh_schema``: a throw-away local PostgreSQL for
  tests of missions on a PostgreSQL store (``DSN_ENV`` names the variable
  that points tests at an existing server instead).
"""

from ._check import CrashSafetyError, Outcome, check_crash_safety, run_mission
from ._clock import VirtualClock
from ._postgres import DSN_ENV, PostgresServer, fresh_schema

POINTS = (
    "before_append",
    "after_append",
    "in_handler",
    "during_recovery",
    "step_before",
    "step_after",
    "store_append",
    "store_read",
    "store_commit",
)

__all__ = [
    "DSN_ENV",
    "POINTS",
    "CrashSafetyError",
    "Outcome",
    "PostgresServer",
    "VirtualClock",
    "check_crash_safety",
    "fresh_schema",
    "run_mission",
]
