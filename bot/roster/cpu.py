"""CPU-heavy work on big rosters (filtering, CSV encoding) runs in a small thread pool, off the event loop.

The loop must keep acking other requests within Slack's 3 s (and in practice within tens of milliseconds)
while a 100,000-user room is filtered or exported. Rosters are immutable (packed), so worker threads only
read them. One worker competes with the loop for the GIL (with two, acks waited about four times longer in
`benchmarks/export_ack.py`); Python hands the GIL over every 5 ms (`sys.getswitchinterval()`), which bounds
how long the loop waits. Small rosters are handled inline: a thread
hop would cost more than the work.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

CPU_INLINE_USERS = 5_000
_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="roomusers-cpu")

P = ParamSpec("P")
T = TypeVar("T")


async def off_loop(size: int, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)`, in the pool when `size` (users involved) is big, inline otherwise."""
    if size < CPU_INLINE_USERS:
        return fn(*args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_POOL, functools.partial(fn, *args, **kwargs))
