"""Argument checks shared by every store backend, run before anything is written."""

from __future__ import annotations

from collections.abc import Sequence

from ._errors import InvalidEventError, LeaseLostError
from ._records import Lease, NewEvent

MAX_STREAM_BYTES = 400
"""LMDB keys are at most 511 bytes; stream names are keys of the streams table."""


def check_stream(stream: object) -> str:
    if type(stream) is str and 0 < len(stream) <= MAX_STREAM_BYTES and stream.isascii():
        return stream  # the common case, checked without encoding it
    if not isinstance(stream, str):
        raise InvalidEventError(f"stream name must be a str, got {type(stream).__name__}")
    if not stream:
        raise InvalidEventError("stream name must not be empty")
    if len(stream.encode("utf-8", "surrogatepass")) > MAX_STREAM_BYTES:
        raise InvalidEventError(
            f"stream name {stream[:40]!r}... is longer than {MAX_STREAM_BYTES} bytes in UTF-8"
        )
    try:
        stream.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InvalidEventError(f"stream name {stream!r} is not valid UTF-8: {err}") from err
    return stream


def check_events(stream: str, events: object) -> list[NewEvent]:
    if type(events) is not list and (
        isinstance(events, NewEvent) or not isinstance(events, Sequence)
    ):
        raise InvalidEventError(
            f"stream {stream!r}: events must be a sequence of NewEvent, got {type(events).__name__}"
        )
    out: list[NewEvent] = []
    for i, ev in enumerate(events):
        if type(ev) is not NewEvent and not isinstance(ev, NewEvent):
            raise InvalidEventError(
                f"stream {stream!r}: events[{i}] must be a NewEvent, got {type(ev).__name__}"
            )
        if not isinstance(ev.kind, str) or not ev.kind:
            raise InvalidEventError(f"stream {stream!r}: events[{i}].kind must be a non-empty str")
        if not isinstance(ev.data, bytes):
            raise InvalidEventError(
                f"stream {stream!r}: events[{i}].data must be bytes, got {type(ev.data).__name__}"
            )
        out.append(ev)
    return out


def check_version(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEventError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise InvalidEventError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_data(name: str, value: object) -> bytes:
    if not isinstance(value, bytes):
        raise InvalidEventError(f"{name} must be bytes, got {type(value).__name__}")
    return value


AppendItem = tuple[str, list[NewEvent], int | None]


def check_item(stream: object, events: object, expected_version: object) -> AppendItem:
    """Check one ``(stream, events, expected_version)`` append."""
    name = check_stream(stream)
    evs = check_events(name, events)
    if expected_version is not None:
        expected_version = check_version("expected_version", expected_version, minimum=0)
    return name, evs, expected_version


def check_batch(batch: object, on_applied: object = None) -> list[AppendItem]:
    """Check the arguments of ``append_many``."""
    if on_applied is not None and not callable(on_applied):
        raise InvalidEventError(
            f"append_many's on_applied must be callable, got {type(on_applied).__name__}"
        )
    if type(batch) is not list and (
        not isinstance(batch, Sequence) or isinstance(batch, (str, bytes))
    ):
        raise InvalidEventError(
            "append_many takes a sequence of (stream, events, expected_version), "
            f"got {type(batch).__name__}"
        )
    items = []
    for i, entry in enumerate(batch):
        if type(entry) is tuple and len(entry) == 3:
            # The common case, checked inline (append_many is the writer's hot
            # path); anything unusual takes the full checks below, which name it.
            stream, events, expected = entry
            if (
                type(stream) is str
                and 0 < len(stream) <= MAX_STREAM_BYTES
                and stream.isascii()
                and type(events) is list
                and (expected is None or (type(expected) is int and expected >= 0))
            ):
                for ev in events:
                    if (
                        type(ev) is not NewEvent
                        or type(ev.kind) is not str
                        or not ev.kind
                        or type(ev.data) is not bytes
                    ):
                        break
                else:
                    items.append((stream, events.copy(), expected))
                    continue
        if not isinstance(entry, tuple) or len(entry) != 3:
            raise InvalidEventError(
                f"append_many: batch[{i}] must be a (stream, events, expected_version) tuple"
            )
        items.append(check_item(*entry))
    return items


def check_fence(fence: object) -> tuple[Lease, ...]:
    """A fence is a :class:`Lease`, several (every one must still hold: a
    commit for several leased resources), or None (unfenced)."""
    if fence is None:
        return ()
    if isinstance(fence, Lease):
        return (fence,)
    if isinstance(fence, (list, tuple)) and all(isinstance(x, Lease) for x in fence):
        return tuple(fence)
    raise InvalidEventError(
        f"fence must be a Lease, a sequence of them, or None, got {type(fence).__name__}"
    )


def check_prefix(prefix: object) -> str:
    if not isinstance(prefix, str) or not prefix:
        raise InvalidEventError(f"a lease prefix is a non-empty str, got {prefix!r}")
    return prefix


def check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidEventError(f"a claim limit is an int >= 0, got {limit!r}")
    return limit


def check_lease_args(resource: object, owner: object, ttl: object) -> tuple[str, str, float]:
    name = check_stream(resource)
    if not isinstance(owner, str) or not owner:
        raise InvalidEventError(f"a lease owner is a non-empty str, got {owner!r}")
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 < ttl < 86_400 * 365:
        raise InvalidEventError(f"a lease ttl is seconds > 0, got {ttl!r}")
    return name, owner, float(ttl)


def check_held(fence: Lease, held: Lease | None, now: float) -> None:
    """Raise :class:`LeaseLostError` unless ``held`` (the lease row as the
    commit sees it) is ``fence``'s owner at ``fence``'s epoch; the error
    names the live holder, if any."""
    if held is None or held.owner != fence.owner or held.epoch != fence.epoch:
        live = held is not None and bool(held.owner) and held.expires > now
        raise LeaseLostError(
            fence.resource,
            fence.owner,
            fence.epoch,
            held.owner if live and held is not None else None,
            held.epoch if held is not None else 0,
        )
