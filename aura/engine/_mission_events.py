"""Events a mission publishes (``ctx.set_event``), as the log holds them.

They are journaled as ``memory`` events flagged ``event`` (so they commit,
replay and are audited exactly like memory writes) and read back from the
log by ``rt.get_event``: a value is visible once it is durable.
"""

from __future__ import annotations

from typing import Any

from ..core._messages import STREAM_PREFIX
from ..governance._memory import MEMORY, decode_write, fold_events


def published_events(store: Any, mission_id: str) -> dict[str, Any]:
    """Every event ``mission_id`` published, the latest value per key
    (archived runs included)."""
    writes = [
        decode_write(e.data)
        for e in store.read(STREAM_PREFIX + mission_id, archived=True)
        if e.kind == MEMORY
    ]
    return fold_events(writes)
