"""One group commit on PostgreSQL: every queued operation in one transaction.

Appends only (the hot path, ``commit_appends``) take two round trips and
the commit's flush: one pipeline locks the lease, stream and head rows and
reads them; the second inserts the events, updates the streams and the
head, notifies and commits. Batches with snapshots, archive or purge
requests take the general path (``apply``, inside a transaction the caller
opened).

Order of locks, the same in every transaction so writers never deadlock:
the rows of the touched streams (created first if new, then ``FOR UPDATE``
in name order), then the head row (only when events are appended). Each
operation is checked against the versions as this transaction sees them
(earlier operations of the batch included) before it writes, so a rejected
one leaves nothing and the others commit. Events go in with one binary
``COPY``; stream versions and chain heads with one ``UPDATE ... FROM
unnest``. A ``NOTIFY`` on the store's channel tells followers the new head
at commit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from .._chain import GENESIS, digest_of
from .._errors import (
    ArchiveError,
    ConcurrencyError,
    EventStoreError,
    LeaseLostError,
    SnapshotError,
)
from .._write_ops import AppendOp, ArchiveOp, Op, PurgeOp, SnapshotOp

_COLUMNS = "position, stream, version, kind, data, ts, digest"
_TYPES = ["bigint", "text", "bigint", "text", "bytea", "float8", "bytea"]


_Record = tuple[int, str, int, str, bytes, float, bytes]
"""An events row: position, stream, version, kind, data, ts, digest."""


@dataclass
class _Row:
    version: int
    archived_upto: int
    purged_upto: int
    digest: bytes
    changed: bool = False


@dataclass
class Applied:
    """What a batch wrote: each op's outcome, and the first event appended
    (stream, version, position) to check a commit whose answer was lost."""

    outcomes: list[object]
    probe: _Record | None
    hooks: list[Callable[[], None]]


def apply(
    conn: Any,
    schema: str,
    ops: Sequence[Op],
    *,
    now: float,
    chained: frozenset[str],
    keep_snapshots: int,
    channel: str,
) -> Applied:
    """Write ``ops`` in the open transaction of ``conn``; return outcomes."""
    s = schema
    fenced = sorted({f.resource for op in ops if isinstance(op, AppendOp) for f in op.fences})
    leases: dict[str, tuple[str, int, bool]] = {}
    if fenced:
        # FOR SHARE: a taker's epoch bump waits until this commit is done.
        for resource, owner, epoch, live in conn.execute(
            f"SELECT resource, owner, epoch, expires > extract(epoch FROM clock_timestamp()) "
            f"FROM {s}.leases WHERE resource = ANY(%s) ORDER BY resource FOR SHARE",
            [fenced],
        ):
            leases[resource] = (owner, int(epoch), bool(live))
    appended = sorted(
        {st for op in ops if isinstance(op, AppendOp) for st, evs, _ in op.items if evs}
    )
    touched = sorted(
        {st for op in ops if isinstance(op, AppendOp) for st, _, _ in op.items}
        | {op.stream for op in ops if not isinstance(op, AppendOp)}
    )
    if appended:
        conn.execute(
            f"INSERT INTO {s}.streams (stream) SELECT unnest(%s::text[]) "
            "ON CONFLICT (stream) DO NOTHING",
            [appended],
        )
    rows: dict[str, _Row] = {}
    for name, version, archived, purged, digest in conn.execute(
        f"SELECT stream, version, archived_upto, purged_upto, head_digest FROM {s}.streams "
        "WHERE stream = ANY(%s) ORDER BY stream FOR UPDATE",
        [touched],
    ):
        rows[name] = _Row(version, archived, purged, bytes(digest) or GENESIS)
    head = 0
    if appended:
        got = conn.execute(f"SELECT value FROM {s}.meta WHERE key = 'head' FOR UPDATE").fetchone()
        head = int(got[0])
    start_head = head
    pending: list[_Record] = []
    outcomes: list[object] = []
    hooks: list[Callable[[], None]] = []
    probe: _Record | None = None

    def flush_events() -> None:
        if pending:
            with conn.cursor().copy(
                f"COPY {s}.events ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"
            ) as cp:
                cp.set_types(_TYPES)
                for record in pending:
                    cp.write_row(record)
            pending.clear()

    for op in ops:
        try:
            if isinstance(op, AppendOp):
                _check_fences(op, leases)
                versions = _check_append(op, rows)
                staged = len(pending)
                head = _stage(op, rows, head, chained=chained, now=now, emit=pending.append)
                if probe is None and len(pending) > staged:
                    probe = _probe(pending[staged])
                outcomes.append(versions)
                if op.on_applied is not None:
                    hooks.append(functools.partial(op.on_applied, versions))
            elif isinstance(op, SnapshotOp):
                _snapshot(conn, s, op, rows, now=now, keep=keep_snapshots)
                outcomes.append(None)
            elif isinstance(op, ArchiveOp):
                flush_events()
                outcomes.append(_archive(conn, s, op, rows))
            else:
                flush_events()
                outcomes.append(_purge(conn, s, op, rows))
        except EventStoreError as err:
            outcomes.append(err)  # checked before writing: it left nothing
    flush_events()
    changed = [(name, row) for name, row in rows.items() if row.changed]
    if changed:
        conn.execute(
            f"UPDATE {s}.streams AS t SET version = u.version, head_digest = u.digest "
            "FROM unnest(%s::text[], %s::bigint[], %s::bytea[]) AS u(stream, version, digest) "
            "WHERE t.stream = u.stream",
            [
                [n for n, _ in changed],
                [r.version for _, r in changed],
                [r.digest if n in chained else b"" for n, r in changed],
            ],
        )
    if head != start_head:
        conn.execute(f"UPDATE {s}.meta SET value = %s WHERE key = 'head'", [head])
        extra = stream_channels(channel, appended, chained)
        conn.execute(
            f"SELECT {_notify_sql(bool(extra))}", _notify_args(channel, head, appended, extra)
        )
    return Applied(outcomes, probe, hooks)


@dataclass
class Attempt:
    """Where a commit attempt got to: ``committing`` once COMMIT may have
    reached the server (a failure after it leaves the outcome unknown)."""

    applied: Applied | None = None
    committing: bool = False


class Known:
    """What this store's writer last saw of the rows a commit locks: each
    stream's version and chain head, and the global head. The writer is
    usually the only one writing its streams (a runtime owns its missions),
    so the next commit can send its checks and its writes in one round trip
    (:func:`commit_appends`), the server verifying under the row locks that
    nothing moved. Only the committing thread touches it. After a wrong
    guess (another writer moved the head) guesses pause for a growing number
    of batches, so writers that share a store often pay little for them."""

    LIMIT = 4096  # streams remembered, least recently written dropped first

    def __init__(self) -> None:
        self.streams: dict[str, tuple[int, bytes]] = {}
        self.head: int | None = None
        self._pause = 0
        self._penalty = 1

    def guess(self, touched: Sequence[str]) -> tuple[dict[str, _Row], int] | None:
        """The rows and head as last seen, or None (unknown, or pausing)."""
        if self.head is None:
            return None
        if self._pause:
            self._pause -= 1
            return None
        rows = {}
        for name in touched:
            seen = self.streams.get(name)
            if seen is None:
                return None
            rows[name] = _Row(seen[0], 0, 0, seen[1])
        return rows, self.head

    def learn(self, rows: dict[str, _Row], head: int, *, guessed: bool) -> None:
        """After a commit: ``rows`` and ``head`` are what it left."""
        streams = self.streams
        for name, row in rows.items():
            streams.pop(name, None)
            streams[name] = (row.version, row.digest)
        while len(streams) > self.LIMIT:
            del streams[next(iter(streams))]
        self.head = head
        if guessed:
            self._penalty = 1

    def missed(self) -> None:
        self._pause = self._penalty
        self._penalty = min(self._penalty * 2, 256)

    def forget(self) -> None:
        """The outcome of a commit is unknown, or another path wrote."""
        self.streams.clear()
        self.head = None


def commit_appends(
    conn: Any,
    schema: str,
    ops: Sequence[AppendOp],
    attempt: Attempt,
    *,
    now: float,
    chained: frozenset[str],
    channel: str,
    known: Known,
) -> None:
    """BEGIN ... COMMIT for a batch of appends on ``conn`` (autocommit
    mode). In one round trip when ``known`` has every touched row and no
    call has an ``on_applied`` hook (which must run before COMMIT is sent):
    the batch is staged against those rows, and the server checks them
    under their locks (``expect``) before the writes. Otherwise, or when a
    guess was wrong (that transaction wrote nothing), in two: the first
    locks and reads the rows. Rolls back on a failure before COMMIT was
    sent; ``attempt`` says how far it got. (A process paused in the middle
    of a pipeline holds its row locks with no server timeout: whoever takes
    its lease ends its sessions, see ``acquire_lease``.)"""
    fenced = sorted({f.resource for op in ops for f in op.fences})
    appended = sorted({st for op in ops for st, evs, _ in op.items if evs})
    touched = sorted({st for op in ops for st, _, _ in op.items})
    guess = None
    if appended and all(op.on_applied is None for op in ops):
        guess = known.guess(touched)
    if guess is not None:
        rows, head = guess
        before = {name: rows[name].version for name in touched}
        staged = _stage_all(ops, None, rows, head, chained=chained, now=now)
        if staged is not None:
            try:
                _commit_guessed(
                    conn,
                    schema,
                    ops,
                    attempt,
                    staged,
                    before=before,
                    head=head,
                    chained=chained,
                    channel=channel,
                    appended=appended,
                )
            except _Stale:
                known.missed()
            except BaseException:
                if attempt.committing:
                    known.forget()
                raise
            else:
                known.learn(rows, staged.head, guessed=True)
                return
    try:
        _commit_read(
            conn,
            schema,
            ops,
            attempt,
            fenced=fenced,
            appended=appended,
            touched=touched,
            now=now,
            chained=chained,
            channel=channel,
            known=known,
        )
    except BaseException:
        if not attempt.committing or conn.info.transaction_status != 0:
            _rollback(conn)
        if attempt.committing:
            known.forget()
        raise


class _Stale(Exception):
    """The server refused a guessed commit: a row had moved (nothing written)."""


@dataclass
class _Staged:
    applied: Applied
    cols: tuple[list[Any], ...]
    rows: dict[str, _Row]
    head: int


def _stage_all(
    ops: Sequence[AppendOp],
    leases: dict[str, tuple[str, int, bool]] | None,
    rows: dict[str, _Row],
    head: int,
    *,
    chained: frozenset[str],
    now: float,
) -> _Staged | None:
    """Check and stage every op against ``rows`` (and ``leases``, unless the
    server checks them): the outcomes, the event columns and the new head.
    With ``leases=None`` (a guess), None if an op would be rejected: only
    the rows as read can say why."""
    outcomes: list[object] = []
    hooks: list[Callable[[], None]] = []
    probe: _Record | None = None
    cols: tuple[list[Any], ...] = ([], [], [], [], [], [], [])
    for op in ops:
        try:
            if leases is not None:
                _check_fences(op, leases)
            versions = _check_append(op, rows)
        except EventStoreError as err:
            if leases is None:
                return None
            outcomes.append(err)  # checked before writing: it leaves nothing
            continue
        records: list[_Record] = []
        head = _stage(op, rows, head, chained=chained, now=now, emit=records.append)
        for record in records:
            for col, value in zip(cols, record, strict=True):
                col.append(value)
        if probe is None and records:
            probe = _probe(records[0])
        outcomes.append(versions)
        if op.on_applied is not None:
            hooks.append(functools.partial(op.on_applied, versions))
    return _Staged(Applied(outcomes, probe, hooks), cols, rows, head)


def _commit_guessed(
    conn: Any,
    s: str,
    ops: Sequence[AppendOp],
    attempt: Attempt,
    staged: _Staged,
    *,
    before: dict[str, int],
    head: int,
    chained: frozenset[str],
    channel: str,
    appended: list[str],
) -> None:
    """One statement in its own transaction, one round trip: it locks the
    fences, the streams and the head in that order (each lock's check feeds
    the next), writes only if every row is as guessed, and commits. Raises
    :class:`_Stale` if the server refused it (a guess was wrong, or any
    other failure: it wrote nothing, and the two-trip path finds out which);
    a broken connection leaves the outcome unknown (``attempt.committing``)."""
    fences = sorted({(f.resource, f.owner, f.epoch) for op in ops for f in op.fences})
    rows = staged.rows
    names = sorted(before)
    params: dict[str, Any] = {
        "names": names,
        "old": [before[n] for n in names],
        "new": [rows[n].version for n in names],
        "digests": [rows[n].digest if n in chained else b"" for n in names],
        "count": len(names),
        "head": staged.head,
        "guess": head,
        "c0": staged.cols[0],
        "c1": staged.cols[1],
        "c2": staged.cols[2],
        "c3": staged.cols[3],
        "c4": staged.cols[4],
        "c5": staged.cols[5],
        "c6": staged.cols[6],
    }
    extra = stream_channels(channel, appended, chained)
    params.update(_notify_args(channel, staged.head, appended, extra))
    if fences:
        params.update(
            fr=[f[0] for f in fences], fo=[f[1] for f in fences], fe=[f[2] for f in fences]
        )
        params["fences"] = len(fences)
    attempt.applied = staged.applied
    attempt.committing = True
    try:
        conn.execute(_guessed_sql(s, fenced=bool(fences), streams=bool(extra)), params)
    except Exception as err:
        if getattr(err, "sqlstate", None) and not conn.broken:
            attempt.committing = False  # the server refused it: the transaction rolled back
            raise _Stale() from None
        raise


@functools.lru_cache(maxsize=64)
def _guessed_sql(s: str, *, fenced: bool, streams: bool) -> str:
    """The one statement of a guessed commit (see :func:`_commit_guessed`)."""
    leases, lease_check = "", ""
    if fenced:
        leases = (
            "l AS (SELECT count(*) AS n FROM (SELECT resource, owner, epoch "
            f"FROM {s}.leases WHERE resource = ANY(%(fr)s) ORDER BY resource FOR SHARE) AS x "
            "JOIN unnest(%(fr)s::text[], %(fo)s::text[], %(fe)s::bigint[]) "
            "AS f(resource, owner, epoch) USING (resource, owner, epoch)), "
        )
        lease_check = "AND (SELECT n FROM l) = %(fences)s "
    return (
        f"WITH {leases}"
        f"u AS (UPDATE {s}.streams AS t SET version = g.version, head_digest = "
        "CASE WHEN g.version = g.old THEN t.head_digest ELSE g.digest END "
        "FROM unnest(%(names)s::text[], %(old)s::bigint[], %(new)s::bigint[], "
        "%(digests)s::bytea[]) AS g(stream, old, version, digest) "
        f"WHERE t.stream = g.stream AND t.version = g.old {lease_check}RETURNING 1), "
        f"h AS (UPDATE {s}.meta SET value = %(head)s WHERE key = 'head' AND value = %(guess)s "
        "AND (SELECT count(*) FROM u) = %(count)s RETURNING value), "
        f"e AS (INSERT INTO {s}.events ({_COLUMNS}) SELECT * FROM unnest(%(c0)s::bigint[], "
        "%(c1)s::text[], %(c2)s::bigint[], %(c3)s::text[], %(c4)s::bytea[], %(c5)s::float8[], "
        "%(c6)s::bytea[]) WHERE EXISTS (SELECT 1 FROM h)) "
        f"SELECT {s}.expect(EXISTS (SELECT 1 FROM h), 'a row this writer guessed'), "
        + _notify_sql(streams)
    )


def _commit_read(
    conn: Any,
    s: str,
    ops: Sequence[AppendOp],
    attempt: Attempt,
    *,
    fenced: list[str],
    appended: list[str],
    touched: list[str],
    now: float,
    chained: frozenset[str],
    channel: str,
    known: Known,
) -> None:
    """Two round trips: lock and read the rows, then write and commit."""
    with conn.pipeline():
        conn.execute("BEGIN")
        lease_cur = None
        if fenced:
            lease_cur = conn.execute(
                f"SELECT resource, owner, epoch, "
                f"expires > extract(epoch FROM clock_timestamp()) FROM {s}.leases "
                "WHERE resource = ANY(%s) ORDER BY resource FOR SHARE",
                [fenced],
            )
        if appended:
            conn.execute(
                f"INSERT INTO {s}.streams (stream) SELECT unnest(%s::text[]) "
                "ON CONFLICT (stream) DO NOTHING",
                [appended],
            )
        stream_cur = conn.execute(
            f"SELECT stream, version, archived_upto, purged_upto, head_digest "
            f"FROM {s}.streams WHERE stream = ANY(%s) ORDER BY stream FOR UPDATE",
            [touched],
        )
        head_cur = None
        if appended:
            head_cur = conn.execute(f"SELECT value FROM {s}.meta WHERE key = 'head' FOR UPDATE")
    found = lease_cur.fetchall() if lease_cur is not None else []
    stream_rows = stream_cur.fetchall()
    head = int(head_cur.fetchone()[0]) if head_cur is not None else None
    leases = {r: (o, int(e), bool(live)) for r, o, e, live in found}
    rows = {
        name: _Row(version, archived, purged, bytes(digest) or GENESIS)
        for name, version, archived, purged, digest in stream_rows
    }
    staged = _stage_all(ops, leases, rows, head or 0, chained=chained, now=now)
    assert staged is not None  # with the leases read, rejections are outcomes
    attempt.applied = staged.applied
    for hook in staged.applied.hooks:
        hook()  # before COMMIT is sent: if one raises, nothing is written
    attempt.committing = True
    with conn.pipeline():
        if head is not None and staged.head != head:
            _write(conn, s, staged, chained=chained, channel=channel, appended=appended)
        conn.execute("COMMIT")
    if head is not None:
        known.learn(rows, staged.head, guessed=False)


def _write(
    conn: Any,
    s: str,
    staged: _Staged,
    *,
    chained: frozenset[str],
    channel: str,
    appended: list[str],
) -> None:
    """One statement: the events, the stream rows, the head, the NOTIFY."""
    changed = [(name, row) for name, row in staged.rows.items() if row.changed]
    extra = stream_channels(channel, appended, chained)
    params: dict[str, Any] = {f"c{i}": col for i, col in enumerate(staged.cols)}
    params.update(
        names=[n for n, _ in changed],
        versions=[r.version for _, r in changed],
        digests=[r.digest if n in chained else b"" for n, r in changed],
        head=staged.head,
    )
    params.update(_notify_args(channel, staged.head, appended, extra))
    conn.execute(
        f"WITH e AS (INSERT INTO {s}.events ({_COLUMNS}) SELECT * FROM unnest(%(c0)s::bigint[], "
        "%(c1)s::text[], %(c2)s::bigint[], %(c3)s::text[], %(c4)s::bytea[], %(c5)s::float8[], "
        "%(c6)s::bytea[])), "
        f"u AS (UPDATE {s}.streams AS t SET version = u.version, head_digest = u.digest "
        "FROM unnest(%(names)s::text[], %(versions)s::bigint[], %(digests)s::bytea[]) "
        "AS u(stream, version, digest) WHERE t.stream = u.stream), "
        f"h AS (UPDATE {s}.meta SET value = %(head)s WHERE key = 'head') "
        f"SELECT {_notify_sql(bool(extra))}",
        params,
    )


def stream_channels(channel: str, appended: Sequence[str], chained: Collection[str]) -> list[str]:
    """The channels a commit that appended to ``appended`` also notifies:
    one per system stream (``$...``), except chained ones (most commits
    append to the audit chain), so that a subscriber watching only
    ``$commands`` is not woken by every commit (see :func:`stream_channel`)."""
    return [
        name
        for st in appended
        if st.startswith("$") and st not in chained and (name := stream_channel(channel, st))
    ]


def stream_channel(channel: str, stream: str) -> str | None:
    """The NOTIFY channel of commits appending to ``stream``; None when the
    name would be longer than PostgreSQL's 63 bytes (watchers of such a
    stream listen to the store's ``channel`` and filter)."""
    name = f"{channel} {stream}"
    return name if len(name.encode()) <= 63 else None


