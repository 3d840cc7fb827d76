"""Fixtures every suite may use: a real PostgreSQL (see tests/postgres_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .postgres_server import fresh_schema, server_url


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    with server_url() as url:
        yield url


@pytest.fixture
def pg_schema(pg_server_url: str) -> Iterator[str]:
    """A fresh schema on the test server (dropped after the test)."""
    with fresh_schema(pg_server_url) as name:
        yield name
