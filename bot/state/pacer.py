"""The ZIM rate limit: at most ZEGO_QPS arrivals in any one-second window, with headroom, in one process
(`SmoothPacer`) or for all replicas (`RedisPacer`); the algorithm is described in bot/zim/pacing.py.

`RedisPacer` runs the same algorithm as `SmoothPacer`, with the "next free slot" (1 / qps after the last one)
kept in one Redis key, the last N slots in a list `<key>:window` (newest first, N entries, no TTL), and both
reserved by a Lua script. Redis's `TIME` is the only clock, so replicas whose clocks
disagree still agree on the schedule. The caller sleeps the returned delay locally; reservation is first
come, first served across every replica, which also shares the rate fairly between concurrent fetches.

Background (watch) callers use the same schedule at a lower priority (see bot/zim/pacing.py): a slot is
theirs only if the schedule is free *now* and their own, slower schedule allows it. In Redis that is a second
script over the interactive key (unchanged in name and format, so replicas of the old version keep sharing
it during a rolling deploy) and a new `<key>:background` key holding the next background slot.

During a rolling deploy from the evenly spaced version, the old replicas' slots are not in `<key>:window`:
until the last old replica is gone, arrivals are only kept 1 / qps apart (at most ZEGO_QPS in any second,
without the headroom), and the old replicas keep spacing their own slots a whole interval apart.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from bot.state.health import Fallback
from bot.zim.pacing import DEFAULT_BACKGROUND_SHARE, DEFAULT_HEADROOM, LATE_FRACTION, Pacer

# The key holds the next free slot in microseconds of Redis time. It has no TTL, so a `volatile-*` maxmemory
# policy can never evict the schedule (a past slot delays nobody, and there are three keys per ZEGO app).
# A plain SET also clears the TTL an older replica's `SET … PX` gave it during a rolling deploy.
# Microseconds since the epoch (~1.7e15) are exact in Lua's doubles; "%.0f" writes them without the
# exponent that Lua's default number formatting would use (which would round to 14 digits).
_PRELUDE = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local next_slot = tonumber(redis.call('GET', KEYS[1])) or 0
"""

# KEYS[2] (`<key>:window`) lists the last N slots handed out, newest first: slot k is at least ARGV[3] (the
# window) after slot k - N (ARGV[2]) and at least ARGV[1] (1 / qps) after slot k - 1, which KEYS[1] holds as
# the next free slot, as before.
_WINDOW = """
local n = tonumber(ARGV[2])
local oldest = nil
if redis.call('LLEN', KEYS[2]) >= n then
  oldest = tonumber(redis.call('LINDEX', KEYS[2], n - 1))
end
local function taken(slot)
  redis.call('LPUSH', KEYS[2], string.format('%.0f', slot))
  redis.call('LTRIM', KEYS[2], 0, n - 1)
  redis.call('SET', KEYS[1], string.format('%.0f', slot + tonumber(ARGV[1])))
end
"""

_RESERVE = (
    _PRELUDE
    + _WINDOW
    + """
local slot = math.max(now, next_slot)
if oldest then slot = math.max(slot, oldest + tonumber(ARGV[3])) end
taken(slot)
return {slot, slot - now}
"""
)

_HOLD = (
    _PRELUDE
    + """
local hold = tonumber(ARGV[1])
if now + hold > next_slot then
  redis.call('SET', KEYS[1], string.format('%.0f', now + hold))
end
return 0
"""
)

# Background: a slot only when both the shared schedule (KEYS[1]) and the background one (KEYS[2]) are free
# now; it is taken at `now` on both, so it is spaced from every interactive slot like any other slot.
# Returns {1, slot} when taken, {0, microseconds until it may be free} otherwise (nothing is written then).
_BACKGROUND = (
    _PRELUDE
    + _WINDOW
    + """
local next_background = tonumber(redis.call('GET', KEYS[3])) or 0
local free_at = math.max(next_slot, next_background)
if oldest then free_at = math.max(free_at, oldest + tonumber(ARGV[3])) end
if free_at > now then
  return {0, free_at - now}
end
taken(now)
redis.call('SET', KEYS[3], string.format('%.0f', now + tonumber(ARGV[4])))
return {1, now}
"""
)


