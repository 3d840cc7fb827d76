"""Mission and step definitions are values attached to the user's functions.

Nothing is registered globally: ``@aura.mission`` and ``@aura.step`` only
attach a frozen definition to the function (and return the function itself,
still callable on its own); a runtime learns definitions from what it is
given. Names default to ``module:qualname`` so a log written by one process
can be matched to the code in another.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, overload

from ._budget import Budget
from ._errors import DefinitionError
from ._retry import RetryPolicy

F = TypeVar("F", bound=Callable[..., Any])

_STEP_ATTR = "__aura_step__"
_MISSION_ATTR = "__aura_mission__"


@dataclass(frozen=True)
class StepDef:
    name: str
    fn: Callable[..., Any]
    is_async: bool
    retry: RetryPolicy | None
    timeout: float | None
    heartbeat_timeout: float | None


@dataclass(frozen=True)
class MissionDef:
    name: str
    fn: Callable[..., Any]
    budget: Budget | None = None
    agent: str | None = None
    """The agent name in its identity token (default: the mission name)."""
    tools: frozenset[str] = frozenset()
    """Tools its identity allows (none unless listed)."""
    scopes: frozenset[str] = frozenset()
    history_limit: int | None = None
    """Events per run past which ``ctx.info.continue_as_new_suggested`` is
    true (default: the runtime's ``history_limit``)."""
    auto_continue: bool = False
    """Past ``history_limit``, continue as new by itself at the next command
    issued with nothing in flight, with the run's own arguments: for
    missions whose progress lives in ``ctx.memory``."""


def default_name(fn: Callable[..., Any]) -> str:
    """``module:qualname``. For code in ``__main__`` (``python script.py``,
    ``python -m pkg.mod``) the module is the one the file is importable as,
    so the name a log records is the same however the file was run and
    when another process imports it (``aura worker --app``, recovery)."""
    module = fn.__module__
    if module == "__main__":
        module = _main_module_name(fn)
    return f"{module}:{fn.__qualname__}"


def _main_module_name(fn: Callable[..., Any]) -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        return str(spec.name).removesuffix(".__main__")  # python -m pkg.mod
    filename = getattr(main, "__file__", None) or inspect.getsourcefile(fn)
    if not filename or not filename.endswith(".py"):
        raise DefinitionError(
            f"{fn.__qualname__} is defined in __main__ with no file (an interactive session "
            "or python -c): its name would not match on recovery; pass name=..., e.g. "
            f"@aura.mission(name={fn.__qualname__!r})"
        )
    path = Path(filename).resolve()
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").exists():  # the packages it sits in
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)


@overload
def step(fn: F, /) -> F: ...


@overload
def step(
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    timeout: float | None = None,
    heartbeat_timeout: float | None = None,
) -> Callable[[F], F]: ...


def step(
    fn: Any = None,
    /,
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    timeout: float | None = None,
    heartbeat_timeout: float | None = None,
) -> Any:
    """Mark a sync or async function as a step: run off the mission, retried
    by ``retry``, each attempt bounded by ``timeout`` seconds and failed if no
    ``aura.heartbeat`` arrives for ``heartbeat_timeout`` seconds."""
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise DefinitionError(
            f"step retry= must be an aura.RetryPolicy, got {type(retry).__name__}"
        )
    _check_seconds("timeout", timeout)
    _check_seconds("heartbeat_timeout", heartbeat_timeout)
    _check_name(name)

    def attach(f: F) -> F:
        if not callable(f) or inspect.isclass(f):
            raise DefinitionError(f"@aura.step needs a function, got {f!r}")
        if inspect.isasyncgenfunction(f) or inspect.isgeneratorfunction(f):
            raise DefinitionError(f"@aura.step {default_name(f)}: generators cannot be steps")
        definition = StepDef(
            name=name or default_name(f),
            fn=f,
            is_async=inspect.iscoroutinefunction(f),
            retry=retry,
            timeout=timeout,
            heartbeat_timeout=heartbeat_timeout,
        )
        setattr(f, _STEP_ATTR, definition)
        return f

    return attach(fn) if fn is not None else attach


@overload
def mission(fn: F, /) -> F: ...


@overload
def mission(
    *,
    name: str | None = None,
    budget: Budget | None = None,
    agent: str | None = None,
    tools: Sequence[str] = (),
    scopes: Sequence[str] = (),
    history_limit: int | None = None,
    auto_continue: bool = False,
) -> Callable[[F], F]: ...


def mission(
    fn: Any = None,
    /,
    *,
    name: str | None = None,
    budget: Budget | None = None,
    agent: str | None = None,
    tools: Sequence[str] = (),
    scopes: Sequence[str] = (),
    history_limit: int | None = None,
    auto_continue: bool = False,
) -> Any:
    """Mark ``async def (ctx, *args)`` as a mission definition.

    ``budget``: what a run may spend (``aura.Budget(usd=, tokens=)``) before
    it waits for ``rt.raise_budget``; ``rt.start(..., budget=)`` overrides it.
    ``agent``, ``tools``, ``scopes``: its ``AgentIdentity`` (which tools
    ``ctx.tool`` may reach; none unless listed).
    ``history_limit``, ``auto_continue``: continue-as-new (see ``MissionDef``).
    """
    if history_limit is not None and (
        isinstance(history_limit, bool) or not isinstance(history_limit, int) or history_limit < 1
    ):
        raise DefinitionError(f"history_limit must be an int >= 1, got {history_limit!r}")
    _check_name(name)
    _check_name(agent)
    for what, names in (("tools", tools), ("scopes", scopes)):
        if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
            raise DefinitionError(f"@aura.mission {what}= must be a list of names, got {names!r}")
    if budget is not None and not isinstance(budget, Budget):
        raise DefinitionError(f"@aura.mission budget= must be an aura.Budget, got {budget!r}")

    def attach(f: F) -> F:
        if not inspect.iscoroutinefunction(f):
            raise DefinitionError(
                f"@aura.mission {getattr(f, '__qualname__', f)!r} must be an `async def` "
                "taking the mission context first"
            )
        params = list(inspect.signature(f).parameters.values())
        if not params or params[0].kind not in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            raise DefinitionError(
                f"@aura.mission {default_name(f)} must take the mission context as its "
                "first positional parameter"
            )
        definition = MissionDef(
            name=name or default_name(f),
            fn=f,
            budget=budget,
            agent=agent,
            tools=frozenset(tools),
            scopes=frozenset(scopes),
            history_limit=history_limit,
            auto_continue=bool(auto_continue),
        )
        setattr(f, _MISSION_ATTR, definition)
        return f

    return attach(fn) if fn is not None else attach


def step_definition(fn: object) -> StepDef:
    """The step definition attached to ``fn``, or :class:`DefinitionError`."""
    definition = getattr(fn, _STEP_ATTR, None)
    if not isinstance(definition, StepDef):
        raise DefinitionError(f"{fn!r} is not a step: decorate it with @aura.step")
    return definition


def mission_definition(fn: object) -> MissionDef:
    """The mission definition attached to ``fn``, or :class:`DefinitionError`."""
    definition = getattr(fn, _MISSION_ATTR, None)
    if not isinstance(definition, MissionDef):
        raise DefinitionError(f"{fn!r} is not a mission: decorate it with @aura.mission")
    return definition


def _check_name(name: str | None) -> None:
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise DefinitionError(f"name= must be a non-empty str, got {name!r}")


def _check_seconds(what: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise DefinitionError(f"step {what}= must be a number of seconds > 0, got {value!r}")
