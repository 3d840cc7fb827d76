"""Check ``data.mdb`` against its own meta pages before LMDB maps it.

LMDB maps the whole file and trusts it: a file shorter than the pages its
last committed transaction uses (truncated by a bad copy, a full disk, an
operator) is mapped anyway, and the first read past the end kills the
process with SIGBUS, no message. So before opening, read the two meta
pages (page 0 and 1: magic, page size, last page used, transaction id),
take the newer valid one, and compare the file's size with what it needs.
A file that is not LMDB at all is refused the same way, with a typed
:class:`CorruptionError` instead of a crash.

The layout read here is LMDB's on-disk format (``MDB_page`` header of 16
bytes, then ``MDB_meta``: magic, version, address, map size, two
``MDB_db`` records of 48 bytes whose first holds the page size, last page,
txn id) on a 64-bit little-endian host, the only kind py-lmdb builds for.
"""

from __future__ import annotations

import os
import struct

from .._errors import CorruptionError

_MAGIC = 0xBEEFC0DE
_HEADER = struct.Struct("<II")  # mm_magic, mm_version at offset 16 of a meta page
_PSIZE = struct.Struct("<I")  # mm_dbs[FREE_DBI].md_pad: the page size, at offset 40
_TAIL = struct.Struct("<QQ")  # mm_last_pg, mm_txnid at offset 136
_META_BYTES = 152
_MIN_PAGE = 512


def check_data_file(directory: str) -> None:
    """Raise :class:`CorruptionError` if ``directory/data.mdb`` exists and is
    not a whole LMDB file. A missing file is a new store (LMDB creates it)."""
    path = os.path.join(directory, "data.mdb")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError:
        return  # LMDB will report why it cannot open it
    try:
        # Meta pages first, size after: a writer in another process grows
        # the file before it writes the meta page that needs the growth.
        first = os.pread(fd, _META_BYTES, 0)
        metas = [_meta(first)]
        psize = metas[0][0] if metas[0] is not None else 0
        for size in {psize, 4096} - {0}:
            metas.append(_meta(os.pread(fd, _META_BYTES, size)))
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    valid = [m for m in metas if m is not None]
    if not valid:
        reason = (
            "the file is empty"
            if size == 0
            else f"it is not an LMDB file ({size} bytes, no valid meta page)"
        )
        raise CorruptionError("store file", "data.mdb", directory, reason)
    psize, last_pg, txnid = max(valid, key=lambda m: m[2])
    needed = (last_pg + 1) * psize
    if size < needed:
        raise CorruptionError(
            "store file",
            "data.mdb",
            directory,
            f"truncated: it is {size} bytes, but its last committed transaction "
            f"({txnid}) uses {last_pg + 1} pages of {psize} bytes ({needed} bytes)",
        )


def _meta(raw: bytes) -> tuple[int, int, int] | None:
    """(page size, last page, txn id) of one meta page, None if it is not one."""
    if len(raw) < _META_BYTES:
        return None
    magic, _version = _HEADER.unpack_from(raw, 16)
    if magic != _MAGIC:
        return None
    (psize,) = _PSIZE.unpack_from(raw, 40)
    if psize < _MIN_PAGE or psize & (psize - 1):
        return None
    last_pg, txnid = _TAIL.unpack_from(raw, 136)
    return psize, last_pg, txnid
