"""Commands from other processes (the CLI, another host) to the runtime
that owns a mission: start, signal, cancel, terminate, resume, redrive.

A command is appended, in one commit, to the mission's own ``inbox/<id>``
stream (its number there is ``Command.inbox``) and to the ``$commands``
stream every runtime watches. A runtime polls ``$commands``'s version (one
read every ``COMMAND_POLL`` seconds, at once on a shared store's commit
notification) and delivers what is new to the missions it owns, then
records how far it got in ``$commands-done``. Delivery is at least once; a
mission journals the inbox number with what the command did and drops a
command whose number it has already applied, so each is applied once,
also when a runtime that takes a mission over (or claims one nobody owned)
re-reads the mission's inbox. Commands queued by older versions carry no
inbox number: a signal among them is deduplicated by its ``$commands``
number, as before.
"""

from __future__ import annotations

from typing import Any

import msgspec

from eventstore import ConcurrencyError, NewEvent

from ..core._budget import Budget

INBOX_PREFIX = "inbox/"
COMMANDS = "$commands"
COMMANDS_DONE = "$commands-done"
COMMAND_POLL = 0.05


class Command(msgspec.Struct, frozen=True):
    kind: str  # start, signal, cancel, terminate, resume, redrive, budget, fork (new id)
    mission_id: str
    at: float
    name: str = ""
    """The signal's name; for a start, the mission definition's name."""
    payload: Any = None
    """The signal's payload; for a start, the list of arguments; for a
    budget, ``[usd, tokens]`` (``None``: keep that limit)."""
    reason: str = ""
    reuse: str = "never"
    """A start's id-reuse policy."""
    key: str = ""
    """A signal's idempotency key."""
    inbox: int = 0
    """Its number in ``inbox/<mission_id>`` (0: queued before inboxes existed)."""
    tags: dict[str, str] = {}
    """A start's tags."""
    parent: str = ""
    parent_close: str = ""
    """A child mission's start (``ctx.start_child``): its parent and parent-close policy."""
    budget: Budget | None = None
    """A child mission's start: its budget (``None``: its definition's)."""
    trace: dict[str, str] = {}
    """A start's trace context (``Start.trace``)."""


class CommandsDone(msgspec.Struct, frozen=True):
    upto: int
    """Every command up to this version of ``$commands`` was delivered."""


def queue_command(store: Any, command: Command) -> int:
    """Append ``command`` durably to its mission's inbox and to
    ``$commands``; returns its number in ``$commands``."""
    inbox = INBOX_PREFIX + command.mission_id
    while True:
        number = store.version(inbox) + 1  # the inbox is conditional: the number is exact
        data = msgspec.msgpack.encode(msgspec.structs.replace(command, inbox=number))
        event = NewEvent("command", data)
        try:
            _, version = store.append_many(
                [(inbox, [event], number - 1), (COMMANDS, [event], None)]
            )
        except ConcurrencyError:
            continue  # another sender took this number: take the next
        return int(version)


def inbox_commands(store: Any, mission_id: str, after: int) -> list[Command]:
    """The commands sent to ``mission_id`` after its inbox number ``after``."""
    decoder = msgspec.msgpack.Decoder(Command)
    return [decoder.decode(e.data) for e in store.read(INBOX_PREFIX + mission_id, after + 1)]


def delivered_upto(store: Any) -> int:
    last = store.version(COMMANDS_DONE)
    if not last:
        return 0
    (event,) = store.read(COMMANDS_DONE, last, last)
    return msgspec.msgpack.decode(event.data, type=CommandsDone).upto


def pending_commands(store: Any, after: int) -> list[tuple[int, Command]]:
    decoder = msgspec.msgpack.Decoder(Command)
    return [(e.version, decoder.decode(e.data)) for e in store.read(COMMANDS, after + 1)]


def mark_delivered(store: Any, upto: int) -> None:
    store.append(COMMANDS_DONE, [NewEvent("done", msgspec.msgpack.encode(CommandsDone(upto)))])
