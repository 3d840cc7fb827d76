"""Lifecycle states of a supervised actor."""

from __future__ import annotations

import enum


class LifecycleState(enum.Enum):
    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"
    PASSIVATED = "passivated"
    """Stopped for idleness; the next message re-activates it (durable actors)."""
