"""A cancelled task that is talking to Redis stops: the cancel is never lost inside redis-py.

Python 3.11's `asyncio.wait_for` (which redis-py writes through when a socket timeout is set) returns instead
of raising when the write ends in the same loop turn as the cancel. A claim-renewal loop cancelled that way
went on renewing for ever and the watch poll awaiting it never ended.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from redis.asyncio import Redis

CANCELS = 300


async def test_every_cancel_of_a_task_in_a_redis_call_ends_the_task(clients: Callable[[], Redis]):
    redis = clients()
    renew = redis.register_script("return redis.call('INCR', KEYS[1])")

    async def renew_for_ever() -> None:  # the shape of a claim keeper: sleep, call Redis, repeat
        while True:
            await asyncio.sleep(0.001)
            await renew(keys=["renewals"], args=[])

    timing = random.Random(12)
    lost = 0
    for _ in range(CANCELS):
        task = asyncio.create_task(renew_for_ever())
        await asyncio.sleep(timing.uniform(0, 0.004))  # lands anywhere: in the sleep, the write, the read
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=2)
        if done:
            assert task.cancelled()
            continue
        lost += 1
        while not task.done():  # a cancel can be lost again: keep asking, so the test itself ends
            task.cancel()
            await asyncio.wait([task], timeout=0.1)
    assert lost == 0, f"{lost} of {CANCELS} cancels were swallowed"
    assert int(await redis.get("renewals") or 0) > 0  # the calls really ran between the cancels
    # A command cut short leaves no reply behind for the next one to read.
    for index in range(20):
        assert await redis.echo(f"n{index}") == f"n{index}".encode()
