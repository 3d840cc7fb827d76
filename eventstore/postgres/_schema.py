"""The PostgreSQL schema: tables, their versions, creation on first open.

All tables live in one PostgreSQL schema (``aura`` unless told otherwise), so
one database can hold several independent stores. ``meta`` holds the schema
version and the global head position; taking the head row's lock inside each
write transaction serialises commits, so positions are gapless and in commit
order (a follower reading ``position > N`` never misses a slower commit).

Versions: ``SCHEMA_VERSION`` is what this code reads and writes. A store
created by older code is upgraded on a writable open when an upgrade step
exists; a newer one (or an older one opened read-only) is refused with one
error that says what to do. Changing a table means a new version and an
upgrade step in ``UPGRADES``.
"""

from __future__ import annotations

import re
from typing import Any

from .._errors import InvalidEventError, StoreIOError

SCHEMA_VERSION = 2
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

EXPECT = """
CREATE OR REPLACE FUNCTION {s}.expect(ok boolean, what text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION 'aura: % moved since this writer last looked', what
            USING ERRCODE = 'AU001';
    END IF;
END
$$;
"""
"""``{schema}.expect(ok, what)``: raise (SQLSTATE AU001) unless ``ok``. A commit
that guessed its rows (see ``_batch.commit_appends``) checks them with it."""


DDL = (
    """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.meta (
    key text PRIMARY KEY,
    value bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.streams (
    stream text PRIMARY KEY,
    version bigint NOT NULL DEFAULT 0,
    archived_upto bigint NOT NULL DEFAULT 0,
    purged_upto bigint NOT NULL DEFAULT 0,
    head_digest bytea NOT NULL DEFAULT ''::bytea
);
CREATE TABLE IF NOT EXISTS {s}.events (
    position bigint PRIMARY KEY,
    stream text NOT NULL,
    version bigint NOT NULL,
    kind text NOT NULL,
    data bytea NOT NULL,
    ts double precision NOT NULL,
    digest bytea NOT NULL,
    UNIQUE (stream, version)
);
CREATE TABLE IF NOT EXISTS {s}.archive (
    stream text NOT NULL,
    version bigint NOT NULL,
    position bigint NOT NULL,
    kind text NOT NULL,
    data bytea NOT NULL,
    ts double precision NOT NULL,
    digest bytea NOT NULL,
    PRIMARY KEY (stream, version)
);
CREATE TABLE IF NOT EXISTS {s}.snapshots (
    stream text NOT NULL,
    version bigint NOT NULL,
    data bytea NOT NULL,
    ts double precision NOT NULL,
    PRIMARY KEY (stream, version)
);
CREATE TABLE IF NOT EXISTS {s}.leases (
    resource text PRIMARY KEY,
    owner text NOT NULL,
    epoch bigint NOT NULL,
    expires double precision NOT NULL,
    session text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS leases_by_owner ON {s}.leases (owner);
CREATE INDEX IF NOT EXISTS leases_by_expiry ON {s}.leases (expires);
INSERT INTO {s}.meta (key, value) VALUES ('schema_version', {v}), ('head', 0)
    ON CONFLICT (key) DO NOTHING;
"""
    + EXPECT
)

UPGRADES: dict[int, str] = {1: EXPECT}
"""``UPGRADES[n]``: the SQL that turns schema version ``n`` into ``n + 1``."""


def check_schema_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidEventError(
            f"schema must be a lower-case PostgreSQL identifier ([a-z_][a-z0-9_]*), got {name!r}"
        )
    return name


def lock_key(schema: str) -> str:
    """The advisory-lock text that serialises creating and upgrading ``schema``."""
    return f"aura.eventstore.{schema}"


def ensure(conn: Any, schema: str, where: str, *, readonly: bool) -> None:
    """Create the tables of a new store, check (and upgrade) an existing one.
    ``conn`` is in autocommit mode; this runs in one transaction of its own."""
    found = _version(conn, schema)
    if found == SCHEMA_VERSION:
        return
    if found is None and readonly:
        raise StoreIOError(where, "open read-only", f"no event store in schema {schema!r}")
    if found is not None and (found > SCHEMA_VERSION or readonly):
        raise StoreIOError(where, "open", _mismatch(found, readonly))
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [lock_key(schema)])
        found = _version(conn, schema)  # another opener may have done it meanwhile
        if found is None:
            conn.execute(DDL.format(s=schema, v=SCHEMA_VERSION))
            return
        while found < SCHEMA_VERSION:
            step = UPGRADES.get(found)
            if step is None:
                raise StoreIOError(where, "open", _mismatch(found, readonly))
            conn.execute(step.format(s=schema))
            found += 1
            conn.execute(
                f"UPDATE {schema}.meta SET value = %s WHERE key = 'schema_version'", [found]
            )


def _version(conn: Any, schema: str) -> int | None:
    row = conn.execute("SELECT to_regclass(%s)", [f"{schema}.meta"]).fetchone()
    if row is None or row[0] is None:
        return None
    got = conn.execute(f"SELECT value FROM {schema}.meta WHERE key = 'schema_version'").fetchone()
    return int(got[0]) if got is not None else None


def _mismatch(found: int, readonly: bool) -> str:
    if found > SCHEMA_VERSION:
        return (
            f"the store has schema version {found}, this aura reads version {SCHEMA_VERSION}: "
            "upgrade aura on this host (every runtime on one store must run the same version)"
        )
    if readonly:
        return (
            f"the store has schema version {found}, this aura reads version {SCHEMA_VERSION}: "
            "open it once writable (a runtime or `aura worker`) to upgrade it"
        )
    return f"no upgrade from schema version {found} to {SCHEMA_VERSION} is known"
