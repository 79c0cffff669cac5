"""CPU-heavy work on big rosters off the event loop: filtering in a thread (`off_loop`), CSV encoding of big
rooms in a worker process (`off_process`).

The loop must keep acking other requests within Slack's 3 s (and in practice within tens of milliseconds)
while a 100,000-user room is filtered or exported. Rosters are immutable (packed), so worker threads only
read them. A thread still competes with the loop for the GIL: every time the loop wants it back it may wait
Python's switch interval (5 ms), and an ack takes many such hand-overs, so three 100,000-user CSVs (about
0.4 s of CPU each) encoded in a thread pushed the ack p99 to 72 ms with the app in its own process
(benchmarks/export_ack.py, docs/performance.md). A process has its own GIL: the roster goes there pickled
(a packed roster is four blobs, about a millisecond for 100,000 users) and the CSV bytes come back the same
way. One worker, started with `spawn` (never `fork` from a process with threads and a running loop) on first
use, or early by `warm_cpu_worker` (serve does, so the first big export does not pay its start-up), and
stopped by `stop_cpu_worker` when the app shuts down (the interpreter's exit handler would wait for a hung job
forever), and gone within PARENT_CHECK_SECONDS of the app's death if the app is killed outright. It ignores
SIGINT and SIGTERM, which a stop may send to the whole process group: the app stops it.
If it dies, or has been stopped, the job runs in the thread instead; after a death the next call starts a
fresh worker. The thread pool has one worker too (with two, acks waited about four times
longer in `benchmarks/export_ack.py`). Small rosters are handled inline: a hop would cost more than the work.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

log = logging.getLogger(__name__)

CPU_INLINE_USERS = 5_000
CPU_PROCESS_USERS = 20_000  # below this, a thread costs less than shipping the roster to a process and back
PARENT_CHECK_SECONDS = 0.5  # how soon a worker whose app died notices it and exits
STOP_WAIT_SECONDS = 3.0  # for a job still running in the worker at shutdown, before the worker is killed
_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="roomusers-cpu")
_processes: ProcessPoolExecutor | None = None

P = ParamSpec("P")
T = TypeVar("T")


async def off_loop(size: int, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)`, in the pool when `size` (users involved) is big, inline otherwise."""
    if size < CPU_INLINE_USERS:
        return fn(*args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_POOL, functools.partial(fn, *args, **kwargs))


def _exit_with_parent(parent: int) -> None:
    # The worker holds both ends of its job queue, so it never sees the app die; once the app is gone (killed
    # with SIGKILL, say) it is re-parented, and then it leaves too instead of holding the app's stderr open.
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


def _worker_setup(parent: int) -> None:
    # Ctrl-C, and a SIGTERM sent to the process group (systemd's control-group kill, `tini -g`), reach the
    # worker too; the app stops it itself (stop_cpu_worker), after its answers in flight.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), name="roomusers-parent-watch", daemon=True).start()


def _process_pool() -> ProcessPoolExecutor:
    global _processes  # one lazily started worker for the whole process
    if _processes is None:
        context = multiprocessing.get_context("spawn")
        _processes = ProcessPoolExecutor(
            max_workers=1, mp_context=context, initializer=_worker_setup, initargs=(os.getpid(),)
        )
    return _processes


def warm_cpu_worker(fn: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> None:
    """Start the worker now, without waiting for it, and have it run `fn` (say, a no-op of the job it will do,
    so it imports that job's modules before the first real one)."""
    _process_pool().submit(fn, *args, **kwargs)


async def stop_cpu_worker(wait: float = STOP_WAIT_SECONDS) -> None:
    """Stop the worker process: jobs not yet started are cancelled (their callers run them in the thread), a
    job still running gets `wait` seconds, then the worker is killed. A later job starts a new worker."""
    global _processes
    pool, _processes = _processes, None
    if pool is None:
        return
    workers = list((pool._processes or {}).values())  # no public handle before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)

    def join() -> None:
        deadline = time.monotonic() + wait
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        for worker in workers:
            if worker.is_alive():
                log.warning("the CPU worker process did not finish its job within %.0f s; killing it", wait)
                worker.kill()  # SIGKILL: it ignores SIGTERM
                worker.join(wait)

    await asyncio.to_thread(join)


async def off_process(size: int, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)` in the worker process when `size` is big (`fn` and its arguments must pickle: a
    module-level function, packed rosters); `off_loop` otherwise, or when the worker died or was stopped under it."""
    global _processes
    if size < CPU_PROCESS_USERS:
        return await off_loop(size, fn, *args, **kwargs)
    pool = _process_pool()
    job: Future[T] | None = None
    try:
        job = pool.submit(fn, *args, **kwargs)
        return await asyncio.wrap_future(job)
    except BrokenProcessPool:
        log.warning("the CPU worker process died; this job runs in a thread and the next starts a new worker")
        if _processes is pool:
            _processes = None
    except RuntimeError:  # "cannot schedule new futures after shutdown": only submit raises it here
        if job is not None:
            raise  # fn's own RuntimeError, raised in the worker
        log.info("the CPU worker is stopped; this job runs in a thread")
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if job is None or not job.cancelled() or (task is not None and task.cancelling()):
            raise  # this call was cancelled, not the job by stop_cpu_worker
        log.info("the CPU worker stopped before this job started; it runs in a thread")
    return await off_loop(size, fn, *args, **kwargs)
