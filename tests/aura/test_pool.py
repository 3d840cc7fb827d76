"""The step thread pool: bounded, lazy, survives failing jobs, drops work on close."""

from __future__ import annotations

import threading
import time

from aura.engine._pool import WorkerPool


def test_threads_start_lazily_and_never_exceed_the_bound() -> None:
    errors: list[BaseException] = []
    pool = WorkerPool(3, "t", errors.append)
    gate = threading.Event()
    started = threading.Semaphore(0)
    names: set[str] = set()
    lock = threading.Lock()

    def job() -> None:
        with lock:
            names.add(threading.current_thread().name)
        started.release()
        gate.wait(10)

    for _ in range(6):
        pool.submit(job)
    for _ in range(3):
        assert started.acquire(timeout=10)
    assert not started.acquire(timeout=0)  # three busy threads, three jobs queued
    gate.set()
    for _ in range(3):
        assert started.acquire(timeout=10)
    assert len(names) == 3 and errors == []
    pool.close()


def test_jobs_submitted_together_each_get_a_thread_while_under_the_bound() -> None:
    """One idle thread is one job's thread: three jobs submitted at once (as
    ``ctx.gather`` does) run side by side, not queued behind each other on
    the one thread that happened to be idle."""
    errors: list[BaseException] = []
    pool = WorkerPool(4, "t", errors.append)
    warm = threading.Event()
    pool.submit(warm.set)
    assert warm.wait(10)
    deadline = time.monotonic() + 10
    while pool.idle != 1:  # the warm thread is back at the queue
        assert time.monotonic() < deadline
        time.sleep(0)
    together = threading.Barrier(3, timeout=5)  # breaks if the jobs run one by one
    met: list[int] = []
    finished = threading.Semaphore(0)

    def job() -> None:
        try:
            met.append(together.wait())
        finally:
            finished.release()

    for _ in range(3):
        pool.submit(job)
    for _ in range(3):
        assert finished.acquire(timeout=30)
    assert errors == [] and sorted(met) == [0, 1, 2]
    pool.close()


def test_a_failing_job_is_reported_and_the_thread_goes_on() -> None:
    errors: list[BaseException] = []
    pool = WorkerPool(1, "t", errors.append)
    done = threading.Event()

    def boom() -> None:
        raise KeyboardInterrupt("a BaseException from a job")

    pool.submit(boom)
    pool.submit(done.set)
    assert done.wait(10)
    assert [type(e) for e in errors] == [KeyboardInterrupt]
    pool.close()


def test_close_drops_queued_jobs() -> None:
    pool = WorkerPool(1, "drop", lambda err: None)
    gate, ran = threading.Event(), threading.Event()
    pool.submit(gate.wait, 10)
    pool.submit(ran.set)
    (worker,) = [t for t in threading.enumerate() if t.name == "drop-1"]
    pool.close()
    gate.set()
    worker.join(10)  # the thread ends after its current job...
    assert not worker.is_alive()
    assert not ran.is_set()  # ...without running what was queued


def test_an_async_step_handed_over_as_the_runner_closes_is_closed_not_leaked() -> None:
    """A close can stop the async-step loop before it begins a step submitted
    just before: that step's coroutine is closed (its step runs again on
    recovery), not left for the garbage collector to warn about."""
    import gc
    import warnings

    import aura
    from aura.core._attempts import StepJob
    from aura.core._definitions import step_definition
    from aura.engine._steps import StepRunner

    @aura.step(name="test:never_begun")
    async def never_begun() -> int:
        raise AssertionError("the loop was stopped: this must not run")

    delivered: list[object] = []
    runner = StepRunner(
        lambda _mission, done: delivered.append(done),
        max_workers=1,
        call_later=lambda _delay, _fn: None,
        on_error=delivered.append,
    )
    # Stop the loop from inside, so the submission below is queued behind the stop.
    stopped = threading.Event()
    runner._loop.call_soon_threadsafe(lambda: (runner._loop.stop(), stopped.set()))
    assert stopped.wait(10)
    runner._loop_thread.join(10)
    job = StepJob("m", 1, "fp", step_definition(never_begun), [], attempt=1, run=1)
    runner.submit(job)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runner.close()
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]
    assert delivered == []
    assert all(c.cr_frame is None for c in runner._unstarted.values())  # closed
