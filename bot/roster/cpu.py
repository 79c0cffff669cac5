"""CPU-heavy work on big rosters off the event loop: filtering in a thread (`off_loop`), CSV encoding of big
rooms in a worker process (`off_process`).

The loop must keep acking other requests within Slack's 3 s (and in practice within tens of milliseconds)
while a 100,000-user room is filtered or exported. Rosters are immutable (packed), so worker threads only
read them. A thread still competes with the loop for the GIL: every time the loop wants it back it may wait
Python's switch interval (5 ms), and an ack takes many such hand-overs, so three 100,000-user CSVs (about
0.4 s of CPU each) encoded in a thread pushed the ack p99 to 72 ms with the app in its own process
(benchmarks/export_ack.py, docs/performance.md). A process has its own GIL: the roster goes there pickled
(a packed roster is four blobs, about a millisecond for 100,000 users) and the CSV bytes come back the same
way. One worker, started on first use with `spawn` (never `fork` from a process with threads and a running
loop) and stopped by the interpreter's exit handler; if it dies, the next call starts a fresh one and this
one runs in the thread instead. The thread pool has one worker too (with two, acks waited about four times
longer in `benchmarks/export_ack.py`). Small rosters are handled inline: a hop would cost more than the work.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

log = logging.getLogger(__name__)

CPU_INLINE_USERS = 5_000
CPU_PROCESS_USERS = 20_000  # below this, a thread costs less than shipping the roster to a process and back
_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="roomusers-cpu")
_processes: ProcessPoolExecutor | None = None

P = ParamSpec("P")
T = TypeVar("T")


async def off_loop(size: int, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)`, in the pool when `size` (users involved) is big, inline otherwise."""
    if size < CPU_INLINE_USERS:
        return fn(*args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_POOL, functools.partial(fn, *args, **kwargs))


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group; the app shuts the worker down itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _process_pool() -> ProcessPoolExecutor:
    global _processes  # one lazily started worker for the whole process
    if _processes is None:
        context = multiprocessing.get_context("spawn")
        _processes = ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_ignore_interrupts)
    return _processes


async def off_process(size: int, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)` in the worker process when `size` is big (`fn` and its arguments must pickle: a
    module-level function, packed rosters); `off_loop` otherwise, or when the worker has died."""
    global _processes
    if size < CPU_PROCESS_USERS:
        return await off_loop(size, fn, *args, **kwargs)
    pool = _process_pool()
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(fn, *args, **kwargs))
    except BrokenProcessPool:
        log.warning("the CPU worker process died; this job runs in a thread and the next starts a new worker")
        if _processes is pool:
            _processes = None
        return await off_loop(size, fn, *args, **kwargs)
