"""The package layering and the public surface are part of the contract.

``eventstore <- actors <- aura``: a package never imports a package above it,
and never reaches into another package's private ``_modules``. Each package's
``__all__`` is pinned here so a change to the public API is a visible diff.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["eventstore", "actors", "aura"]

PUBLIC = {
    "aura": {
        "Replay",
        "ReplayStep",
        "replay",
        "serve_console",
        "AsyncRuntime",
        "AsyncMissionHandle",
        "AgentIdentity",
        "ExecutionToken",
        "KeyFileError",
        "TokenError",
        "ToolDef",
        "ToolDenied",
        "ToolGateway",
        "tool",
        "tool_definition",
        "Budget",
        "report_cost",
        "MemoryValueError",
        "MissionMemory",
        "AuditEntry",
        "AuditReport",
        "export_audit",
        "verify_audit",
        "NO_RETRY",
        "ArgumentEncodingError",
        "MissionCancelledError",
        "MissionConflictError",
        "MissionDamagedError",
        "MissionContext",
        "MissionDeadError",
        "MissionFailedError",
        "MissionHandle",
        "MissionInfo",
        "MissionNotFoundError",
        "MissionTimeoutError",
        "MissionView",
        "HeartbeatTimeoutError",
        "Runtime",
        "SignalTimeoutError",
        "StepFailedError",
        "Queue",
        "QueueDeduplicatedError",
        "QueueView",
        "Schedule",
        "Telemetry",
        "ScheduleView",
        "ChildMissionError",
        "StepInfo",
        "StepTimeoutError",
        "current_step",
        "heartbeat",
        "TERMINAL",
        "TRANSITIONS",
        "AuraError",
        "DefinitionError",
        "DirectoryLockedError",
        "InvalidTransitionError",
        "MissionDef",
        "MissionStatus",
        "NonDeterminismError",
        "NonRetryableError",
        "QueryError",
        "RetryPolicy",
        "StepDef",
        "check_transition",
        "mission",
        "mission_definition",
        "step",
        "step_definition",
    },
    "actors": {
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
        "HandlingUndoneError",
        "LifecycleState",
        "MaxChildrenError",
        "MessageRejectedError",
        "PreparedAsks",
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
    },
    "eventstore": {
        "FORMAT_VERSION",
        "ArchiveError",
        "ConcurrencyError",
        "CorruptionError",
        "Durability",
        "EventLog",
        "EventStore",
        "EventStoreError",
        "InvalidEventError",
        "Lease",
        "LeaseLostError",
        "LeasedLog",
        "LmdbEventStore",
        "MemoryEventStore",
        "NewEvent",
        "RecordedEvent",
        "Snapshot",
        "SnapshotError",
        "StoreClosedError",
        "StoreFullError",
        "StoreIOError",
        "StoreReadOnlyError",
        "StoreUnavailableError",
        "StreamInfo",
        "ChainReport",
        "backend_of",
        "chain_digest",
        "verify_chain",
    },
}


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.extend((f"{node.module}.{alias.name}", node.lineno) for alias in node.names)
    return found


@pytest.mark.parametrize("package", LAYERS)
def test_no_upward_or_private_imports(package: str) -> None:
    allowed_below = LAYERS[: LAYERS.index(package)]
    forbidden_above = LAYERS[LAYERS.index(package) + 1 :]
    problems = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name, line in _imports(path):
            top, *rest = name.split(".")
            where = f"{path.relative_to(ROOT)}:{line}"
            if top in forbidden_above:
                problems.append(f"{where} imports {name}: {package} may not import {top}")
            elif top in allowed_below and any(part.startswith("_") for part in rest):
                problems.append(f"{where} imports private {name}: use {top}'s public API")
    assert problems == []


@pytest.mark.parametrize("package", LAYERS[:-1])
def test_tests_of_a_layer_do_not_depend_on_a_layer_above(package: str) -> None:
    above = LAYERS[LAYERS.index(package) + 1 :]
    problems = []
    for path in sorted((ROOT / "tests" / package).rglob("*.py")):
        for name, line in _imports(path):
            if name.split(".")[0] in above:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert problems == []


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_public_surface_is_pinned(package: str) -> None:
    module = importlib.import_module(package)
    assert set(module.__all__) == PUBLIC[package]
    for name in module.__all__:
        assert hasattr(module, name), f"{package}.__all__ names missing {name}"


def _module_graph(package: str) -> dict[str, set[str]]:
    """Each module of ``package`` -> the modules of ``package`` it imports
    (``TYPE_CHECKING`` imports included: a cycle there is a cycle in the
    design). The package's ``__init__`` (which re-exports) is left out."""
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        if is_init:
            parts.pop()
        module = ".".join(parts)
        if module == package:
            continue
        here = parts if is_init else parts[:-1]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = here[: len(here) - (node.level - 1)]
                if node.module:
                    deps.add(".".join([*base, node.module]))
                else:
                    deps.update(".".join([*base, alias.name]) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(package + "."):
                deps.add(str(node.module))
        graph[module] = deps
    return {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize("package", LAYERS)
def test_no_import_cycles_between_modules_of_a_package(package: str) -> None:
    assert _cycles(_module_graph(package)) == []


AURA_ROOMS = ["core", "governance", "engine", "operating"]
"""aura's rooms, lowest first: a room imports only the rooms before it
(``testing`` and ``integrations`` sit on top and may import any)."""


def test_aura_rooms_import_only_the_rooms_below() -> None:
    problems = []
    for module, deps in _module_graph("aura").items():
        room = module.split(".")[1]
        if room not in AURA_ROOMS:
            assert room in ("testing", "integrations", "__main__"), f"{module}: in no room"
            continue
        allowed = AURA_ROOMS[: AURA_ROOMS.index(room) + 1]
        for dep in sorted(deps):
            dep_room = dep.split(".")[1]
            if dep_room not in allowed:
                problems.append(f"{module} imports {dep}: {room} may not import {dep_room}")
    assert problems == []


def test_every_aura_module_is_in_a_room() -> None:
    loose = sorted(p.name for p in (ROOT / "aura").glob("_*.py") if p.name != "__init__.py")
    assert loose in ([], ["__main__.py"])