def _notify_sql(streams: bool) -> str:
    """The NOTIFY part of a commit's last SELECT (parameters: ``_notify_args``)."""
    sql = "pg_notify(%(channel)s, %(notice)s)"
    if streams:
        sql += (
            ", (SELECT count(*) FROM unnest(%(streams)s::text[]) AS x(c), "
            "LATERAL pg_notify(x.c, %(notice)s))"
        )
    return sql


def _notify_args(
    channel: str, head: int, appended: Sequence[str], extra: list[str]
) -> dict[str, Any]:
    return {"channel": channel, "notice": notice(head, appended), "streams": extra}


def notice(head: int, appended: Sequence[str]) -> str:
    """The NOTIFY payload of a commit: the new head, then the system
    streams (``$...``) it appended to, so a subscriber that watches one of
    them (``$commands``) need not look after every commit ("*": too many
    to list, look)."""
    named = [st for st in appended if st.startswith("$")]
    listed = "".join(f" {st}" for st in named)
    return f"{head}{listed if len(listed) < 4000 else ' *'}"


def _rollback(conn: Any) -> None:
    import contextlib

    with contextlib.suppress(Exception):  # a broken connection rolled back by itself
        conn.execute("ROLLBACK")


def _stage(
    op: AppendOp,
    rows: dict[str, _Row],
    head: int,
    *,
    chained: frozenset[str],
    now: float,
    emit: Callable[[_Record], None],
) -> int:
    """Give the events of a checked ``op`` their versions, positions (after
    ``head``) and chain digests, passing each row to ``emit``; returns the
    new head."""
    for stream, evs, _ in op.items:
        row = rows.get(stream)
        if not evs or row is None:
            continue
        is_chained = stream in chained
        for ev in evs:
            head += 1
            row.version += 1
            digest = b""
            if is_chained:
                digest = digest_of(row.digest, stream, row.version, head, ev.kind, ev.data, now)
                row.digest = digest
            emit((head, stream, row.version, ev.kind, ev.data, now, digest))
        row.changed = True
    return head


