"""What only the PostgreSQL backend has: URLs, credentials, schema versions,
server restarts and killed connections. Everything else is in the shared
conformance suite."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from eventstore import (
    ConcurrencyError,
    EventStore,
    InvalidEventError,
    NewEvent,
    StoreIOError,
    StoreUnavailableError,
    backend_of,
    verify_chain,
)
from eventstore.postgres import SCHEMA_VERSION, PostgresEventStore
from tests.postgres_server import PostgresServer


def test_the_opener_picks_the_backend_from_the_target() -> None:
    assert backend_of("./aura-data/events") == "lmdb"
    assert backend_of(Path("x")) == "lmdb"
    assert backend_of("postgresql://u@h/db") == "postgres"
    assert backend_of("postgres://u@h/db") == "postgres"
    assert backend_of("memory:") == "memory"
    with pytest.raises(InvalidEventError, match="unknown event store URL scheme 'mysql'"):
        backend_of("mysql://u@h/db")
    with pytest.raises(InvalidEventError, match="path or a URL"):
        backend_of(42)


def test_an_unreachable_server_is_one_clear_error_without_the_password() -> None:
    with pytest.raises(StoreUnavailableError) as info:
        EventStore.open("postgresql://alice:s3cret-pw@127.0.0.1:1/orders")
    text = str(info.value)
    assert "postgresql://alice@127.0.0.1:1/orders" in text
    assert "s3cret-pw" not in text and "s3cret-pw" not in repr(info.value.__cause__)


def test_an_unknown_role_is_refused_naming_host_and_database(pg_server_url: str) -> None:
    url = pg_server_url.replace("postgresql://aura@", "postgresql://nobody:pw-123@")
    with pytest.raises(StoreUnavailableError) as info:
        EventStore.open(url)
    assert "nobody@" in str(info.value) and "/postgres" in str(info.value)
    assert "pw-123" not in str(info.value)


def test_a_malformed_url_or_schema_is_an_argument_error(pg_server_url: str) -> None:
    with pytest.raises(InvalidEventError, match="malformed PostgreSQL URL"):
        EventStore.open("postgresql://u@h/db?not_an_option=1&&=")
    with pytest.raises(InvalidEventError, match="schema"):
        EventStore.open(pg_server_url, schema="Robert'); DROP TABLE x;--")


def test_a_newer_schema_is_refused_and_an_absent_one_not_created_read_only(
    pg_server_url: str, pg_schema: str
) -> None:
    with pytest.raises(StoreIOError, match="no event store"):
        EventStore.open(pg_server_url, schema=pg_schema, readonly=True)
    with EventStore.open(pg_server_url, schema=pg_schema) as store:
        store.append("s", [NewEvent("k")])
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(
            f"UPDATE {pg_schema}.meta SET value = %s WHERE key = 'schema_version'",
            [SCHEMA_VERSION + 1],
        )
    with pytest.raises(StoreIOError, match="upgrade aura on this host"):
        EventStore.open(pg_server_url, schema=pg_schema)


def test_schemas_are_separate_stores(pg_server_url: str, pg_schema: str) -> None:
    other = pg_schema + "_b"
    try:
        with (
            EventStore.open(pg_server_url, schema=pg_schema) as a,
            EventStore.open(pg_server_url, schema=other) as b,
        ):
            a.append("s", [NewEvent("k")])
            assert b.version("s") == 0 and b.head_position() == 0
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {other} CASCADE")


def test_a_follower_reads_every_commit_in_position_order(
    pg_server_url: str, pg_schema: str
) -> None:
    """Writers on two stores; a follower's read_all(from=last+1) never skips."""
    stop = threading.Event()
    with (
        EventStore.open(pg_server_url, schema=pg_schema) as w1,
        EventStore.open(pg_server_url, schema=pg_schema) as w2,
        EventStore.open(pg_server_url, schema=pg_schema, readonly=True) as follower,
    ):

        def write(store: PostgresEventStore, name: str) -> None:
            i = 0
            while not stop.is_set() and i < 300:
                store.append(f"{name}-{i % 7}", [NewEvent("e", f"{name}{i}".encode())])
                i += 1

        threads = [threading.Thread(target=write, args=(w, n)) for w, n in ((w1, "a"), (w2, "b"))]
        for t in threads:
            t.start()
        seen: list[int] = []
        while any(t.is_alive() for t in threads) or (seen and seen[-1] < follower.head_position()):
            seen.extend(e.position for e in follower.read_all(seen[-1] + 1 if seen else 0))
        for t in threads:
            t.join()
        seen.extend(e.position for e in follower.read_all(seen[-1] + 1 if seen else 0))
    assert seen == list(range(1, 601))


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server of this test's own, so it can be restarted."""
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.remove()


