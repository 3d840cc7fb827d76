"""Translating storage-engine failures into eventstore errors, and the
corruption checks shared by the read paths."""

from __future__ import annotations

import contextlib
import errno
import os
import resource
from collections.abc import Callable
from typing import Any

import lmdb

from .._errors import CorruptionError, EventStoreError, StoreFullError, StoreIOError
from .._records import RecordedEvent

_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


def abort(txn: Any) -> None:
    with contextlib.suppress(lmdb.Error):  # already aborted by a failed commit
        txn.abort()


_DAMAGE = (
    lmdb.CorruptedError,
    lmdb.PageNotFoundError,
    lmdb.InvalidError,
    lmdb.VersionMismatchError,
    lmdb.BadTxnError,
)
"""What LMDB says when the file itself is damaged (a page that is not what
the tree expects, a file that is not LMDB)."""


def translate(err: Exception, path: str, operation: str, where: str = "") -> EventStoreError:
    detail = str(err)
    if isinstance(err, _DAMAGE):
        return CorruptionError(
            "page" if not isinstance(err, lmdb.InvalidError) else "store file",
            where or "data.mdb",
            path,
            f"LMDB failed to {operation}: {detail}",
        )
    code = getattr(err, "errno", None) or _errno_from_message(detail)
    if code in _FULL_ERRNOS or isinstance(err, lmdb.MapFullError):
        return StoreFullError(path, f"{operation}: {detail}")
    full = diagnose_full(path) if code == errno.EIO else None
    if full is not None:
        # LMDB reports a short write as EIO; a full disk or file-size limit causes one.
        return StoreFullError(path, f"{operation}: {detail} ({full})")
    return StoreIOError(path, operation, detail)


def _errno_from_message(detail: str) -> int | None:
    for code in (*_FULL_ERRNOS, errno.EIO):
        if os.strerror(code) in detail:
            return code
    return None


_LOW_SPACE = 16 << 20


def diagnose_full(path: str) -> str | None:
    """Why a write to ``path`` may have failed for lack of space, or None."""
    try:
        st = os.statvfs(path)
        if st.f_bavail * st.f_frsize < _LOW_SPACE:
            return f"{st.f_bavail * st.f_frsize} bytes free on the device"
        soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        size = os.path.getsize(os.path.join(path, "data.mdb"))
        if soft != resource.RLIM_INFINITY and size + (1 << 20) >= soft:
            return f"data.mdb is {size} bytes, the process file-size limit is {soft}"
    except OSError:
        return None
    return None


def missing(path: str, where: str) -> EventStoreError:
    return CorruptionError("record", where, path, "the index points to a record that is missing")


def at_positions(positions: list[int]) -> Callable[[int], str]:
    return lambda i: f"position {positions[i]}"


def check_record(  # noqa: PLR0917
    ev: RecordedEvent, stream: str, version: int, position: int, where: str, path: str
) -> None:
    if (ev.stream, ev.version, ev.position) != (stream, version, position):
        raise CorruptionError(
            "event",
            where,
            path,
            f"the record claims stream {ev.stream!r} version {ev.version} position {ev.position}",
        )


def corrupt_meta(path: str, pos: int) -> EventStoreError:
    return CorruptionError(
        "meta record", "meta", path, f"next position {pos} is not past the end of the log"
    )