def _probe(record: _Record) -> _Record:
    """The row whose presence, exactly as written (position, kind, data and
    the batch's timestamp), proves the commit happened: after a rolled-back
    commit another writer may reuse its stream version and even its
    position, but not its timestamp and data together."""
    return record


def _check_fences(op: AppendOp, leases: dict[str, tuple[str, int, bool]]) -> None:
    for fence in op.fences:
        owner, epoch, live = leases.get(fence.resource, ("", 0, False))
        if owner != fence.owner or epoch != fence.epoch:
            holder = owner if owner and live else None
            raise LeaseLostError(fence.resource, fence.owner, fence.epoch, holder, epoch)


def _check_append(op: AppendOp, rows: dict[str, _Row]) -> list[int]:
    """The versions ``op`` results in, or ConcurrencyError (nothing written)."""
    planned: dict[str, int] = {}
    versions = []
    for stream, evs, expected in op.items:
        row = rows.get(stream)
        current = planned.get(stream, row.version if row is not None else 0)
        if expected is not None and expected != current:
            raise ConcurrencyError(stream, expected, current)
        planned[stream] = current + len(evs)
        versions.append(planned[stream])
    return versions


def _snapshot(
    conn: Any, s: str, op: SnapshotOp, rows: dict[str, _Row], *, now: float, keep: int
) -> None:
    row = rows.get(op.stream)
    current = row.version if row is not None else 0
    if row is None or op.version > current or current == 0:
        raise SnapshotError(
            f"stream {op.stream!r}: cannot snapshot version {op.version}, "
            f"the stream is at version {current}"
        )
    conn.execute(
        f"INSERT INTO {s}.snapshots (stream, version, data, ts) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (stream, version) DO UPDATE SET data = EXCLUDED.data, ts = EXCLUDED.ts",
        [op.stream, op.version, op.data, now],
    )
    conn.execute(
        f"DELETE FROM {s}.snapshots WHERE stream = %s AND version < ALL ("
        f"SELECT version FROM {s}.snapshots WHERE stream = %s ORDER BY version DESC LIMIT %s)",
        [op.stream, op.stream, keep],
    )


