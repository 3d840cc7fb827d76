"""The test session's PostgreSQL: AURA_TEST_PG_DSN, or a throw-away server
(``aura.testing.PostgresServer``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from aura.testing import DSN_ENV, PostgresServer, fresh_schema

__all__ = ["PostgresServer", "fresh_schema", "server_url"]


@contextmanager
def server_url() -> Iterator[str]:
    """The URL of a server for this test session: AURA_TEST_PG_DSN, or a new one."""
    dsn = os.environ.get(DSN_ENV)
    if dsn:
        yield dsn
        return
    server = PostgresServer.start()
    try:
        yield server.url
    finally:
        server.remove()
