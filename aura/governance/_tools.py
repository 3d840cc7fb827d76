"""Tool definitions: ``@aura.tool`` and the argument schema of each tool.

A tool is a function (sync or async) that a mission may only reach through
``await ctx.tool(name, **args)`` and the gateway. Its arguments are checked
against a schema before it runs: a msgspec Struct given as ``schema=``, or
one built from the function's annotated signature.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import msgspec

from ..core._definitions import _check_name, _check_seconds, default_name
from ..core._errors import DefinitionError
from ..core._retry import RetryPolicy

F = TypeVar("F", bound=Callable[..., Any])
_TOOL_ATTR = "__aura_tool__"


@dataclass(frozen=True)
class ToolDef:
    name: str
    fn: Callable[..., Any]
    schema: type[msgspec.Struct]
    scopes: frozenset[str]
    is_async: bool
    retry: RetryPolicy | None
    timeout: float | None
    heartbeat_timeout: float | None

    def validate(self, args: object) -> dict[str, Any]:
        """``args`` converted to the schema, or ``msgspec.ValidationError``."""
        value = msgspec.convert(args, type=self.schema)
        return {f: getattr(value, f) for f in self.schema.__struct_fields__}


@overload
def tool(fn: F, /) -> F: ...


@overload
def tool(
    *,
    name: str | None = None,
    scopes: Sequence[str] = (),
    schema: type[msgspec.Struct] | None = None,
    retry: RetryPolicy | None = None,
    timeout: float | None = None,
    heartbeat_timeout: float | None = None,
) -> Callable[[F], F]: ...


def tool(
    fn: Any = None,
    /,
    *,
    name: str | None = None,
    scopes: Sequence[str] = (),
    schema: type[msgspec.Struct] | None = None,
    retry: RetryPolicy | None = None,
    timeout: float | None = None,
    heartbeat_timeout: float | None = None,
) -> Any:
    """Mark a function as a tool. ``scopes``: what an agent's identity must
    grant to use it. ``schema``: a msgspec Struct its keyword arguments must
    match (default: built from the annotated signature)."""
    _check_name(name)
    _check_seconds("timeout", timeout)
    _check_seconds("heartbeat_timeout", heartbeat_timeout)
    if isinstance(scopes, str) or not all(isinstance(s, str) and s for s in scopes):
        raise DefinitionError(f"@aura.tool scopes= must be a list of non-empty str, got {scopes!r}")
    if schema is not None and not (isinstance(schema, type) and issubclass(schema, msgspec.Struct)):
        raise DefinitionError(f"@aura.tool schema= must be a msgspec.Struct type, got {schema!r}")
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise DefinitionError(f"@aura.tool retry= must be an aura.RetryPolicy, got {retry!r}")

    def attach(f: F) -> F:
        if not callable(f) or inspect.isclass(f):
            raise DefinitionError(f"@aura.tool needs a function, got {f!r}")
        tool_name = name or f.__name__
        definition = ToolDef(
            name=tool_name,
            fn=f,
            schema=schema if schema is not None else _schema_of(f, tool_name),
            scopes=frozenset(scopes),
            is_async=inspect.iscoroutinefunction(f),
            retry=retry,
            timeout=timeout,
            heartbeat_timeout=heartbeat_timeout,
        )
        setattr(f, _TOOL_ATTR, definition)
        return f

    return attach(fn) if fn is not None else attach


def tool_definition(fn: object) -> ToolDef:
    definition = getattr(fn, _TOOL_ATTR, None)
    if not isinstance(definition, ToolDef):
        raise DefinitionError(f"{fn!r} is not an @aura.tool")
    return definition


def _schema_of(fn: Callable[..., Any], tool_name: str) -> type[msgspec.Struct]:
    try:
        hints = typing.get_type_hints(fn)
    except Exception as err:
        raise DefinitionError(
            f"@aura.tool {default_name(fn)}: unresolvable annotations ({err})"
        ) from err
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for param in inspect.signature(fn).parameters.values():
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            raise DefinitionError(
                f"@aura.tool {default_name(fn)}: parameter {param.name!r} must be passable "
                "by keyword (no *args, **kwargs or positional-only)"
            )
        annotation = hints.get(param.name, Any)
        if param.default is inspect.Parameter.empty:
            fields.append((param.name, annotation))
        else:
            fields.append((param.name, annotation, param.default))
    return msgspec.defstruct(f"{tool_name}_args", fields, forbid_unknown_fields=True, kw_only=True)