def _archive(conn: Any, s: str, op: ArchiveOp, rows: dict[str, _Row]) -> int:
    row = rows.get(op.stream)
    current = row.version if row is not None else 0
    if row is None or op.up_to > current or current == 0:
        raise ArchiveError(
            f"stream {op.stream!r}: cannot archive up to version {op.up_to}, "
            f"the stream is at version {current}"
        )
    if op.up_to <= row.archived_upto:
        return row.archived_upto
    conn.execute(
        f"WITH moved AS (DELETE FROM {s}.events WHERE stream = %s AND version <= %s "
        f"RETURNING stream, version, position, kind, data, ts, digest) "
        f"INSERT INTO {s}.archive SELECT * FROM moved",
        [op.stream, op.up_to],
    )
    conn.execute(
        f"UPDATE {s}.streams SET archived_upto = %s WHERE stream = %s", [op.up_to, op.stream]
    )
    row.archived_upto = op.up_to
    return op.up_to


def _purge(conn: Any, s: str, op: PurgeOp, rows: dict[str, _Row]) -> int:
    row = rows.get(op.stream)
    if row is None or op.up_to > row.archived_upto or op.up_to >= row.version:
        raise ArchiveError(
            f"stream {op.stream!r}: cannot purge up to version {op.up_to}: only archived "
            f"events ({row.archived_upto if row else 0}) and never the last "
            f"({row.version if row else 0})"
        )
    if op.up_to > row.purged_upto:
        conn.execute(
            f"DELETE FROM {s}.archive WHERE stream = %s AND version <= %s", [op.stream, op.up_to]
        )
        conn.execute(
            f"UPDATE {s}.streams SET purged_upto = %s WHERE stream = %s", [op.up_to, op.stream]
        )
        row.purged_upto = op.up_to
    return row.purged_upto
