"""Commands from other processes (the CLI) to the runtime serving a data
directory: start, signal, cancel, redrive.

A command is appended to the ``$commands`` stream of the shared event log
(durable before the CLI returns). The runtime polls that stream's version
(one read transaction, every ``COMMAND_POLL`` seconds) and delivers what is
new, then records how far it got in ``$commands-done``. A runtime that is
down picks the backlog up when it opens. Delivery is at least once (a crash
between delivering and recording re-delivers); a mission drops a signal
whose command number it has already seen, so it is applied once.
"""

from __future__ import annotations

from typing import Any

import msgspec

from eventstore import NewEvent

COMMANDS = "$commands"
COMMANDS_DONE = "$commands-done"
COMMAND_POLL = 0.05


class Command(msgspec.Struct, frozen=True):
    kind: str  # "start" | "signal" | "cancel" | "terminate" | "resume" | "redrive"
    mission_id: str
    at: float
    name: str = ""
    """The signal's name; for a start, the mission definition's name."""
    payload: Any = None
    """The signal's payload; for a start, the list of arguments."""
    reason: str = ""
    reuse: str = "never"
    """A start's id-reuse policy."""
    key: str = ""
    """A signal's idempotency key."""


class CommandsDone(msgspec.Struct, frozen=True):
    upto: int
    """Every command up to this version of ``$commands`` was delivered."""


def queue_command(store: Any, command: Command) -> int:
    """Append ``command`` durably; returns its number (version in ``$commands``)."""
    version: int = store.append(COMMANDS, [NewEvent("command", msgspec.msgpack.encode(command))])
    return version


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
