"""Leases in an LMDB directory: one owner per resource, fencing epochs.

Several processes on one host share a directory (issue 27); a lease says
which of them runs a mission. Three named tables, all written inside the
store's group-commit write transactions, so a lease change and the appends
it fences are serialised by LMDB's cross-process writer lock:

- ``leases``: resource -> (owner, epoch, expires);
- ``lease_owners``: ``owner NUL resource`` -> empty, for renewing all of an
  owner's leases in one transaction;
- ``lease_expiry``: ``expires (big-endian float64) resource`` -> empty, for
  every lease someone owns (``owner != ""``), so a claim reads the expired
  ones in expiry order and never the finished missions' rows.

Expiry is on the store's clock (wall-clock seconds: processes of one host
agree on it). A fenced append checks its fences in the transaction that
writes it (:meth:`LeaseTable.check_fences`), never against a cache.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from .._records import Lease
from .._validate import check_held, check_lease_args, check_limit, check_prefix, check_stream
from . import _codec as codec
from ._rows import _LeaseRow

TABLES = ("leases", "lease_owners", "lease_expiry")

_EXPIRES = struct.Struct(">d")


class LeaseTable:
    """The lease operations, each inside a transaction the caller opened
    (a write transaction for the ones that change leases)."""

    def __init__(self, tables: dict[str, Any], path: str) -> None:
        self._rows = tables.get("leases")
        self._owners = tables.get("lease_owners")
        self._expiry = tables.get("lease_expiry")
        self._path = path

    @property
    def present(self) -> bool:
        """False for a read-only open of a directory no lease was ever written in."""
        return self._rows is not None

    # ------------------------------------------------------------ reads

    def get(self, txn: Any, resource: str) -> Lease | None:
        if self._rows is None:
            return None
        raw = txn.get(resource.encode(), db=self._rows)
        if raw is None:
            return None
        row = codec.decode(
            raw, _LeaseRow, what="lease", where=f"lease {resource!r}", path=self._path
        )
        return Lease(resource, row.owner, row.epoch, row.expires)

    def under(self, txn: Any, prefix: str) -> list[Lease]:
        if self._rows is None:
            return []
        found = []
        key = prefix.encode()
        cur = txn.cursor(db=self._rows)
        if not cur.set_range(key):
            return []
        for raw_key in cur.iternext(keys=True, values=False):
            if not bytes(raw_key).startswith(key):
                break
            lease = self.get(txn, bytes(raw_key).decode())
            if lease is not None:
                found.append(lease)
        return found

    def check_fences(self, txn: Any, fences: Iterable[Lease], now: float) -> None:
        """Raise :class:`LeaseLostError` unless each fence is its owner's at its epoch."""
        for fence in fences:
            check_held(fence, self.get(txn, fence.resource), now)

    # ------------------------------------------------------------ writes

    def acquire(self, txn: Any, resource: str, owner: str, ttl: float, now: float) -> Lease | None:
        held = self.get(txn, resource)
        if held is not None and held.owner != owner and held.owner and held.expires > now:
            return None
        epoch = 1 if held is None else held.epoch + (held.owner != owner)
        return self._put(txn, held, Lease(resource, owner, epoch, now + ttl))

    def renew(self, txn: Any, owner: str, ttl: float, now: float) -> list[Lease]:
        assert self._owners is not None
        mine = []
        key = owner.encode() + b"\0"
        cur = txn.cursor(db=self._owners)
        if cur.set_range(key):
            for raw_key in cur.iternext(keys=True, values=False):
                if not bytes(raw_key).startswith(key):
                    break
                mine.append(bytes(raw_key)[len(key) :].decode())
        renewed = []
        for resource in mine:
            held = self.get(txn, resource)
            if held is not None and held.owner == owner:
                renewed.append(self._put(txn, held, Lease(resource, owner, held.epoch, now + ttl)))
        return sorted(renewed, key=lambda x: x.resource)

    def release(self, txn: Any, resource: str, owner: str, *, done: bool) -> bool:
        held = self.get(txn, resource)
        if held is None or held.owner != owner:
            return False
        self._put(txn, held, Lease(resource, "" if done else owner, held.epoch, 0.0))
        return True

    def claim(
        self, txn: Any, prefix: str, owner: str, *, ttl: float, limit: int, now: float
    ) -> list[Lease]:
        assert self._expiry is not None
        expired: list[Lease] = []
        cur = txn.cursor(db=self._expiry)
        if limit and cur.first():
            wanted = prefix.encode()
            for raw_key in cur.iternext(keys=True, values=False):
                key = bytes(raw_key)
                if _EXPIRES.unpack_from(key)[0] > now:
                    break
                if key[_EXPIRES.size :].startswith(wanted):
                    held = self.get(txn, key[_EXPIRES.size :].decode())
                    if held is not None:
                        expired.append(held)
                    if len(expired) == limit:
                        break
        claimed = [
            self._put(txn, held, Lease(held.resource, owner, held.epoch + 1, now + ttl))
            for held in expired
        ]
        return sorted(claimed, key=lambda x: x.resource)

    def _put(self, txn: Any, old: Lease | None, new: Lease) -> Lease:
        assert self._rows is not None and self._owners is not None and self._expiry is not None
        name = new.resource.encode()
        if old is not None and old.owner:
            txn.delete(old.owner.encode() + b"\0" + name, db=self._owners)
            txn.delete(_EXPIRES.pack(old.expires) + name, db=self._expiry)
        txn.put(name, codec.encode(_LeaseRow(new.owner, new.epoch, new.expires)), db=self._rows)
        if new.owner:
            txn.put(new.owner.encode() + b"\0" + name, b"", db=self._owners)
            txn.put(_EXPIRES.pack(new.expires) + name, b"", db=self._expiry)
        return new


