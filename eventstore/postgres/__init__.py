"""The PostgreSQL backend: one store shared by many processes on many hosts.

Needs the ``postgres`` extra (``pip install 'aura[postgres]'``: psycopg 3
and psycopg_pool). Modules: ``_schema`` (tables, versions, creation),
``_connect`` (URLs without passwords, psycopg errors as typed ones),
``_batch`` (one group commit in one transaction), ``_store``.
"""

try:
    import psycopg  # noqa: F401
    import psycopg_pool  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the install
    raise ImportError(
        "the PostgreSQL event store needs psycopg 3 and psycopg_pool: pip install 'aura[postgres]'"
    ) from err

from ._connect import describe as describe_url
from ._schema import SCHEMA_VERSION
from ._store import PostgresEventStore

__all__ = ["SCHEMA_VERSION", "PostgresEventStore", "describe_url"]
