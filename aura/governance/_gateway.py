"""The tool gateway: the only door from a mission to its tools.

Before any tool runs, on the step thread, the gateway checks, in order:

1. the tool is registered with the runtime;
2. the ``AgentIdentity`` token's signature (HMAC-SHA256, runtime key);
3. the ``ExecutionToken``'s signature;
4. that neither token has expired (the runtime's clock);
5. that the execution token is not revoked (its run ended, or revoked by hand);
6. that the execution token is bound to this mission id and run, and both
   tokens to the same agent and mission definition;
7. that the identity allows this tool and grants every scope it needs;
8. that the arguments match the tool's schema (converted, unknown fields refused).

Any failure raises ``ToolDenied`` (non-retryable) with the reason; the tool
function is not called. The outcome is journaled and audited like any
step's (``tool.allowed`` / ``tool.denied`` / ``tool.failed``).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import msgspec

from ..core._attempts import _current
from ..core._definitions import MissionDef, StepDef
from ..core._errors import ToolDenied
from ._tokens import AgentIdentity, ExecutionToken, TokenError, check_key, open_token, sign
from ._tools import ToolDef, tool_definition

IDENTITY = "identity"
EXECUTION = "execution"


class ToolGateway:
    """Issues the two tokens and checks them (and everything else) before a tool runs."""

    def __init__(
        self,
        key: bytes,
        tools: Iterable[Any] = (),
        *,
        clock: Callable[[], float] = time.time,
        identity_ttl: float = 30 * 86_400.0,
        execution_ttl: float = 86_400.0,
    ) -> None:
        self._key = check_key(key)
        self._clock = clock
        self._identity_ttl = identity_ttl
        self._execution_ttl = execution_ttl
        self._lock = threading.Lock()
        self._tools: dict[str, ToolDef] = {}
        self._step_defs: dict[str, StepDef] = {}
        self.log: Any = None  # a structlog logger: gateway.allowed / gateway.denied
        self._revoked: set[str] = set()  # execution-token nonces
        self._ended: set[tuple[str, int]] = set()  # (mission id, run) that finished
        for fn in tools:
            self.register(fn)

    # ------------------------------------------------------------ registry

    def register(self, fn: Any) -> ToolDef:
        definition = fn if isinstance(fn, ToolDef) else tool_definition(fn)
        with self._lock:
            known = self._tools.get(definition.name)
            if known is not None and known.fn is not definition.fn:
                raise ToolDenied(definition.name, "two different tools have this name")
            self._tools[definition.name] = definition
            self._step_defs.pop(definition.name, None)
        return definition

    def tools(self) -> list[str]:
        with self._lock:
            return sorted(self._tools)

    def step_definition(self, name: str) -> StepDef:
        """The step that runs tool ``name`` through :meth:`invoke`."""
        with self._lock:
            found = self._step_defs.get(name)
            if found is not None:
                return found
            tool = self._tools.get(name)
            found = StepDef(
                name=f"tool:{name}",
                fn=partial(self.invoke, name),
                is_async=tool.is_async if tool is not None else False,
                retry=tool.retry if tool is not None else None,
                timeout=tool.timeout if tool is not None else None,
                heartbeat_timeout=tool.heartbeat_timeout if tool is not None else None,
            )
            self._step_defs[name] = found
            return found

    # ------------------------------------------------------------ tokens

    def identity_token(self, definition: MissionDef) -> bytes:
        now = self._clock()
        claims = AgentIdentity(
            agent=definition.agent or definition.name,
            mission=definition.name,
            tools=sorted(definition.tools),
            scopes=sorted(definition.scopes),
            issued=now,
            expires=now + self._identity_ttl,
        )
        return sign(self._key, IDENTITY, claims)

    def execution_token(self, definition: MissionDef, mission_id: str, run: int) -> bytes:
        now = self._clock()
        claims = ExecutionToken(
            mission_id=mission_id,
            run=run,
            mission=definition.name,
            agent=definition.agent or definition.name,
            issued=now,
            expires=now + self._execution_ttl,
            nonce=secrets.token_hex(16),
        )
        return sign(self._key, EXECUTION, claims)

    def expires_soon(self, token: bytes) -> bool:
        """Whether a token this gateway issued has less than half its life left."""
        try:
            claims = msgspec.msgpack.decode(msgspec.msgpack.decode(token)[1])
            issued, expires = claims["issued"], claims["expires"]
        except (msgspec.DecodeError, KeyError, TypeError, IndexError):
            return True
        return bool(self._clock() >= issued + (expires - issued) / 2)

    def revoke(self, token: bytes) -> None:
        """Revoke an execution token (tools refuse it from now on)."""
        claims = open_token(self._key, token, EXECUTION, ExecutionToken)
        with self._lock:
            self._revoked.add(claims.nonce)

    def end_run(self, mission_id: str, run: int) -> None:
        """The run ended: every execution token bound to it is revoked."""
        with self._lock:
            self._ended.add((mission_id, run))

    # ------------------------------------------------------------ checks

    def check(
        self,
        name: str,
        args: object,
        *,
        identity: object,
        execution: object,
        mission_id: str,
        run: int,
    ) -> tuple[ToolDef, dict[str, Any]]:
        """Every check of the module docstring; the tool and its validated
        arguments, or ``ToolDenied``."""
        with self._lock:
            tool = self._tools.get(name)
        if tool is None:
            raise ToolDenied(name, "no such tool is registered with this runtime")
        try:
            who = open_token(self._key, identity, IDENTITY, AgentIdentity)
            grant = open_token(self._key, execution, EXECUTION, ExecutionToken)
        except TokenError as err:
            raise ToolDenied(name, str(err)) from None
        now = self._clock()
        if now >= who.expires:
            raise ToolDenied(name, f"identity token of agent {who.agent!r} expired")
        if now >= grant.expires:
            raise ToolDenied(name, "execution token expired")
        with self._lock:
            revoked = grant.nonce in self._revoked or (grant.mission_id, grant.run) in self._ended
        if revoked:
            raise ToolDenied(name, "execution token revoked (its run ended)")
        if (grant.mission_id, grant.run) != (mission_id, run):
            raise ToolDenied(
                name,
                f"execution token is bound to mission {grant.mission_id!r} run {grant.run}, "
                f"not {mission_id!r} run {run}",
            )
        if (grant.agent, grant.mission) != (who.agent, who.mission):
            raise ToolDenied(name, "identity and execution tokens name different agents")
        if name not in who.tools:
            raise ToolDenied(name, f"agent {who.agent!r} may not use this tool")
        missing = sorted(tool.scopes - set(who.scopes))
        if missing:
            raise ToolDenied(name, f"agent {who.agent!r} lacks scope(s) {', '.join(missing)}")
        try:
            return tool, tool.validate(args)
        except (msgspec.ValidationError, TypeError) as err:
            raise ToolDenied(name, f"arguments do not match the schema: {err}") from None

    def invoke(self, name: str, args: object) -> Any:
        """Run on a step thread: check, then call the tool (an async tool's
        coroutine is returned for the event loop to await)."""
        attempt = _current.get()
        if attempt is None:
            raise ToolDenied(name, "tools run only as mission steps (ctx.tool)")
        job = attempt.job
        identity, execution = job.tokens if job.tokens is not None else (b"", b"")
        where = {"mission_id": job.mission_id, "run": job.run, "seq": job.seq, "tool": name}
        try:
            tool, valid = self.check(
                name,
                args,
                identity=identity,
                execution=execution,
                mission_id=job.mission_id,
                run=job.run,
            )
        except ToolDenied as denied:
            if self.log is not None:
                self.log.warning(
                    "gateway.denied", attempt=job.attempt, reason=denied.reason, **where
                )
            raise
        if self.log is not None:
            self.log.info("gateway.allowed", attempt=job.attempt, **where)
        return tool.fn(**valid)
