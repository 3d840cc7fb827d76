"""The `aura` console script.

Human output by default, ``--json`` for scripts; any error is one line on
stderr and a non-zero exit. Inspection verbs open the log read-only, so they
are safe while a runtime runs on the same directory.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import time
from typing import Any

import msgspec

from eventstore import EventStoreError

from ..core._errors import AuraError
from ..engine._place import Place


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aura", description="Durable AI-agent missions.")
    parser.add_argument("--data", help="data directory (default $AURA_DATA or ./aura-data)")
    parser.add_argument(
        "--store", help="a PostgreSQL store, postgresql://... (default $AURA_STORE)"
    )
    parser.add_argument(
        "--schema", help="the store's PostgreSQL schema (default $AURA_SCHEMA or aura)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--data", dest="sub_data", help=argparse.SUPPRESS)
        p.add_argument("--store", dest="sub_store", help=argparse.SUPPRESS)
        p.add_argument("--schema", dest="sub_schema", help=argparse.SUPPRESS)
        return p

    command("demo", "crash an agent mission mid-flight and resume it in a new process")
    ls = command("ls", "list missions and their journaled status")
    ls.add_argument("--status", help="only missions with this status")
    ls.add_argument(
        "--tag", action="append", default=[], metavar="K=V", help="only missions tagged so"
    )
    ls.add_argument("--json", action="store_true", help="JSON lines")
    show = command("show", "one mission's summary")
    show.add_argument("mission_id")
    show.add_argument("--json", action="store_true")
    hist = command("history", "a mission's journal, event by event")
    hist.add_argument("mission_id")
    hist.add_argument("--json", action="store_true", help="JSON lines")
    hist.add_argument("--archived", action="store_true", help="include archived events")
    audit = command("audit", "the tamper-evident audit chain")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check the chain and its match with the log")
    verify.add_argument("--json", action="store_true")
    audit_sub.add_parser("export", help="every entry as JSON lines, oldest first")
    compact = command("compact", "archive finished runs, finished missions, old audit entries")
    compact.add_argument(
        "--completed-after",
        type=float,
        default=0.0,
        help="archive missions finished at least this many seconds ago (default 0)",
    )
    compact.add_argument(
        "--retention",
        type=float,
        help="also delete archived history older than this many seconds (default: keep)",
    )
    compact.add_argument("--json", action="store_true")
    run = command("run", "run a mission in this process until it finishes")
    run.add_argument("mission", help="module:mission (the current directory is importable)")
    run.add_argument("--input", default="[]", help="JSON: a list of arguments (or one value)")
    run.add_argument("--id", dest="mission_id", help="mission id (idempotent)")
    run.add_argument("--timeout", type=float, default=3600.0)
    sig = command("signal", "send a signal to a mission (via the runtime serving the directory)")
    sig.add_argument("mission_id")
    sig.add_argument("name")
    sig.add_argument("payload", nargs="?", default="null", help="JSON (default null)")
    sig.add_argument("--wait", type=float, default=0.0, help="seconds to wait for delivery")
    sig.add_argument("--idempotency-key", default="", help="deliver once, however often it is sent")
    cancel = command("cancel", "cancel a mission (compensating what it completed)")
    cancel.add_argument("mission_id")
    cancel.add_argument("--reason", default="cancelled from the CLI")
    cancel.add_argument("--wait", type=float, default=0.0, help="seconds to wait for delivery")
    term = command("terminate", "end a mission now, without compensation")
    term.add_argument("mission_id")
    term.add_argument("--reason", default="terminated from the CLI")
    term.add_argument("--wait", type=float, default=0.0, help="seconds to wait for delivery")
    resume = command("resume", "take back a cancel: go on from where the mission stopped")
    resume.add_argument("mission_id")
    resume.add_argument("--reason", default="resumed from the CLI")
    resume.add_argument("--wait", type=float, default=0.0, help="seconds to wait for delivery")
    redrive = command("redrive", "resume a dead-lettered mission with the current code")
    redrive.add_argument("mission_id")
    redrive.add_argument("--wait", type=float, default=0.0, help="seconds to wait for delivery")
    budget = command("budget", "set a mission's budget limits (one waiting on its budget resumes)")
    budget.add_argument("mission_id")
    budget.add_argument("--usd", type=float, default=None, help="new cost limit in USD")
    budget.add_argument("--tokens", type=int, default=None, help="new token limit")
    budget.add_argument("--wait", type=float, default=0.0, help="seconds to wait for delivery")
    fork = command("fork", "start a new mission from another's history up to event N")
    fork.add_argument("mission_id")
    fork.add_argument(
        "--from",
        dest="from_position",
        type=_event_number,
        required=True,
        help="copy events 1..N, then run live",
    )
    fork.add_argument("--new-id", default=None, help="the fork's id (default ID-fork-N)")
    fork.add_argument("--wait", type=float, default=0.0, help="seconds to wait for delivery")
    sched = command("schedules", "list schedules: cron, paused, last and next tick")
    sched.add_argument("--json", action="store_true", help="JSON lines")
    schedule = command("schedule", "pause or resume a schedule (every runtime sharing the log)")
    schedule_sub = schedule.add_subparsers(dest="schedule_command", required=True)
    pause = schedule_sub.add_parser("pause", help="stop starting its ticks")
    pause.add_argument("name")
    pause.add_argument("--reason", default="paused from the CLI")
    resume_s = schedule_sub.add_parser("resume", help="start its ticks again, from now")
    resume_s.add_argument("name")
    dead = command("dead", "list dead-lettered missions and why")
    dead.add_argument("--json", action="store_true")
    rep = command("replay", "rebuild a mission from its log event by event (the replay debugger)")
    rep.add_argument("mission_id")
    rep.add_argument("--to", type=_event_number, help="stop after event N (>= 1)")
    rep.add_argument("--app", help="module defining the mission: replay through its code")
    rep.add_argument("--json", action="store_true", help="JSON lines")
    stats = command("stats", "counts: missions by status, events hot and archived, audit")
    stats.add_argument("--json", action="store_true")
    doctor = command("doctor", "read the whole directory: what is damaged, what is intact")
    doctor.add_argument("--json", action="store_true")
    worker = command("worker", "serve the data directory's (or store's) missions until SIGTERM")
    worker.add_argument(
        "--app",
        action="append",
        default=[],
        help="module whose @aura.mission functions this worker runs (repeatable)",
    )
    worker.add_argument(
        "--standby",
        action="store_true",
        help="if another runtime owns the directory (or, exclusively, the store), wait and "
        "take over when it exits",
    )
    worker.add_argument(
        "--exclusive",
        action="store_true",
        help="own the whole directory or store alone instead of sharing it with other "
        "workers (implied by --standby)",
    )
    worker.add_argument(
        "--max-missions",
        type=int,
        default=10_000,
        help="unfinished missions this worker takes on at most (when shared)",
    )
    worker.add_argument("--max-workers", type=int, default=8, help="threads for sync steps")
    worker.add_argument(
        "--lease",
        type=float,
        default=10.0,
        help="seconds of a shared worker's mission leases, or (PostgreSQL) of an exclusive "
        "worker's store lease; renewed every fifth of it",
    )
    worker.add_argument(
        "--processes",
        type=int,
        default=1,
        help="run N shared worker processes under this one, which starts again any that "
        "exits (the way past the GIL: one per core)",
    )
    worker.add_argument(
        "--console",
        type=int,
        metavar="PORT",
        default=None,
        help="also serve the web console on 127.0.0.1:PORT from this worker (0: any free "
        "port), with its supervision tree",
    )
    worker.add_argument(
        "--log",
        choices=["console", "json", "off"],
        default="console",
        help="the runtime's structured log on stderr (default: console lines)",
    )
    console = command("console", "serve the web console for the directory or store")
    console.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    console.add_argument("--port", type=int, default=8765, help="port (8765; 0: any free one)")
    console.add_argument(
        "--token",
        default=os.environ.get("AURA_CONSOLE_TOKEN"),
        help="access token (default $AURA_CONSOLE_TOKEN, else a random one, printed)",
    )
    console.add_argument("--read-only", action="store_true", help="disable every action")
    return parser


def _console(args: argparse.Namespace, place: Place) -> int:
    try:
        from .console import ConsoleServer
        from .console._serve import announce
    except ImportError as err:
        raise AuraError(
            f"the console needs its extra: pip install 'aura[console]' ({err})"
        ) from err
    if place.data is not None and not place.exists():
        raise AuraError(f"no aura data directory at {place.data} (run `aura demo` first?)")
    try:
        server = ConsoleServer(
            place, host=args.host, port=args.port, token=args.token, read_only=args.read_only
        )
    except OSError as err:
        raise AuraError(f"cannot listen on {args.host}:{args.port}: {err}") from err
    except ValueError as err:
        raise AuraError(str(err)) from err
    announce(server)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: uvicorn has stopped serving
        server.serve_forever()
    return 0


def _schedules(args: argparse.Namespace, place: Place) -> int:
    from ._operate import pause_schedule, resume_schedule, schedules

    if args.command == "schedule":
        if args.schedule_command == "pause":
            changed = pause_schedule(place, args.name, args.reason)
            print(f"schedule {args.name!r} " + ("paused" if changed else "was paused already"))
        else:
            changed = resume_schedule(place, args.name)
            print(f"schedule {args.name!r} " + ("resumed" if changed else "was not paused"))
        return 0
    found = schedules(place)
    if args.json:
        for view in found:
            print(_json(view.to_dict()))
        return 0

    def when(at: float | None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)) if at is not None else "-"

    print(f"{'SCHEDULE':<20} {'CRON':<18} {'STATE':<8} {'LAST TICK':<21} {'NEXT TICK':<21} MISSION")
    for v in found:
        state = "paused" if v.paused else "active"
        print(
            _clip(
                f"{v.name:<20} {v.cron:<18} {state:<8} {when(v.last_tick):<21} "
                f"{when(v.next_tick):<21} {v.mission}"
                + (f"  ({v.pause_reason})" if v.pause_reason else "")
            )
        )
    print(f"{len(found)} schedule(s) in {place.describe()}")
    return 0


def _worker_pool(args: argparse.Namespace, place: Place) -> int:
    from ._worker_pool import supervise

    if args.processes < 1:
        raise AuraError(f"--processes must be >= 1, got {args.processes}")
    if args.exclusive or args.standby:
        raise AuraError("--processes runs shared workers: it cannot be --exclusive or --standby")
    if args.console is not None:
        raise AuraError("--console serves from one worker: start it without --processes")
    env: dict[str, str] = {}
    if place.is_postgres:  # by environment: a password must not show in `ps`
        child, env = [], {"AURA_STORE": str(place.store), "AURA_SCHEMA": str(place.schema)}
    else:
        child = ["--data", str(place.data)]
    child += ["worker", *(x for app in args.app for x in ("--app", app))]
    child += ["--max-missions", str(args.max_missions), "--max-workers", str(args.max_workers)]
    child += ["--lease", str(args.lease), "--log", args.log]
    return supervise(child, args.processes, env=env)


def _tags(given: list[str]) -> dict[str, str]:
    tags = {}
    for text in given:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise AuraError(f"--tag takes NAME=VALUE, got {text!r}")
        tags[key] = value
    return tags


def _event_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an event number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"event numbers start at 1, got {value}")
    return value


def _json(value: Any) -> str:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return msgspec.json.encode(value).decode()


def _clip(text: str, width: int = 140) -> str:
    """Human output stays one line per item; --json has everything."""
    return text if len(text) <= width else text[: width - 3] + "..."


def _run(args: argparse.Namespace, place: Place) -> int:
    from . import _inspect

    if args.command == "demo":
        from ._demo import run

        if place.is_postgres or place.data is None:
            raise AuraError("aura demo runs on a data directory: use --data DIR")
        return run(place.data)
    if args.command == "ls":
        found = _inspect.missions(place, args.status, _tags(args.tag))
        if args.json:
            for m in found:
                print(_json(m))
            return 0
        print(f"{'MISSION':<24} {'STATUS':<13} {'STEPS':>5} {'EVENTS':>6}  NAME")
        for m in found:
            waits = f"  (waiting for {m.waiting_for})" if m.waiting_for else ""
            print(
                _clip(
                    f"{m.mission_id:<24} {m.status:<13} {m.steps_completed:>5} {m.events:>6}  "
                    f"{m.name}{waits}"
                    + (
                        "  [" + ", ".join(f"{k}={v}" for k, v in m.tags.items()) + "]"
                        if m.tags
                        else ""
                    )
                )
            )
        print(f"{len(found)} mission(s) in {place.describe()}")
        return 0
    if args.command == "show":
        summary = _inspect.show(place, args.mission_id)
        if args.json:
            print(_json(summary))
            return 0
        for field in dataclasses.fields(summary):
            print(f"{field.name:>16}: {_clip(str(getattr(summary, field.name)))}")
        return 0
    if args.command == "history":
        events = _inspect.history(place, args.mission_id, archived=args.archived)
        for e in events:
            if args.json:
                print(_json(e))
            else:
                line = f"{e['version']:>5}  {e['at']}  {e['kind']:<12} {e.get('summary', '')}"
                print(_clip(line))
        return 0
    if args.command == "audit":
        return _audit(args, place)
    if args.command in ("signal", "cancel", "terminate", "resume", "redrive", "budget", "fork"):
        return _command(args, place)
    if args.command == "run":
        return _run_mission(args, place)
    if args.command == "doctor":
        return _doctor(args, place)
    if args.command == "console":
        return _console(args, place)
    if args.command == "worker" and args.processes != 1:
        return _worker_pool(args, place)
    if args.command == "worker":
        from ._worker import serve

        return serve(
            place,
            args.app,
            standby=args.standby,
            max_workers=args.max_workers,
            lease=args.lease,
            shared=not (args.exclusive or args.standby),
            max_missions=args.max_missions,
            log=None if args.log == "off" else args.log,
            console_port=args.console,
        )
    if args.command in ("schedules", "schedule"):
        return _schedules(args, place)
    if args.command == "dead":
        found = _inspect.missions(place, "dead")
        for m in found:
            print(_json(m) if args.json else f"{m.mission_id:<24} {_clip(m.detail, 110)}")
        if not args.json:
            print(f"{len(found)} dead-lettered mission(s); resume one with: aura redrive ID")
        return 0
    if args.command == "replay":
        return _replay(args, place)
    if args.command == "stats":
        from ._operate import stats

        result = stats(place)
        if args.json:
            print(_json(result))
        else:
            for f in dataclasses.fields(result):
                print(f"{f.name:>20}: {getattr(result, f.name)}")
        return 0
    if args.command == "compact":
        report = _inspect.compact(place, args.completed_after, args.retention)
        if args.json:
            print(_json(report))
        else:
            where = place.describe()
            print(f"archived {report.events} events from {report.streams} stream(s) in {where}")
            if args.retention is not None:
                print(f"deleted {report.purged} archived events older than {args.retention:g}s")
        return 0
    raise AssertionError(f"unhandled command {args.command}")  # argparse refuses others


def _parse_json(text: str, what: str) -> Any:
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError as err:
        raise AuraError(f"{what} is not valid JSON: {err}") from err


def _command(args: argparse.Namespace, place: Place) -> int:
    import time

    from ..engine._commands import Command
    from ._operate import queue, wait_delivered

    if args.command == "signal":
        payload = _parse_json(args.payload, "the signal payload")
        cmd = Command(
            "signal",
            args.mission_id,
            time.time(),
            name=args.name,
            payload=payload,
            key=args.idempotency_key,
        )
    elif args.command in ("cancel", "terminate", "resume"):
        cmd = Command(args.command, args.mission_id, time.time(), reason=args.reason)
    elif args.command == "budget":
        if args.usd is None and args.tokens is None:
            print("aura: error: budget needs --usd or --tokens (or both)", file=sys.stderr)
            return 2
        from ..core._budget import Budget

        try:
            limits = Budget(args.usd, args.tokens)  # checked here, not by the runtime later
        except AuraError as err:
            print(f"aura: error: {err}", file=sys.stderr)
            return 2
        cmd = Command("budget", args.mission_id, time.time(), payload=[limits.usd, limits.tokens])
    elif args.command == "fork":
        new_id = args.new_id or f"{args.mission_id}-fork-{args.from_position}"
        cmd = Command("fork", new_id, time.time(), payload=[args.mission_id, args.from_position])
    else:
        cmd = Command("redrive", args.mission_id, time.time())
    number = queue(place, cmd)
    print(f"{args.command} queued for mission {cmd.mission_id!r} (command {number})")
    if args.wait > 0:
        if not wait_delivered(place, number, args.wait):
            print(
                f"aura: error: no runtime delivered command {number} within {args.wait}s "
                "(it stays queued: a runtime opening the directory delivers it)",
                file=sys.stderr,
            )
            return 1
        print(f"delivered to mission {cmd.mission_id!r}")
    return 0


def _run_mission(args: argparse.Namespace, place: Place) -> int:
    from ._operate import run

    given = _parse_json(args.input, "--input")
    values = given if isinstance(given, list) else [given]
    result = run(
        place,
        args.mission,
        values,
        args.mission_id,
        args.timeout,
        say=lambda text: print(text, file=sys.stderr, flush=True),
    )
    print(_json(result))
    return 0


def _replay(args: argparse.Namespace, place: Place) -> int:
    from ._replay import replay

    result = replay(place, args.mission_id, to=args.to, app=args.app)
    for step in result.steps:
        if args.json:
            print(_json(step))
            continue
        issued = f"  -> {', '.join(step.commands)}" if step.commands else ""
        state = f"[{step.status} run {step.run}, {step.steps_completed} steps]"
        print(_clip(f"{step.version:>5} {step.kind:<12} {step.summary}  {state}{issued}", 160))
    if result.steps and not args.json:
        last = result.steps[-1]
        mode = "through the code" if result.with_code else "from the log alone"
        print(f"state after event {last.version} ({mode}): {last.status}")
        print(_clip(f"  memory: {last.memory!r}", 160))
        print(f"  cost: ${last.cost_usd:.4f}, {last.cost_tokens} tokens")
    if result.divergence is not None:
        d = result.divergence
        print(f"aura: non-determinism at event {d.version}: {d.error}", file=sys.stderr)
        return 1
    return 0


def _audit(args: argparse.Namespace, place: Place) -> int:
    from . import _inspect

    if args.audit_command == "export":
        for row in _inspect.audit_export(place):
            print(_json(row))
        return 0
    report = _inspect.audit_verify(place)
    if args.json:
        print(_json(report))
    if report.ok:
        if not args.json:
            print(f"audit chain OK: {report.entries} entries, head {report.head}")
        return 0
    if report.damaged:
        for finding in report.damaged:
            print(f"aura: damaged: {finding}", file=sys.stderr)
        where = f"{len(report.damaged)} unreadable log(s) ({report.entries} entries checked)"
    elif report.bad_version:
        where = f"record {report.bad_version} (after {report.entries} good entries)"
    else:
        shown = [*report.unaudited[:3], *report.orphaned[:3]]
        where = (
            f"{len(report.unaudited)} unaudited event(s), "
            f"{len(report.orphaned)} orphaned entr(ies): {', '.join(shown)}"
        )
    print(f"aura: audit chain BROKEN at {where}: {report.reason}", file=sys.stderr)
    return 1


def _doctor(args: argparse.Namespace, place: Place) -> int:
    from ._doctor import examine

    report = examine(place)
    if args.json:
        print(_json({**dataclasses.asdict(report), "ok": report.ok}))
        return 0 if report.ok else 1
    if report.store_error:
        print(f"DAMAGED  store file: {report.store_error}")
        print(
            f"aura: {place.describe()} cannot be opened; restore it from a backup", file=sys.stderr
        )
        return 1
    for check in report.streams:
        if check.ok:
            print(f"ok       {check.stream:<40} {check.events:>7} events")
        else:
            print(f"DAMAGED  {check.stream:<40} after {check.events} events: {check.error}")
    if report.log_error:
        print(
            f"DAMAGED  the log in position order, after {report.log_events} events: "
            f"{report.log_error}"
        )
    else:
        print(f"ok       the log in position order: {report.log_events} hot events")
    print(
        ("ok       " if report.audit_ok else "DAMAGED  ")
        + "audit chain"
        + ("" if report.audit_ok else f": {report.audit_reason}")
    )
    bad = sum(not c.ok for c in report.streams)
    print(f"{len(report.streams) - bad} stream(s) intact, {bad} damaged in {place.describe()}")
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        place = Place.from_env(
            getattr(args, "sub_data", None) or args.data,
            getattr(args, "sub_store", None) or args.store,
            getattr(args, "sub_schema", None) or args.schema,
        )
        return _run(args, place)
    except (AuraError, EventStoreError) as err:
        print(f"aura: error: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`aura history ID | head`): stop quietly, and
        # keep Python from complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