def test_a_server_restart_is_a_typed_error_then_the_store_reconnects(
    own_server: PostgresServer,
) -> None:
    with EventStore.open(own_server.url, timeout=1.0) as store:
        store.append("s", [NewEvent("k", b"1")])
        own_server.restart()
        # A stale pooled connection is replaced without the caller noticing.
        store.append("s", [NewEvent("k", b"2")])
        assert [e.data for e in store.read("s")] == [b"1", b"2"]
        own_server.stop()
        with pytest.raises(StoreUnavailableError, match="unavailable"):
            store.append("s", [NewEvent("k", b"lost")])
        with pytest.raises(StoreUnavailableError):
            store.version("s")
        own_server.start_again()
        store.append("s", [NewEvent("k", b"3")])
        assert [e.data for e in store.read("s")] == [b"1", b"2", b"3"]


def test_killed_backends_are_replaced(pg_server_url: str, pg_schema: str) -> None:
    with EventStore.open(pg_server_url, schema=pg_schema) as store:
        store.append("s", [NewEvent("k", b"1")])
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s",
                [store.session],
            ).fetchone()
        assert killed is not None and killed[0] >= 1
        store.append("s", [NewEvent("k", b"2")])
        assert store.version("s") == 2


def test_a_subscriber_is_woken_by_other_writers_commits_not_its_own(
    pg_server_url: str, pg_schema: str
) -> None:
    heads: list[int] = []
    woken = threading.Condition()

    def on_commit(head: int) -> None:
        with woken:
            heads.append(head)
            woken.notify_all()

    with (
        EventStore.open(pg_server_url, schema=pg_schema) as mine,
        EventStore.open(pg_server_url, schema=pg_schema) as other,
    ):
        stop = mine.subscribe(on_commit)  # returns once it listens
        mine.append("s", [NewEvent("k")])  # its own commit (head 1): not reported
        other.append("t", [NewEvent("k")])  # head 2: reported
        with woken:
            assert woken.wait_for(lambda: heads, 30)
        stop()
    assert heads == [2]


@pytest.mark.parametrize(
    "watched",
    [
        "$commands",  # listened to on its own channel
        "$" + "c" * 70,  # too long for a channel of its own: the store's, filtered
        "$audit",  # chained: most commits append to it, so the store's channel, filtered
    ],
)
def test_a_subscriber_to_a_system_stream_is_woken_by_its_commits_only(
    pg_server_url: str, pg_schema: str, watched: str
) -> None:
    heads: list[int] = []
    woken = threading.Condition()

    def on_commit(head: int) -> None:
        with woken:
            heads.append(head)
            woken.notify_all()

    with (
        EventStore.open(pg_server_url, schema=pg_schema, chained=["$audit"]) as mine,
        EventStore.open(pg_server_url, schema=pg_schema, chained=["$audit"]) as other,
    ):
        stop = mine.subscribe(on_commit, streams=[watched])
        other.append("s", [NewEvent("k")])  # head 1
        other.append("$other", [NewEvent("k")])  # head 2
        mine.append(watched, [NewEvent("k")])  # head 3: its own
        other.append_many([("s", [NewEvent("k")], None), (watched, [NewEvent("k")], None)])
        other.append("t", [NewEvent("k")])  # head 6
        other.append(watched, [NewEvent("k")])  # head 7
        with woken:
            assert woken.wait_for(lambda: len(heads) >= 2, 30)
        stop()
    assert heads == [5, 7]  # in commit order: nothing of the others came first