def _check_share(background_share: float) -> None:
    if not 0 < background_share <= 1:
        raise ValueError("background_share must be in (0, 1]")


class _Rates:
    """The spacings both pacers keep, from ZEGO_QPS, the headroom and the background share."""

    __slots__ = ("_background_interval", "_interval", "_min_gap", "_slots", "_window")

    def __init__(self, qps: float, headroom: float, background_share: float) -> None:
        if not (qps > 0 and math.isfinite(qps)) or not 0 < headroom <= 1:
            raise ValueError("qps must be positive and headroom in (0, 1]")
        _check_share(background_share)
        self._interval = 1.0 / (qps * headroom)
        self._slots = window_slots(qps)
        # N + 1 consecutive slots span at least 1 / headroom s: N × interval for a whole ZEGO_QPS, and never
        # under a second for a fractional one (N = floor(qps) requests fit in a second, not qps).
        self._window = max(self._slots * self._interval, 1.0 / headroom)
        self._min_gap = min(1.0 / qps, self._interval)
        self._background_interval = self._interval / background_share

    @property
    def interval(self) -> float:
        """The sustained spacing: N slots take N intervals (one `window`)."""
        return self._interval

    @property
    def min_gap(self) -> float:
        """The least time between two slots: 1 / qps."""
        return self._min_gap

    @property
    def window(self) -> float:
        """How far slot k is at least from slot k - N (N = `window_slots(qps)`)."""
        return self._window

    @property
    def background_interval(self) -> float:
        return self._background_interval


