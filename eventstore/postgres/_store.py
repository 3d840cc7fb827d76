"""PostgresEventStore: the event-store contract on PostgreSQL.

Many processes on many hosts may open one store: optimistic concurrency
(``expected_version``) and the hash chains hold across all of them, because
every check and every write happens inside one transaction under row locks
(see ``_batch``). Within a process, concurrent appenders share one
transaction (group commit, as on LMDB). Reads run on a small connection
pool, each statement a consistent snapshot; long reads go in chunks.

``durability="sync"`` (default): an append returns once PostgreSQL has
flushed its commit (``synchronous_commit`` as the server sets it, ``on`` by
default). ``"async"``: ``synchronous_commit=off`` for this store's writes.

Faults: a server that cannot be reached or that drops the connection gives
:class:`StoreUnavailableError` to the caller, and the next call connects
again (the pool replaces broken connections). If the connection breaks
during a commit, the store reconnects and looks up the first event of the
batch to learn whether it committed, so an acknowledged append is never
reported as failed nor a failed one as acknowledged.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg_pool import ConnectionPool, PoolTimeout

from .._errors import (
    InvalidEventError,
    StoreClosedError,
    StoreReadOnlyError,
    StoreUnavailableError,
)
from .._group_commit import GroupCommitter
from .._records import Lease, RecordedEvent, Snapshot, StreamInfo
from .._validate import (
    check_lease_args,
    check_limit,
    check_prefix,
    check_stream,
    check_version,
)
from .._write_ops import AppendOp, Op
from .._writes import GroupCommitWrites
from . import _batch
from ._connect import RETRYABLE, connect, describe, translate
from ._schema import check_schema_name, ensure

_READ_CHUNK = 1000
_WRITE_ATTEMPTS = 5
_EVENT_COLUMNS = "stream, version, position, kind, data, ts, digest"


def _event(row: tuple[Any, ...]) -> RecordedEvent:
    stream, version, position, kind, data, ts, digest = row
    return RecordedEvent(stream, version, position, kind, bytes(data), ts, bytes(digest))


class PostgresEventStore(GroupCommitWrites):
    supports_fencing = True

    """An append-only event log in a PostgreSQL schema. Open with :meth:`open`."""

    def __init__(
        self,
        url: str,
        *,
        schema: str,
        durability: str,
        readonly: bool,
        keep_snapshots: int,
        clock: Callable[[], float],
        max_batch: int,
        chained: Collection[str],
        pool_size: int,
        timeout: float,
        idle_timeout: float,
    ) -> None:
        self._url = url
        self._schema = schema
        self._where = f"{describe(url)} (schema {schema})"
        self._readonly = readonly
        self._keep = keep_snapshots
        self._clock = clock
        self._chained = frozenset(chained)
        self.channel = f"{schema}_events"
        """The NOTIFY channel that carries the new head position at each commit."""
        self._closed = False
        self._close_lock = threading.Lock()
        self.session = f"aura-{uuid.uuid4().hex[:16]}"
        """This store's sessions' ``application_name``: whoever takes a lease it
        held ends them (see :meth:`acquire_lease`)."""
        settings = [f"SET idle_in_transaction_session_timeout = {int(idle_timeout * 1000)}"]
        if durability == "async":
            settings.append("SET synchronous_commit TO off")

        self._own_pids: set[int] = set()  # backends of this store: their NOTIFYs are ours
        self._unsubscribes: list[Callable[[], None]] = []

        def configure(conn: psycopg.Connection[Any]) -> None:
            for statement in settings:
                conn.execute(statement)
            self._own_pids.add(conn.info.backend_pid)

        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={
                "autocommit": True,
                "connect_timeout": 10,
                "application_name": self.session,
            },
            configure=configure,
            open=False,
            timeout=timeout,
            reconnect_timeout=0,  # keep trying: a runtime outlives a database restart
            name=f"eventstore-{schema}",
        )
        self._committer: GroupCommitter[Op] = GroupCommitter(self._run_batch, max_batch=max_batch)
        self._known = _batch.Known()  # the rows the last commit left (committing thread)

    # ------------------------------------------------------------ lifecycle

    @classmethod
    def open(
        cls,
        url: str,
        *,
        schema: str = "aura",
        durability: str = "sync",
        readonly: bool = False,
        keep_snapshots: int = 3,
        clock: Callable[[], float] = time.time,
        max_batch: int = 2048,
        chained: Collection[str] = (),
        pool_size: int = 4,
        timeout: float = 10.0,
        idle_timeout: float = 2.0,
    ) -> PostgresEventStore:
        """Open the store in ``schema`` of the database ``url`` names,
        creating its tables on first open (unless ``readonly``).

        A wrong URL, wrong credentials or an unreachable server raise
        :class:`StoreUnavailableError` naming host and database (never the
        password); a schema written by newer code, :class:`StoreIOError`.
        ``timeout``: seconds a call waits for a connection (the server is
        down or restarting) before it raises :class:`StoreUnavailableError`.
        ``idle_timeout``: the server ends a session of this store that sits
        inside a transaction that long (the process was paused mid-commit:
        its row locks must not stall every other writer); the paused
        commit is rolled back.
        """
        schema = check_schema_name(schema)
        for name in chained:
            check_stream(name)
        if durability not in ("sync", "async"):
            raise InvalidEventError(f"durability must be 'sync' or 'async', got {durability!r}")
        check_version("keep_snapshots", keep_snapshots, minimum=1)
        check_version("pool_size", pool_size, minimum=1)
        if not 0 < idle_timeout <= 3600:
            raise InvalidEventError(
                f"idle_timeout must be seconds in (0, 3600], got {idle_timeout}"
            )
        where = f"{describe(url)} (schema {schema})"
        with connect(url, where) as conn:
            try:
                ensure(conn, schema, where, readonly=readonly)
            except psycopg.Error as err:
                raise translate(err, where, "open", url) from None
        store = cls(
            url,
            schema=schema,
            durability=durability,
            readonly=readonly,
            keep_snapshots=keep_snapshots,
            clock=clock,
            max_batch=max_batch,
            chained=chained,
            pool_size=pool_size,
            timeout=timeout,
            idle_timeout=idle_timeout,
        )
        store._pool.open(wait=False)
        return store

    def close(self) -> None:
        """Finish in-flight writes and close every connection. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        for unsubscribe in list(self._unsubscribes):
            unsubscribe()
        self._committer.wait_idle()
        self._pool.close()

    def __enter__(self) -> PostgresEventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def path(self) -> str:
        """Where the store is, for messages: host, database and schema."""
        return self._where

    @property
    def url(self) -> str:
        return self._url

    @property
    def schema(self) -> str:
        return self._schema

    @property
    def closed(self) -> bool:
        return self._closed

    def flush(self) -> None:
        """Make every earlier commit durable (only matters with
        ``durability="async"``): one synchronous commit flushes the WAL up
        to it."""
        self._check_open()
        with self._connection("flush") as conn, conn.transaction():
            conn.execute("SET LOCAL synchronous_commit TO on")
            conn.execute(f"UPDATE {self._schema}.meta SET value = value WHERE key = 'head'")

    # ------------------------------------------------------------ writes

    def _submit(self, op: Op) -> Any:
        self._check_open()
        return self._committer.submit(op)

    def _run_batch(self, ops: Sequence[Op]) -> list[object]:
        """One transaction for ``ops``. Failures before the commit wrote
        nothing and are retried (a deadlock, or a pooled connection the
        server dropped: once); a failure during the commit is resolved by
        looking the batch's first event up."""
        broken = 0
        appends_only = all(isinstance(op, AppendOp) for op in ops)
        for attempt in range(_WRITE_ATTEMPTS):
            state = _batch.Attempt()
            try:
                with self._connection("write") as conn:
                    if appends_only:
                        _batch.commit_appends(
                            conn,
                            self._schema,
                            ops,  # type: ignore[arg-type]
                            state,
                            now=self._clock(),
                            chained=self._chained,
                            channel=self.channel,
                            known=self._known,
                        )
                    else:
                        self._known.forget()
                        self._commit_general(conn, ops, state)
                assert state.applied is not None
                return state.applied.outcomes
            except psycopg.Error as err:
                applied = state.applied
                sqlstate = getattr(err, "sqlstate", None)
                if not state.committing:
                    if sqlstate in RETRYABLE and attempt < _WRITE_ATTEMPTS - 1:
                        continue  # a deadlock or serialisation failure: nothing written
                    if isinstance(err, psycopg.OperationalError) and broken == 0:
                        broken += 1
                        self._drop_broken()
                        continue  # the server dropped our connections: try fresh ones, once
                    raise translate(err, self._where, "write", self._url) from None
                assert applied is not None
                if applied.probe is not None and self._committed(applied.probe):
                    return applied.outcomes
                if applied.probe is not None and broken == 0 and attempt < _WRITE_ATTEMPTS - 1:
                    broken += 1
                    self._drop_broken()
                    continue  # it is known not to have committed: write it again, once
                raise StoreUnavailableError(
                    self._where,
                    "write",
                    f"the connection broke during the commit ({err})",
                    committed=False if applied.probe is not None else None,
                ) from None
        raise StoreUnavailableError(self._where, "write", "too many deadlocks")  # pragma: no cover

    def _commit_general(
        self, conn: psycopg.Connection[Any], ops: Sequence[Op], state: _batch.Attempt
    ) -> None:
        """Snapshots, archive and purge requests (and appends batched with
        them), one statement at a time in one transaction."""
        with conn.transaction():
            state.applied = _batch.apply(
                conn,
                self._schema,
                ops,
                now=self._clock(),
                chained=self._chained,
                keep_snapshots=self._keep,
                channel=self.channel,
            )
            for hook in state.applied.hooks:
                hook()
            state.committing = True

    def _committed(self, probe: tuple[int, str, int, str, bytes, float, bytes]) -> bool:
        """Is the batch whose first row is ``probe`` in the log, exactly? The
        answer is final: it waits (a little) for the lock on the head row,
        which the broken commit held until it ended (if it reached the
        server at all)."""
        position, stream, version, kind, data, ts, _ = probe
        for delay in (0.05, 0.2, 0.5, 1.0, 2.0):
            try:
                with self._connection("check a commit") as conn, conn.transaction():
                    conn.execute("SET LOCAL lock_timeout = '2s'")
                    conn.execute(f"SELECT 1 FROM {self._schema}.meta WHERE key = 'head' FOR SHARE")
                    row = conn.execute(
                        f"SELECT position, kind, data, ts FROM {self._schema}.events "
                        "WHERE stream = %s AND version = %s UNION ALL "
                        f"SELECT position, kind, data, ts FROM {self._schema}.archive "
                        "WHERE stream = %s AND version = %s",
                        [stream, version, stream, version],
                    ).fetchone()
                return row is not None and (row[0], row[1], bytes(row[2]), row[3]) == (
                    position,
                    kind,
                    data,
                    ts,
                )
            except (StoreUnavailableError, psycopg.Error):
                time.sleep(delay)  # the server is coming back: wait a moment, then ask again
        raise StoreUnavailableError(
            self._where, "write", "the connection broke during the commit", committed=None
        )

    # ------------------------------------------------------------ followers

    def subscribe(
        self, on_commit: Callable[[int], None], *, streams: Collection[str] | None = None
    ) -> Callable[[], None]:
        """Call ``on_commit(head)`` on a thread of its own whenever another
        process (or another store object) commits to this store, woken by
        LISTEN/NOTIFY at once; commits of this store object are left out.
        ``streams`` (system streams, named ``$...``): only commits that
        append to one of them.
        Returns (once listening) the function that stops it. A broken connection is
        re-established (a follower should also poll, at a slower pace, for
        what it may have missed meanwhile)."""
        self._check_open()
        watched = frozenset(streams) if streams is not None else None
        # Watching system streams only: listen on their own channels, so that
        # other commits (most of them) do not wake this thread at all.
        own = [_batch.stream_channel(self.channel, st) for st in watched or ()]
        channels = [self.channel]
        if watched and all(own) and all(st[0] == "$" and st not in self._chained for st in watched):
            channels = [c for c in own if c is not None]
        listens = [pgsql.SQL("LISTEN {}").format(pgsql.Identifier(c)) for c in channels]
        stop = threading.Event()
        listening = threading.Event()

        def listen() -> None:
            delay = 0.1
            while not stop.is_set() and not self._closed:
                try:
                    with psycopg.connect(self._url, autocommit=True, connect_timeout=10) as conn:
                        for statement in listens:
                            conn.execute(statement)
                        listening.set()
                        delay = 0.1
                        while not stop.is_set() and not self._closed:
                            for note in conn.notifies(timeout=0.5):
                                if note.pid in self._own_pids:
                                    continue
                                head, *names = note.payload.split(" ")
                                if watched is None or "*" in names or watched & set(names):
                                    on_commit(int(head))
                except psycopg.Error:
                    stop.wait(delay)  # the server is away: try again, backing off
                    delay = min(delay * 2, 5.0)

        thread = threading.Thread(
            target=listen, name=f"eventstore-listen-{self._schema}", daemon=True
        )
        thread.start()
        listening.wait(10)  # from here on no commit is missed (unless the server is away)

        def unsubscribe() -> None:
            stop.set()
            if thread is not threading.current_thread():
                thread.join()
            with contextlib.suppress(ValueError):
                self._unsubscribes.remove(unsubscribe)

        self._unsubscribes.append(unsubscribe)
        return unsubscribe

    # ------------------------------------------------------------ leases

    _NOW = "extract(epoch FROM clock_timestamp())"

    def acquire_lease(self, resource: str, owner: str, ttl: float) -> Lease | None:
        """Take ``resource`` for ``ttl`` seconds if it is free, expired or
        already ``owner``'s (then it is renewed, same epoch); None if another
        owner holds it. Another owner's expired lease is taken with its epoch
        plus one, which fences that owner's writes off. Expiry is on the
        database server's clock, so hosts' clocks need not agree.

        Taking over an expired lease also ends the previous holder's
        database sessions: a process paused in the middle of a commit holds
        row locks that no server timeout frees, and would stall every writer
        (the taker included) until it woke. Its commit is rolled back."""
        resource, owner, ttl = check_lease_args(resource, owner, ttl)
        self._check_writable("take a lease")
        s, now = self._schema, self._NOW
        upsert = (
            f"INSERT INTO {s}.leases AS l (resource, owner, epoch, expires, session) "
            f"VALUES (%s, %s, 1, {now} + %s, %s) ON CONFLICT (resource) DO UPDATE SET "
            "owner = EXCLUDED.owner, expires = EXCLUDED.expires, session = EXCLUDED.session, "
            "epoch = CASE WHEN l.owner = EXCLUDED.owner THEN l.epoch ELSE l.epoch + 1 END "
            f"WHERE l.owner = EXCLUDED.owner OR l.expires <= {now} "
            "RETURNING resource, owner, epoch, expires"
        )
        for _ in range(20):
            try:
                with self._pool.connection() as conn, conn.transaction():
                    before = conn.execute(
                        f"SELECT owner, session, expires > 0 FROM {s}.leases WHERE resource = %s",
                        [resource],
                    ).fetchone()
                    conn.execute("SET LOCAL lock_timeout = '250ms'")
                    row = conn.execute(upsert, [resource, owner, ttl, self.session]).fetchone()
            except psycopg.errors.LockNotAvailable:
                # Someone's open transaction holds the lease row: if the lease
                # has run out, that is its paused owner; end its sessions.
                self._end_stale_holder(resource, owner)
                continue
            except PoolTimeout as err:
                raise StoreUnavailableError(
                    self._where, "take a lease", f"no connection to the server ({err})"
                ) from None
            except psycopg.Error as err:
                raise translate(err, self._where, "take a lease", self._url) from None
            if row is None:
                return None
            if before is not None and before[0] != owner and before[1] and before[2]:
                # It ran out rather than being released: the old owner may
                # be paused mid-commit.
                self._end_sessions(before[1])
            return Lease(row[0], row[1], int(row[2]), float(row[3]))
        raise StoreUnavailableError(
            self._where, "take a lease", f"the lease row of {resource!r} stays locked"
        )

    def _end_stale_holder(self, resource: str, owner: str) -> None:
        row = self._one(
            f"SELECT owner, session, expires <= {self._NOW} FROM {self._schema}.leases "
            "WHERE resource = %s",
            [resource],
        )
        if row is not None and row[0] != owner and row[2] and row[1]:
            self._end_sessions(row[1])

    def _end_sessions(self, session: str) -> None:
        if session == self.session:
            return
        self._fetch(
            # Wait (up to 1 s) until each has exited and its locks are free (PostgreSQL 14+).
            "SELECT pg_terminate_backend(pid, 1000) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            [session],
            "end a lost owner's sessions",
        )

    def _end_stuck_holders(self, owner: str, prefix: str) -> None:
        """End the sessions of every other holder of an expired lease under
        ``prefix``: one paused inside a commit keeps row locks (and the
        head) that no server timeout frees (in pipeline mode the server
        arms no idle-in-transaction timeout), and every writer would wait
        until it woke. Its commit is rolled back; it cannot write again."""
        for (session,) in self._fetch(
            f"SELECT DISTINCT session FROM {self._schema}.leases "
            f"WHERE expires <= {self._NOW} AND expires > 0 AND owner <> '' AND owner <> %s "
            "AND session <> '' AND starts_with(resource, %s)",
            [owner, prefix],
            "find stuck lease holders",
        ):
            self._end_sessions(session)

    def renew_leases(self, owner: str, ttl: float) -> list[Lease]:
        """Extend every lease ``owner`` still holds by ``ttl`` seconds from
        now, in one statement (the heartbeat). Returns them; a lease missing
        from the answer was taken by another owner.

        A row of ``owner``'s can be locked by another holder's commit (its
        fence named a lease it had lost) and that holder be paused: the
        renewal waits at most a moment, ends the sessions of holders whose
        leases ran out, and tries again."""
        _, owner, ttl = check_lease_args("-", owner, ttl)
        self._check_writable("renew leases")
        sql = (
            f"UPDATE {self._schema}.leases SET expires = {self._NOW} + %s WHERE owner = %s "
            "RETURNING resource, owner, epoch, expires"
        )
        self._check_open()
        rows: list[tuple[Any, ...]] = []
        broken = False
        for attempt in range(3):
            try:
                with self._pool.connection() as conn, conn.transaction():
                    conn.execute("SET LOCAL lock_timeout = '250ms'")
                    rows = conn.execute(sql, [ttl, owner]).fetchall()
                break
            except psycopg.errors.LockNotAvailable:
                if attempt == 2:
                    raise StoreUnavailableError(
                        self._where, "renew leases", "the lease rows stay locked"
                    ) from None
                self._end_stuck_holders(owner, "")
            except psycopg.OperationalError as err:
                if broken:
                    raise translate(err, self._where, "renew leases", self._url) from None
                broken = True  # a connection the server dropped: replaced, once
                self._drop_broken()
            except PoolTimeout as err:
                raise StoreUnavailableError(
                    self._where, "renew leases", f"no connection to the server ({err})"
                ) from None
            except psycopg.Error as err:
                raise translate(err, self._where, "renew leases", self._url) from None
        return sorted(
            (Lease(r[0], r[1], int(r[2]), float(r[3])) for r in rows), key=lambda x: x.resource
        )

    def release_lease(self, resource: str, owner: str, *, done: bool = False) -> bool:
        """Give ``resource`` up now (it stays at its epoch: the next owner
        takes the next one), for anyone to claim; ``done``: nobody needs it
        any more (``claim_leases`` leaves it alone). False if ``owner`` did
        not hold it."""
        resource, owner, _ = check_lease_args(resource, owner, 1.0)
        self._check_writable("release a lease")
        row = self._write_one(
            f"UPDATE {self._schema}.leases SET expires = 0, "
            "owner = CASE WHEN %s THEN '' ELSE owner END "
            "WHERE resource = %s AND owner = %s RETURNING resource",
            [done, resource, owner],
            "release a lease",
        )
        return row is not None

    def claim_leases(self, prefix: str, owner: str, ttl: float, limit: int) -> list[Lease]:
        """Take up to ``limit`` expired leases whose resource starts with
        ``prefix`` (not the done ones), each at its epoch plus one, oldest
        expiry first, in one statement. Rows another claimer (or a commit's
        fence) has locked are skipped (``FOR UPDATE SKIP LOCKED``), so two
        claimers never take the same one and neither waits. The previous
        holders' sessions are ended, as by ``acquire_lease`` (not those of
        a holder that released its lease: it is not stuck)."""
        prefix = check_prefix(prefix)
        _, owner, ttl = check_lease_args("-", owner, ttl)
        limit = check_limit(limit)
        self._check_writable("claim leases")
        if not limit:
            return []
        s, now = self._schema, self._NOW
        rows = self._fetch(
            f"WITH c AS (SELECT resource, CASE WHEN expires > 0 THEN session ELSE '' END "
            f"AS session FROM {s}.leases "
            f"WHERE expires <= {now} AND owner <> '' AND starts_with(resource, %s) "
            "ORDER BY expires LIMIT %s FOR UPDATE SKIP LOCKED) "
            f"UPDATE {s}.leases AS l SET owner = %s, epoch = l.epoch + 1, "
            f"expires = {now} + %s, session = %s FROM c WHERE l.resource = c.resource "
            "RETURNING l.resource, l.owner, l.epoch, l.expires, c.session",
            [prefix, limit, owner, ttl, self.session],
            "claim leases",
        )
        for session in {r[4] for r in rows if r[4]}:
            self._end_sessions(session)  # a paused holder may be mid-commit
        if len(rows) < limit:
            # Expired rows the claim skipped are locked: by another claimer
            # for a moment, or by a holder paused mid-commit, whose open
            # transaction would hold them (and the head) until it woke.
            # End those holders' sessions; the next claim takes the rows.
            self._end_stuck_holders(owner, prefix)
        return sorted(
            (Lease(r[0], r[1], int(r[2]), float(r[3])) for r in rows), key=lambda x: x.resource
        )

    def leases(self, prefix: str) -> list[Lease]:
        """Every lease row whose resource starts with ``prefix``, expired ones too."""
        prefix = check_prefix(prefix)
        rows = self._fetch(
            f"SELECT resource, owner, epoch, expires FROM {self._schema}.leases "
            "WHERE starts_with(resource, %s) ORDER BY resource",
            [prefix],
            "list leases",
        )
        return [Lease(r[0], r[1], int(r[2]), float(r[3])) for r in rows]

    def lease(self, resource: str) -> Lease | None:
        """The lease row of ``resource`` (expired or not), or None."""
        check_stream(resource)
        row = self._one(
            f"SELECT resource, owner, epoch, expires FROM {self._schema}.leases "
            "WHERE resource = %s",
            [resource],
        )
        return Lease(row[0], row[1], int(row[2]), float(row[3])) if row else None

    def lease_clock(self) -> float:
        """Now, on the clock lease expiry is measured by (the server's)."""
        row = self._one(f"SELECT {self._NOW}", [])
        assert row is not None
        return float(row[0])

    def _write_one(self, sql: str, params: Sequence[Any], operation: str) -> tuple[Any, ...] | None:
        """One autocommit write statement. It is not retried (it may have
        committed when the connection broke): the caller sees the error."""
        self._check_open()
        try:
            with self._pool.connection() as conn:
                row: tuple[Any, ...] | None = conn.execute(sql, params).fetchone()
            return row
        except PoolTimeout as err:
            raise StoreUnavailableError(
                self._where, operation, f"no connection to the server ({err})"
            ) from None
        except psycopg.Error as err:
            raise translate(err, self._where, operation, self._url) from None

    # ------------------------------------------------------------ reads

    def version(self, stream: str) -> int:
        check_stream(stream)
        self._check_open()
        row = self._one(f"SELECT version FROM {self._schema}.streams WHERE stream = %s", [stream])
        return int(row[0]) if row is not None else 0

    def stream_info(self, stream: str) -> StreamInfo | None:
        check_stream(stream)
        row = self._one(
            f"SELECT version, archived_upto, purged_upto FROM {self._schema}.streams "
            "WHERE stream = %s AND version > 0",
            [stream],
        )
        if row is None:
            return None
        return StreamInfo(stream, int(row[0]), int(row[1]), int(row[2]))

    def streams(self) -> list[str]:
        self._check_open()
        rows = self._fetch(
            f"SELECT stream FROM {self._schema}.streams WHERE version > 0 "
            'ORDER BY stream COLLATE "C"',
            [],
            "list streams",
        )
        return [r[0] for r in rows]

    def head_position(self) -> int:
        row = self._one(f"SELECT value FROM {self._schema}.meta WHERE key = 'head'", [])
        return int(row[0]) if row is not None else 0

    def read(
        self,
        stream: str,
        from_version: int = 1,
        to_version: int | None = None,
        *,
        archived: bool = False,
    ) -> Iterator[RecordedEvent]:
        check_stream(stream)
        check_version("from_version", from_version, minimum=1)
        if to_version is not None:
            check_version("to_version", to_version, minimum=0)
        self._check_open()
        return self._iter_stream(stream, from_version, to_version, archived)

    def _iter_stream(
        self, stream: str, next_v: int, to_version: int | None, archived: bool
    ) -> Iterator[RecordedEvent]:
        s = self._schema
        end = to_version if to_version is not None else (1 << 62)
        hot = (
            f"SELECT {_EVENT_COLUMNS} FROM {s}.events "
            "WHERE stream = %s AND version BETWEEN %s AND %s"
        )
        if archived:
            sql = (
                f"SELECT * FROM ({hot} UNION ALL SELECT {_EVENT_COLUMNS} FROM {s}.archive "
                "WHERE stream = %s AND version BETWEEN %s AND %s) e ORDER BY version LIMIT %s"
            )
        else:
            sql = f"{hot} ORDER BY version LIMIT %s"
        while next_v <= end:
            params: list[Any] = [stream, next_v, end]
            if archived:
                params += [stream, next_v, end]
            rows = self._fetch(sql, [*params, _READ_CHUNK], f"read stream {stream!r}")
            if not rows:
                return
            for row in rows:
                yield _event(row)
            next_v = int(rows[-1][1]) + 1

    def read_all(self, from_position: int = 0) -> Iterator[RecordedEvent]:
        check_version("from_position", from_position, minimum=0)
        self._check_open()
        return self._iter_all(max(1, from_position))

    def _iter_all(self, pos: int) -> Iterator[RecordedEvent]:
        sql = (
            f"SELECT {_EVENT_COLUMNS} FROM {self._schema}.events WHERE position >= %s "
            "ORDER BY position LIMIT %s"
        )
        while True:
            rows = self._fetch(sql, [pos, _READ_CHUNK], "read the log")
            if not rows:
                return
            for row in rows:
                yield _event(row)
            pos = int(rows[-1][2]) + 1

    def load_snapshot(self, stream: str) -> Snapshot | None:
        check_stream(stream)
        row = self._one(
            f"SELECT version, data, ts FROM {self._schema}.snapshots WHERE stream = %s "
            "ORDER BY version DESC LIMIT 1",
            [stream],
        )
        if row is None:
            return None
        return Snapshot(stream, int(row[0]), bytes(row[1]), float(row[2]))

    # ------------------------------------------------------------ internals

    def _one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        rows = self._fetch(sql, params, "read")
        return rows[0] if rows else None

    def _fetch(self, sql: str, params: Sequence[Any], operation: str) -> list[tuple[Any, ...]]:
        """Run one read; a connection the server dropped is replaced once."""
        self._check_open()
        for attempt in (0, 1):
            try:
                with self._pool.connection() as conn:
                    rows: list[tuple[Any, ...]] = conn.execute(sql, params).fetchall()
                return rows
            except PoolTimeout as err:
                raise StoreUnavailableError(
                    self._where, operation, f"no connection to the server ({err})"
                ) from None
            except psycopg.OperationalError as err:
                if attempt == 0:
                    self._drop_broken()
                    continue
                raise translate(err, self._where, operation, self._url) from None
            except psycopg.Error as err:
                raise translate(err, self._where, operation, self._url) from None
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def _connection(self, operation: str) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; psycopg's failures become typed errors."""
        self._check_open()
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as err:
            raise StoreUnavailableError(
                self._where, operation, f"no connection to the server ({err})"
            ) from None
        except psycopg.Error as err:
            if operation == "write":
                raise  # the writer tells a failed commit from a failed write itself
            raise translate(err, self._where, operation, self._url) from None

    def _drop_broken(self) -> None:
        """After a server restart every pooled connection is dead: test the
        idle ones now (the pool replaces the dead) rather than one per call."""
        with contextlib.suppress(Exception):  # a server still down: the retry says so
            self._pool.check()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(self._where)

    def _check_writable(self, operation: str) -> None:
        self._check_open()
        if self._readonly:
            raise StoreReadOnlyError(self._where, operation)
