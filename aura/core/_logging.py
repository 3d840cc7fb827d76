"""Structured logs: one structlog logger per runtime, never global config.

By default a runtime logs through ``actors.quiet_logger()`` (JSON rendered
into the stdlib ``actors`` logger: silent unless the application configures
logging). ``Runtime(log="json")`` prints JSON lines to stderr,
``log="console"`` aligned key=value lines; ``Runtime(logger=...)`` takes any
structlog logger. The events and their fields are listed in the README
("Structured logs").
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import structlog

from ._errors import AuraError


def make_logger(fmt: str, stream: Any = None, extra: Sequence[Any] = ()) -> Any:
    """A logger printing ``fmt`` lines; ``extra``: processors run before rendering."""
    if fmt not in ("json", "console"):
        raise AuraError(f"log must be 'json' or 'console', got {fmt!r}")
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.wrap_logger(
        structlog.PrintLogger(stream if stream is not None else sys.stderr),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            *extra,
            renderer,
        ],
    )
