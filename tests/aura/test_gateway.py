"""The tool gateway: two signed tokens, the allow-list and the argument
schema are checked before any tool runs; every refusal is a ToolDenied and
the tool never runs."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aura
from aura.governance._audit import AUDIT_STREAM, decode_entries
from eventstore import EventStore

from . import missions as m

KEY = b"k" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def gateway(clock: Clock | None = None, key: bytes = KEY) -> aura.ToolGateway:
    return aura.ToolGateway(
        key, [m.search, m.shout, m.forbidden], clock=clock or Clock(), execution_ttl=60
    )


DEF = aura.mission_definition(m.uses_tools)


def tokens(gw: aura.ToolGateway, mission_id: str = "m", run: int = 1) -> tuple[bytes, bytes]:
    return gw.identity_token(DEF), gw.execution_token(DEF, mission_id, run)


def check(gw: aura.ToolGateway, identity: bytes, execution: bytes, **over: Any) -> Any:
    args = over.pop("args", {"query": "q"})
    where = {"mission_id": "m", "run": 1, **over}
    return gw.check("search", args, identity=identity, execution=execution, **where)


def test_valid_tokens_pass_and_arguments_are_converted_to_the_schema() -> None:
    gw = gateway()
    identity, execution = tokens(gw)
    tool, args = check(gw, identity, execution)
    assert tool.name == "search" and args == {"query": "q", "limit": 3}


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=200))
def test_forged_tokens_are_refused(identity: bytes, execution: bytes) -> None:
    with pytest.raises(aura.ToolDenied, match="token"):
        check(gateway(), identity, execution)


@settings(max_examples=300, deadline=None)
@given(st.data(), st.sampled_from(["identity", "execution"]))
def test_any_tampered_byte_is_refused(data: st.DataObject, which: str) -> None:
    gw = gateway()
    identity, execution = tokens(gw)
    token = bytearray(identity if which == "identity" else execution)
    i = data.draw(st.integers(0, len(token) - 1))
    token[i] ^= data.draw(st.integers(1, 255))
    forged = bytes(token)
    with pytest.raises(aura.ToolDenied):
        if which == "identity":
            check(gw, forged, execution)
        else:
            check(gw, identity, forged)


def test_tokens_signed_with_another_key_are_refused() -> None:
    other = gateway(key=b"x" * 32)
    identity, execution = tokens(other)
    with pytest.raises(aura.ToolDenied, match="signature is invalid"):
        check(gateway(), identity, execution)


@pytest.mark.parametrize("which", ["identity", "execution"])
def test_expired_tokens_are_refused(which: str) -> None:
    clock = Clock()
    gw = gateway(clock)
    identity, execution = tokens(gw)
    if which == "execution":
        clock.now += 61  # it lives 60 s
    else:
        clock.now += 31 * 86_400  # an identity lives 30 days...
        execution = gw.execution_token(DEF, "m", 1)  # ...a fresh execution token does not help
    with pytest.raises(aura.ToolDenied, match=f"{which} token.* expired"):
        check(gw, identity, execution)


def test_revoked_and_ended_runs_are_refused() -> None:
    gw = gateway()
    identity, execution = tokens(gw)
    gw.revoke(execution)
    with pytest.raises(aura.ToolDenied, match="revoked"):
        check(gw, identity, execution)
    identity, execution = tokens(gw, run=2)
    gw.end_run("m", 2)
    with pytest.raises(aura.ToolDenied, match="revoked"):
        check(gw, identity, execution, run=2)


@pytest.mark.parametrize(("mission_id", "run"), [("other", 1), ("m", 2)])
def test_a_token_of_another_mission_or_run_is_refused(mission_id: str, run: int) -> None:
    gw = gateway()
    identity, execution = tokens(gw, mission_id, run)
    with pytest.raises(aura.ToolDenied, match="is bound to"):
        check(gw, identity, execution)


def test_swapped_tokens_and_other_agents_are_refused() -> None:
    gw = gateway()
    identity, execution = tokens(gw)
    with pytest.raises(aura.ToolDenied, match="expected an identity token"):
        check(gw, execution, identity)
    other = aura.mission_definition(m.arithmetic)
    with pytest.raises(aura.ToolDenied, match="different agents"):
        check(gw, gw.identity_token(other), execution)


def test_the_allow_list_and_scopes_are_enforced() -> None:
    gw = gateway()
    identity, execution = tokens(gw)
    with pytest.raises(aura.ToolDenied, match="may not use this tool"):
        gw.check(
            "forbidden", {"x": 1}, identity=identity, execution=execution, mission_id="m", run=1
        )

    @aura.mission(name="tests:unscoped", tools=["search"])
    async def unscoped(ctx: aura.MissionContext) -> None: ...

    bare = aura.mission_definition(unscoped)
    with pytest.raises(aura.ToolDenied, match="lacks scope"):
        gw.check(
            "search",
            {"query": "q"},
            identity=gw.identity_token(bare),
            execution=gw.execution_token(bare, "m", 1),
            mission_id="m",
            run=1,
        )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["query", "limit", "extra", "q"]), json_values, max_size=4))
def test_fuzzed_arguments_either_match_the_schema_or_are_denied(args: dict[str, Any]) -> None:
    gw = gateway()
    identity, execution = tokens(gw)
    try:
        _, valid = check(gw, identity, execution, args=args)
    except aura.ToolDenied as err:
        assert "arguments do not match" in err.reason
        return
    assert set(valid) == {"query", "limit"}
    assert isinstance(valid["query"], str)
    assert isinstance(valid["limit"], int) and not isinstance(valid["limit"], bool)
    assert set(args) <= {"query", "limit"}


def test_a_mission_reaches_tools_only_through_the_gateway(tmp_path: Path) -> None:
    m.GATES["t"] = threading.Event()
    with aura.Runtime(
        tmp_path, missions=[m.uses_tools], tools=[m.search, m.shout, m.forbidden]
    ) as rt:
        h = rt.start(m.uses_tools, "lmdb", mission_id="t")
        m.wait_call(("gated", "t/1/6"))
    assert m.TOOL_CALLS == [("search", "lmdb"), ("shout", "lmdb #0")]  # forbidden never ran
    with aura.Runtime(tmp_path, missions=[m.uses_tools], tools=[m.search, m.shout]) as rt:
        m.GATES["t"].set()  # resumed by replay: the tools are not called again
        result = rt.handle("t").result(timeout=30)
        assert rt.verify_audit().ok
    assert m.TOOL_CALLS == [("search", "lmdb"), ("shout", "lmdb #0")]
    assert result["hits"] == ["lmdb #0", "lmdb #1"] and result["loud"] == "LMDB #0"
    reasons = result["denied"]
    assert "may not use this tool" in reasons[0]
    assert "arguments do not match" in reasons[1] and "arguments do not match" in reasons[2]
    assert "no such tool" in reasons[3]
    with EventStore.open(tmp_path / "events", readonly=True) as store:
        kinds = [a.kind for e in store.read(AUDIT_STREAM) for a in decode_entries(e.data)]
    assert kinds.count("tool.allowed") == 2 and kinds.count("tool.denied") == 4
    assert h.mission_id == "t"


def test_the_runtime_key_is_created_private_and_refused_if_readable(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path / "a", missions=[]) as rt:
        assert rt.gateway.tools() == []
    key_file = tmp_path / "a" / "keys" / "runtime.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_bytes()) == 32
    os.chmod(key_file, 0o644)
    with pytest.raises(aura.KeyFileError, match="chmod 600"):
        aura.Runtime(tmp_path / "a", missions=[])


def test_a_tool_call_is_compensated_like_a_step(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.tool_saga], tools=[m.reserve_room]) as rt:
        with pytest.raises(aura.MissionFailedError, match="card declined"):
            rt.start(m.tool_saga, mission_id="s").result(timeout=30)
        assert rt.verify_audit().ok
    assert m.SAGA == ["book suite", "cancel suite"]


def test_a_tool_call_in_flight_at_a_crash_runs_again_after_recovery(tmp_path: Path) -> None:
    m.GATES["k"] = threading.Event()
    with aura.Runtime(tmp_path, missions=[m.looks_up], tools=[m.slow_lookup]) as rt:
        rt.start(m.looks_up, "k", mission_id="lk")
        m.wait_call(("slow_lookup", "lk/1/0"))  # in flight when the runtime goes away
    with aura.Runtime(tmp_path, missions=[m.looks_up], tools=[m.slow_lookup]) as rt:
        assert rt.handle("lk").result(timeout=30) == "K"
    m.GATES["k"].set()
    assert [key for _, key in m.TOOL_CALLS] == ["lk/1/0", "lk/1/0"]  # same idempotency key