class RedisPacer(_Rates):
    """`Pacer` whose slots are shared by every replica using the same Redis key.

    Redis errors propagate; `build_shared_state` wraps this pacer so they fall back to a per-replica
    `SmoothPacer` at the same rate.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        qps: float,
        headroom: float = DEFAULT_HEADROOM,
        key: str,
        background_share: float = DEFAULT_BACKGROUND_SHARE,
    ) -> None:
        super().__init__(qps, headroom, background_share)
        self._window_us = max(1, round(self._window * 1_000_000))
        self._min_gap_us = max(1, round(self._min_gap * 1_000_000))
        self._background_interval_us = max(1, round(self._background_interval * 1_000_000))
        self._key = key
        self._background_key = f"{key}:background"
        self._window_key = f"{key}:window"
        self._reserve = redis.register_script(_RESERVE)
        self._hold = redis.register_script(_HOLD)
        self._background = redis.register_script(_BACKGROUND)
        # One background caller of this replica at a time asks Redis (first come, first served); the rest queue.
        self._background_lock = asyncio.Lock()

    @property
    def key(self) -> str:
        return self._key

    @property
    def window_key(self) -> str:
        return self._window_key

    @property
    def background_key(self) -> str:
        return self._background_key

    async def reserve(self) -> tuple[float, float]:
        """Reserve the next slot without waiting. Returns (the slot on Redis's clock, in seconds since the
        epoch; seconds from now until it). `wait_turn` is this plus the sleep."""
        slot_us, delay_us = await self._reserve(
            keys=[self._key, self._window_key], args=[self._min_gap_us, self._slots, self._window_us]
        )
        return int(slot_us) / 1_000_000, int(delay_us) / 1_000_000

    async def wait_turn(self) -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            asked = loop.time()
            _slot, delay = await self.reserve()
            if delay > 0:
                await asyncio.sleep(delay)
            # Late against the earliest the slot can have been (asked + delay), so an event-loop pause during the
            # Redis call counts as much as one during the sleep: sending late could put qps + 1 arrivals in one
            # second at ZIM. The slot given up stays counted (a slot's worth of rate, never a burst).
            if loop.time() - (asked + max(delay, 0.0)) <= self.min_gap * LATE_FRACTION:
                return loop.time() - started

    async def reserve_background(self) -> tuple[float | None, float]:
        """Try to take a background slot now, without waiting. Returns (the slot on Redis's clock, 0.0) when
        taken, else (None, seconds until one may be free)."""
        taken, value_us = await self._background(
            keys=[self._key, self._window_key, self._background_key],
            args=[self._min_gap_us, self._slots, self._window_us, self._background_interval_us],
        )
        if int(taken):
            return int(value_us) / 1_000_000, 0.0
        return None, int(value_us) / 1_000_000

    async def take_background_slot(self) -> float:
        """Wait until a background slot is taken; return it on Redis's clock. `wait_background_turn` is this."""
        loop = asyncio.get_running_loop()
        async with self._background_lock:
            while True:
                asked = loop.time()
                slot, wait = await self.reserve_background()
                if slot is None:
                    await asyncio.sleep(wait)
                elif loop.time() - asked <= self.min_gap * LATE_FRACTION:
                    return slot
                # else: taken "now", but the loop stalled before the answer was read; take a fresh one.

    async def wait_background_turn(self) -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self.take_background_slot()
        return loop.time() - started

    async def cool_down(self, seconds: float) -> None:
        if seconds > 0:
            await self._hold(keys=[self._key], args=[max(1, round(seconds * 1_000_000))])


class SmoothPacer(_Rates):
    """Send slots for one event loop's worth of requests, at most ZEGO_QPS in any one-second window.

    Slot k is at least `window` after slot k - N (N = the whole requests ZIM allows a second, `window` =
    N × interval = N / (qps × headroom), 1.042 s at 20 QPS and the default headroom) and at least `min_gap`
    (1 / qps) after slot k - 1. In steady use that is the even schedule's rate; what it adds is that time a
    sender left idle (a read's first round trip) can be caught up within the window, never above ZEGO_QPS.
    """

    __slots__ = ("_background_lock", "_clock", "_held_until", "_next_background", "_recent", "_sleep")

    def __init__(
        self,
        qps: float,
        *,
        headroom: float = DEFAULT_HEADROOM,
        background_share: float = DEFAULT_BACKGROUND_SHARE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(qps, headroom, background_share)
        self._clock = clock
        self._sleep = sleep
        self._recent: deque[float] = deque(maxlen=self._slots)  # the last N slots handed out, oldest first
        self._held_until = float("-inf")
        self._next_background = float("-inf")
        # One background caller at a time watches the schedule (first come, first served); the rest queue.
        self._background_lock = asyncio.Lock()

    def _next_free(self) -> float:
        recent = self._recent
        free = self._held_until
        if recent:
            free = max(free, recent[-1] + self._min_gap)
            if len(recent) == recent.maxlen:
                free = max(free, recent[0] + self._window)
        return free

    async def wait_turn(self) -> float:
        started = self._clock()
        while True:
            now = self._clock()
            # Reserve the slot before sleeping, so concurrent callers queue up behind one another.
            slot = max(now, self._next_free())
            self._recent.append(slot)
            if slot > now:
                await self._sleep(slot - now)
            if self._clock() - slot <= self._min_gap * LATE_FRACTION:
                return max(0.0, slot - started)
            # Otherwise give the slot up (it stays counted in the window) and queue again.

    async def wait_background_turn(self) -> float:
        started = self._clock()
        async with self._background_lock:
            while True:
                now = self._clock()
                # A later free slot means an interactive caller holds a slot (or a cool-down runs): wait.
                free_at = max(self._next_free(), self._next_background)
                if free_at <= now:
                    # Taken at `now` and sent at once: no sleep between the slot and the send, so never late.
                    self._recent.append(now)
                    self._next_background = now + self._background_interval
                    return now - started
                await self._sleep(free_at - now)

    async def cool_down(self, seconds: float) -> None:
        self._held_until = max(self._held_until, self._clock() + seconds)


def window_slots(qps: float) -> int:
    """N: the whole number of requests ZIM admits in one second at `qps` (at least 1)."""
    return max(1, math.floor(qps + 1e-9))


class FallbackPacer(Fallback[Pacer]):
    """During an outage each replica paces itself at the full rate, so together they may exceed it."""

    async def wait_turn(self) -> float:
        return await self._call(lambda pacer: pacer.wait_turn())

    async def wait_background_turn(self) -> float:
        return await self._call(lambda pacer: pacer.wait_background_turn())

    async def cool_down(self, seconds: float) -> None:
        await self._call(lambda pacer: pacer.cool_down(seconds))
