"""The asyncio client: a runtime's API for asyncio services (FastAPI and
the like) that never blocks the event loop.

Calls that commit (start, signal, cancel, ...) run on the loop's default
executor: each is one short durable commit. Waiting for a mission to finish
holds no thread: the runtime calls back, from the thread that settled the
mission, and the callback resolves an asyncio future on its loop, so ten
thousand ``await handle.result()`` cost ten thousand futures, not threads.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from ..core._lifecycle import SETTLED
from ._runtime import MissionHandle, MissionTimeoutError, Runtime

T = TypeVar("T")


class AsyncMissionHandle:
    """A started mission, for ``await``."""

    def __init__(self, client: AsyncRuntime, mission_id: str) -> None:
        self._client = client
        self.mission_id = mission_id

    async def result(self, timeout: float | None = None) -> Any:
        """Wait (without a thread) for the mission to finish; its result, or
        the same errors ``MissionHandle.result`` raises (``MissionTimeoutError``
        after ``timeout`` seconds)."""
        return await self._client.result(self.mission_id, timeout)

    async def status(self) -> Any:
        return (await self._client.get(self.mission_id)).status

    async def cancel(self, reason: str = "cancelled by request") -> None:
        await self._client.cancel(self.mission_id, reason)

    def __repr__(self) -> str:
        return f"AsyncMissionHandle({self.mission_id!r})"


class AsyncRuntime:
    """``aura.AsyncRuntime(rt)``: the asyncio face of an open ``Runtime``
    (it does not own it: open and close the runtime as usual)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))

    async def start(self, mission: Any, *args: Any, **options: Any) -> AsyncMissionHandle:
        """``rt.start`` (same options: ``mission_id``, ``budget``, ``reuse``)."""
        handle = await self._call(self.runtime.start, mission, *args, **options)
        return AsyncMissionHandle(self, handle.mission_id)

    def handle(self, mission_id: str) -> AsyncMissionHandle:
        return AsyncMissionHandle(self, mission_id)

    async def signal(self, mission_id: str, name: str, payload: Any = None, **options: Any) -> None:
        await self._call(self.runtime.signal, mission_id, name, payload, **options)

    async def cancel(self, mission_id: str, reason: str = "cancelled by request") -> None:
        await self._call(self.runtime.cancel, mission_id, reason)

    async def get(self, mission_id: str) -> Any:
        return await self._call(self.runtime.get, mission_id)

    async def query(self, mission_id: str, name: str, *args: Any) -> Any:
        return await self._call(self.runtime.query, mission_id, name, *args)

    async def get_event(
        self, mission_id: str, key: str, timeout: float | None = None, *, default: Any = None
    ) -> Any:
        """``rt.get_event``; while it waits it holds an executor thread."""
        return await self._call(self.runtime.get_event, mission_id, key, timeout, default=default)

    async def result(self, mission_id: str, timeout: float | None = None) -> Any:
        rt = self.runtime
        view = await self.get(mission_id)  # MissionNotFoundError for an unknown id
        if view.status not in SETTLED:
            if rt._sharing is not None and not rt._runs_here(mission_id):
                # Another runtime runs it: its log is read again every REMOTE_POLL.
                return await self._call(MissionHandle(rt, mission_id).result, timeout)
            loop = asyncio.get_running_loop()
            settled: asyncio.Future[None] = loop.create_future()

            def wake() -> None:
                loop.call_soon_threadsafe(_resolve, settled)

            rt._when_settled(mission_id, wake)
            try:
                await asyncio.wait_for(settled, timeout)
            except TimeoutError:
                raise MissionTimeoutError(
                    f"mission {mission_id!r} not finished after {timeout}s"
                ) from None
        return await self._call(MissionHandle(rt, mission_id).result, 0)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
