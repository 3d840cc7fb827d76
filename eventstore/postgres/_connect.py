"""Connecting to PostgreSQL: where a URL points (without its password) and
psycopg's failures as typed eventstore errors."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import conninfo

from .._errors import EventStoreError, InvalidEventError, StoreIOError, StoreUnavailableError


def describe(url: str) -> str:
    """``postgresql://user@host:port/dbname``: the URL minus any password."""
    try:
        parts = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as err:
        raise InvalidEventError(f"malformed PostgreSQL URL: {_scrub(str(err), url)}") from None
    user = parts.get("user")
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    db = parts.get("dbname") or user or "postgres"
    return f"postgresql://{f'{user}@' if user else ''}{host}:{port}/{db}"


def _scrub(text: str, url: str) -> str:
    try:
        password = conninfo.conninfo_to_dict(url).get("password")
    except psycopg.ProgrammingError:
        password = None
    return text.replace(str(password), "***") if password else text


# SQLSTATE classes: 08 connection exception, 57P admin shutdown / crash,
# 53 insufficient resources, 40 transaction rollback (retried by the writer).
_UNAVAILABLE = ("08", "57P", "53")
RETRYABLE = ("40001", "40P01")  # serialization failure, deadlock detected


def translate(err: BaseException, where: str, operation: str, url: str = "") -> EventStoreError:
    """One typed error for a psycopg failure, naming host and database."""
    text = _scrub(str(err).strip() or type(err).__name__, url) if url else str(err).strip()
    state = getattr(err, "sqlstate", None) or ""
    if isinstance(err, psycopg.OperationalError) or state.startswith(_UNAVAILABLE):
        if "password authentication failed" in text or state == "28P01":
            return StoreUnavailableError(where, operation, f"wrong credentials ({text})")
        return StoreUnavailableError(where, operation, text)
    if state in {"28P01", "28000"}:
        return StoreUnavailableError(where, operation, f"refused ({text})")
    if state == "53100":  # disk full
        return StoreIOError(where, operation, f"the server's disk is full: {text}")
    return StoreIOError(where, operation, text)


def connect(url: str, where: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """A direct connection (the opener's first contact), errors translated."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10, **kwargs)
    except psycopg.Error as err:
        raise translate(err, where, "connect", url) from None
