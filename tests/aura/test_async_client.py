"""aura.AsyncRuntime: start, signal, cancel, get_event, query and
``await handle.result()`` from asyncio code, never blocking the loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

import aura
from aura import MissionStatus as S

from . import events_missions as em
from . import missions as m


def test_awaiting_a_result_leaves_the_loop_free_to_send_the_signal(tmp_path: Path) -> None:
    """If ``result()`` blocked the loop, the coroutine that sends the signal
    could never run and the mission would never finish."""

    async def main(art: aura.AsyncRuntime) -> list[int]:
        handle = await art.start(em.reporter, 2, mission_id="a")
        waiting = asyncio.create_task(handle.result(timeout=60))
        status = await art.get_event("a", "status", timeout=30)
        assert status in {"planning", "waiting for go"}
        assert await art.get_event("a", "progress", timeout=30) is not None
        loop = asyncio.get_running_loop()  # the sync wait, off the loop
        await loop.run_in_executor(None, lambda: art.runtime.wait("a", 30, until={S.WAITING}))
        assert await art.query("a", "done") == [0, 10]
        await art.signal("a", "go", "from asyncio")
        return await waiting

    with aura.Runtime(tmp_path, missions=[em.reporter]) as rt:
        assert asyncio.run(main(aura.AsyncRuntime(rt))) == [0, 10]
        assert rt.get_event("a", "status", timeout=0) == "finished (from asyncio)"


def test_many_awaits_hold_no_threads(tmp_path: Path) -> None:
    n = 200

    async def main(art: aura.AsyncRuntime) -> list[int]:
        handles = [await art.start(m.arithmetic, i % 5, mission_id=f"m-{i}") for i in range(n)]
        before = threading.active_count()
        results = await asyncio.gather(*(h.result(timeout=120) for h in handles))
        # Waiting added no thread per waiter (the executor's few at most).
        assert threading.active_count() - before < 16
        return [r["total"] for r in results]

    with aura.Runtime(tmp_path, missions=[m.arithmetic]) as rt:
        totals = asyncio.run(main(aura.AsyncRuntime(rt)))
    assert totals == [sum(range(i % 5)) for i in range(n)]


def test_errors_arrive_as_the_sync_api_raises_them(tmp_path: Path) -> None:
    async def main(art: aura.AsyncRuntime) -> None:
        with pytest.raises(aura.MissionFailedError):
            await (await art.start(m.fails, False, mission_id="f")).result(timeout=60)
        idle = await art.start(em.publish_then_wait, mission_id="i")
        with pytest.raises(aura.MissionTimeoutError, match=r"not finished after 0\.01s"):
            await idle.result(timeout=0.01)
        await idle.cancel("not needed")
        with pytest.raises(aura.MissionCancelledError):
            await idle.result(timeout=60)
        with pytest.raises(aura.MissionNotFoundError):
            await art.handle("nobody").result(timeout=1)

    with aura.Runtime(tmp_path, missions=[m.fails, em.publish_then_wait]) as rt:
        asyncio.run(main(aura.AsyncRuntime(rt)))


def test_a_closing_runtime_wakes_every_awaiter(tmp_path: Path) -> None:
    rt = aura.Runtime(tmp_path, missions=[em.publish_then_wait])

    async def main(art: aura.AsyncRuntime) -> BaseException | None:
        handle = await art.start(em.publish_then_wait, mission_id="c")
        waiting = asyncio.create_task(handle.result())
        await asyncio.get_running_loop().run_in_executor(None, rt.close)
        try:
            await waiting
        except aura.AuraError as err:
            return err
        return None

    err = asyncio.run(main(aura.AsyncRuntime(rt)))
    assert err is not None and "closed" in str(err)