def test_a_lost_commit_is_not_mistaken_for_anothers_row_at_its_place(
    pg_server_url: str, pg_schema: str
) -> None:
    """A commit whose answer was lost is looked up by its first row. If it
    was rolled back, another writer can reuse the same stream version and
    even the same position with the same data: that must not count as ours
    (it would acknowledge a batch that was never written)."""
    with (
        PostgresEventStore.open(pg_server_url, schema=pg_schema, clock=lambda: 1000.0) as ours,
        PostgresEventStore.open(pg_server_url, schema=pg_schema, clock=lambda: 2000.0) as theirs,
    ):
        ours.append("m", [NewEvent("step", b"result")])
        # Our next batch would have been (position 2, "m", version 2, ts 1000.0): it rolled
        # back, and the other writer committed the very same event in its place.
        theirs.append("m", [NewEvent("step", b"result")])
        (row,) = list(ours.read("m", 2, 2))
        assert (row.position, row.version, row.ts) == (2, 2, 2000.0)
        ours_lost = (2, "m", 2, "step", b"result", 1000.0, b"")
        assert ours._committed(ours_lost) is False
        assert theirs._committed((2, "m", 2, "step", b"result", 2000.0, b"")) is True


def test_an_older_schema_is_upgraded_by_a_writable_open(pg_server_url: str, pg_schema: str) -> None:
    """Version 1 had no ``expect`` function (the one-round-trip commit's
    check): a read-only open says to open it writable; that upgrades it."""
    with EventStore.open(pg_server_url, schema=pg_schema) as store:
        store.append("s", [NewEvent("k", b"1")])
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f"DROP FUNCTION {pg_schema}.expect(boolean, text)")
        conn.execute(f"UPDATE {pg_schema}.meta SET value = 1 WHERE key = 'schema_version'")
    with pytest.raises(StoreIOError, match="open it once writable"):
        EventStore.open(pg_server_url, schema=pg_schema, readonly=True)
    with EventStore.open(pg_server_url, schema=pg_schema) as store:
        for i in range(2, 6):
            assert store.append("s", [NewEvent("k", str(i).encode())], expected_version=i - 1) == i
        assert [e.data for e in store.read("s")] == [str(i).encode() for i in range(1, 6)]
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        got = conn.execute(f"SELECT value FROM {pg_schema}.meta WHERE key = 'schema_version'")
        assert got.fetchone() == (SCHEMA_VERSION,)


def test_writers_sharing_streams_and_a_chain_stay_exact(pg_server_url: str, pg_schema: str) -> None:
    """Each store commits in one round trip by guessing the rows its last
    commit left; a commit by the other store makes that guess wrong. The
    wrong guess must write nothing, and the commit must still land exactly
    (gapless positions, versions checked, the chain linked) or be refused."""
    with (
        PostgresEventStore.open(pg_server_url, schema=pg_schema, chained=["$audit"]) as a,
        PostgresEventStore.open(pg_server_url, schema=pg_schema, chained=["$audit"]) as b,
    ):
        for i in range(60):
            writer = b if i % 3 == 2 else a  # runs of a's guesses, then b moves every row
            versions = writer.append_many(
                [
                    ("s", [NewEvent("step", str(i).encode())], i),
                    ("$audit", [NewEvent("entry", str(i).encode())], None),
                    (f"own-{i % 2}", [NewEvent("x")], None),
                ]
            )
            assert versions[0] == i + 1 and versions[1] == i + 1
        with pytest.raises(ConcurrencyError):
            a.append("s", [NewEvent("stale")], expected_version=59)
        assert b.append("s", [NewEvent("step", b"60")], expected_version=60) == 61
        assert a.append("s", [NewEvent("step", b"61")], expected_version=61) == 62
        events = list(a.read_all())
        assert [e.position for e in events] == list(range(1, len(events) + 1))
        assert [e.data for e in a.read("s")] == [str(i).encode() for i in range(62)]
        audit = list(b.read("$audit"))
        assert [e.data for e in audit] == [str(i).encode() for i in range(60)]
        assert verify_chain(audit, "$audit").ok