class LeaseOp:
    """A lease change, run in the group commit's write transaction (so it is
    as durable as an append, and shares the commit with other callers')."""

    __slots__ = ("run",)

    def __init__(self, run: Callable[[Any, float], Any]) -> None:
        self.run = run  # (txn, now) -> result


class LeaseOps:
    """The public lease methods of :class:`LmdbEventStore` (see the module)."""

    if TYPE_CHECKING:
        _lease_table: LeaseTable
        _clock: Callable[[], float]

        def _submit(self, op: Any) -> Any: ...
        def _check_writable(self, operation: str) -> None: ...
        def _read_txn(self, where: str = "") -> AbstractContextManager[Any]: ...

    def acquire_lease(self, resource: str, owner: str, ttl: float) -> Lease | None:
        """Take ``resource`` for ``ttl`` seconds if it is free, expired or
        already ``owner``'s (renewed, same epoch); None if another owner
        holds it. Another owner's expired lease is taken at its epoch + 1,
        which fences that owner's writes off."""
        resource, owner, ttl = check_lease_args(resource, owner, ttl)
        self._check_writable("take a lease")
        table = self._lease_table
        got: Lease | None = self._submit(
            LeaseOp(lambda txn, now: table.acquire(txn, resource, owner, ttl, now))
        )
        return got

    def renew_leases(self, owner: str, ttl: float) -> list[Lease]:
        """Extend every lease ``owner`` still holds by ``ttl`` seconds from now."""
        _, owner, ttl = check_lease_args("-", owner, ttl)
        self._check_writable("renew leases")
        table = self._lease_table
        renewed: list[Lease] = self._submit(
            LeaseOp(lambda txn, now: table.renew(txn, owner, ttl, now))
        )
        return renewed

    def release_lease(self, resource: str, owner: str, *, done: bool = False) -> bool:
        """Give ``resource`` up now, for anyone to claim (``done``: needed by
        nobody any more); False if ``owner`` does not hold it."""
        resource, owner, _ = check_lease_args(resource, owner, 1.0)
        self._check_writable("release a lease")
        table = self._lease_table
        released: bool = self._submit(
            LeaseOp(lambda txn, now: table.release(txn, resource, owner, done=done))
        )
        return released

    def claim_leases(self, prefix: str, owner: str, ttl: float, limit: int) -> list[Lease]:
        """Take up to ``limit`` expired leases under ``prefix``, soonest
        expired first, each at its epoch + 1 (LMDB's writer lock: two
        claimers never take the same one)."""
        prefix = check_prefix(prefix)
        _, owner, ttl = check_lease_args("-", owner, ttl)
        limit = check_limit(limit)
        self._check_writable("claim leases")
        table = self._lease_table
        claimed: list[Lease] = self._submit(
            LeaseOp(lambda txn, now: table.claim(txn, prefix, owner, ttl=ttl, limit=limit, now=now))
        )
        return claimed

    def leases(self, prefix: str) -> list[Lease]:
        """Every lease row whose resource starts with ``prefix``, expired ones too."""
        prefix = check_prefix(prefix)
        with self._read_txn("the leases") as txn:
            return self._lease_table.under(txn, prefix)

    def lease(self, resource: str) -> Lease | None:
        """The lease row of ``resource`` (expired or not), or None."""
        check_stream(resource)
        with self._read_txn(f"lease {resource!r}") as txn:
            return self._lease_table.get(txn, resource)

    def lease_clock(self) -> float:
        """Now, on the clock lease expiry is measured by (this host's)."""
        return self._clock()
