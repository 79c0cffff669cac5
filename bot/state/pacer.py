"""The ZIM rate limit: evenly spaced send slots, in one process (`SmoothPacer`) or for all replicas (`RedisPacer`).

`RedisPacer` runs the same algorithm as `SmoothPacer` (ZIM counts arrivals in any sliding one-second window,
so slots are spaced 1 / (qps * headroom) apart and never bunched), with the "next free slot" kept in one
Redis key and reserved by a Lua script. Redis's `TIME` is the only clock, so replicas whose clocks
disagree still agree on the schedule. The caller sleeps the returned delay locally; reservation is first
come, first served across every replica, which also shares the rate fairly between concurrent fetches.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from bot.state.health import Fallback
from bot.zim.pacing import DEFAULT_HEADROOM, LATE_FRACTION, Pacer

# The key holds the next free slot in microseconds of Redis time. It expires one second after that slot
# has passed, so an idle limiter leaves nothing behind (and an old slot could not delay anyone anyway).
# Microseconds since the epoch (~1.7e15) are exact in Lua's doubles; "%.0f" writes them without the
# exponent that Lua's default number formatting would use (which would round to 14 digits).
_PRELUDE = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local next_slot = tonumber(redis.call('GET', KEYS[1])) or 0
"""

_RESERVE = (
    _PRELUDE
    + """
local slot = math.max(now, next_slot)
local after = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX', string.format('%.0f', (after - now) / 1000 + 1000))
return {slot, slot - now}
"""
)

_HOLD = (
    _PRELUDE
    + """
local hold = tonumber(ARGV[1])
if now + hold > next_slot then
  redis.call('SET', KEYS[1], string.format('%.0f', now + hold), 'PX', string.format('%.0f', hold / 1000 + 1000))
end
return 0
"""
)


class RedisPacer:
    """`Pacer` whose slots are shared by every replica using the same Redis key.

    Redis errors propagate; `build_shared_state` wraps this pacer so they fall back to a per-replica
    `SmoothPacer` at the same rate.
    """

    def __init__(self, redis: Redis, *, qps: float, headroom: float = DEFAULT_HEADROOM, key: str) -> None:
        if not (qps > 0 and math.isfinite(qps)) or not 0 < headroom <= 1:
            raise ValueError("qps must be positive and headroom in (0, 1]")
        self._interval = 1.0 / (qps * headroom)
        self._interval_us = max(1, round(self._interval * 1_000_000))
        self._key = key
        self._reserve = redis.register_script(_RESERVE)
        self._hold = redis.register_script(_HOLD)

    @property
    def interval(self) -> float:
        return self._interval

    @property
    def key(self) -> str:
        return self._key

    async def reserve(self) -> tuple[float, float]:
        """Reserve the next slot without waiting. Returns (the slot on Redis's clock, in seconds since the
        epoch; seconds from now until it). `wait_turn` is this plus the sleep."""
        slot_us, delay_us = await self._reserve(keys=[self._key], args=[self._interval_us])
        return int(slot_us) / 1_000_000, int(delay_us) / 1_000_000

    async def wait_turn(self) -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            _slot, delay = await self.reserve()
            due = loop.time() + max(delay, 0.0)
            if delay > 0:
                await asyncio.sleep(delay)
            # Woken late (an event-loop pause): sending now could put qps + 1 arrivals in one second at ZIM.
            if loop.time() - due <= self.interval * LATE_FRACTION:
                return loop.time() - started

    async def cool_down(self, seconds: float) -> None:
        if seconds > 0:
            await self._hold(keys=[self._key], args=[max(1, round(seconds * 1_000_000))])


class SmoothPacer:
    """Evenly spaced send slots for one event loop's worth of requests."""

    __slots__ = ("_clock", "_interval", "_next_slot", "_sleep")

    def __init__(
        self,
        qps: float,
        *,
        headroom: float = DEFAULT_HEADROOM,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if qps <= 0 or not 0 < headroom <= 1:
            raise ValueError("qps must be positive and headroom in (0, 1]")
        self._interval = 1.0 / (qps * headroom)
        self._clock = clock
        self._sleep = sleep
        self._next_slot = float("-inf")

    @property
    def interval(self) -> float:
        return self._interval

    async def wait_turn(self) -> float:
        started = self._clock()
        while True:
            now = self._clock()
            # Reserve the slot before sleeping, so concurrent callers queue up behind one another.
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._interval
            if slot > now:
                await self._sleep(slot - now)
            if self._clock() - slot <= self._interval * LATE_FRACTION:
                return max(0.0, slot - started)
            # Otherwise give the slot up and queue again.

    async def cool_down(self, seconds: float) -> None:
        self._next_slot = max(self._next_slot, self._clock() + seconds)


class FallbackPacer(Fallback[Pacer]):
    """During an outage each replica paces itself at the full rate, so together they may exceed it."""

    async def wait_turn(self) -> float:
        return await self._call(lambda pacer: pacer.wait_turn())

    async def cool_down(self, seconds: float) -> None:
        await self._call(lambda pacer: pacer.cool_down(seconds))
