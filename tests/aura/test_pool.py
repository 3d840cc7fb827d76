"""The step thread pool: bounded, lazy, survives failing jobs, drops work on close."""

from __future__ import annotations

import threading

from aura._pool import WorkerPool


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
