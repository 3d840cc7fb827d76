"""Signed tokens: who an agent is (``AgentIdentity``) and which mission run
it is acting for (``ExecutionToken``).

A token is ``msgpack([kind, payload, hmac_sha256(key, kind + payload)])``
where ``payload`` is the msgpack of the claims. The key is the runtime's:
32 random bytes kept in ``<data>/keys/runtime.key`` (created 0600, refused
if anyone else may read it) or handed over by the embedding application.
No pickle: opening a token can only ever decode plain claims.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from ..core._errors import AuraError

KEY_BYTES = 32
T = TypeVar("T")


class AgentIdentity(msgspec.Struct, frozen=True):
    """Who the agent is and what it may use: one per mission definition."""

    agent: str
    mission: str
    tools: list[str]
    scopes: list[str]
    issued: float
    expires: float


class ExecutionToken(msgspec.Struct, frozen=True):
    """The right to act for one run of one mission, until it ends or expires."""

    mission_id: str
    run: int
    mission: str
    agent: str
    issued: float
    expires: float
    nonce: str


class TokenError(AuraError):
    """A token that is malformed, of the wrong kind, or not signed by this key."""


class KeyFileError(AuraError):
    """The runtime key file is unreadable, malformed or readable by others."""


def sign(key: bytes, kind: str, claims: msgspec.Struct) -> bytes:
    payload = msgspec.msgpack.encode(claims)
    mac = hmac.new(key, kind.encode() + b"\0" + payload, hashlib.sha256).digest()
    return msgspec.msgpack.encode([kind, payload, mac])


def open_token(key: bytes, data: object, kind: str, claims_type: type[T]) -> T:
    """The claims of ``data`` if it is a ``kind`` token signed with ``key``."""
    if not isinstance(data, bytes) or not data:
        raise TokenError(f"{kind} token missing")
    try:
        parts: Any = msgspec.msgpack.decode(data)
    except (msgspec.DecodeError, ValueError) as err:  # UnicodeDecodeError is a ValueError
        raise TokenError(f"{kind} token is not a token ({err})") from err
    if (
        not isinstance(parts, list)
        or len(parts) != 3
        or not isinstance(parts[0], str)
        or not all(isinstance(p, bytes) for p in parts[1:])
    ):
        raise TokenError(f"{kind} token is malformed")
    got_kind, payload, mac = parts
    if got_kind != kind:
        raise TokenError(f"expected an {kind} token, got a {got_kind!r} token")
    expected = hmac.new(key, kind.encode() + b"\0" + payload, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise TokenError(f"{kind} token signature is invalid (forged or tampered)")
    try:
        return msgspec.msgpack.decode(payload, type=claims_type)
    except (msgspec.DecodeError, ValueError) as err:  # pragma: no cover - we signed it
        raise TokenError(f"{kind} token claims are malformed ({err})") from err


def load_or_create_key(directory: Path) -> bytes:
    """The runtime key in ``directory/runtime.key``, created (0600) if absent."""
    path = directory / "runtime.key"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES))
            f.flush()
            os.fsync(f.fileno())
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"runtime key {path} is accessible to other users (mode {stat.S_IMODE(mode):o}); "
            "chmod 600 it"
        )
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"runtime key {path} holds {len(key)} bytes, not {KEY_BYTES}")
    return key


KEY_STREAM = "$runtime-key"


def load_or_create_store_key(store: Any) -> bytes:
    """The runtime key shared by every runtime on a store (PostgreSQL): the
    first one to open it writes a random key to ``$runtime-key`` (only the
    first such append can win), every later one reads it. Whoever can read
    the database can mint tokens: guard it like the key file."""
    from eventstore import ConcurrencyError, NewEvent

    for _ in range(2):
        found = list(store.read(KEY_STREAM, 1, 1))
        if found:
            key: bytes = found[0].data
            if len(key) != KEY_BYTES:
                raise KeyFileError(
                    f"runtime key in {store.path} stream {KEY_STREAM!r} holds {len(key)} bytes, "
                    f"not {KEY_BYTES}"
                )
            return key
        try:
            store.append(
                KEY_STREAM, [NewEvent("key", secrets.token_bytes(KEY_BYTES))], expected_version=0
            )
        except ConcurrencyError:
            continue  # another runtime wrote it first: read theirs
    raise KeyFileError(f"could not read the runtime key from {store.path}")  # pragma: no cover


def check_key(key: object) -> bytes:
    if not isinstance(key, bytes) or len(key) < 16:
        raise KeyFileError("a runtime key must be bytes, at least 16 of them")
    return key
