"""Per-person request rate (ROOMUSERS_USER_RATE): in process (`MemoryUserRate`), for every replica
(`RedisUserRate`), and the pair switched by `RedisHealth` (`FallbackUserRate`).

Each person may send `rate` commands and clicks a minute, in bursts of up to `rate`; the allowance refills
evenly. In process it is a token bucket per Slack user. In Redis it is the same rule as GCRA (the generic cell
rate algorithm), one Lua script on Redis's clock over `<prefix>rate:<team>:<user>`, which holds the person's
"theoretical arrival time" in microseconds: so with N replicas behind a load balancer a person still gets
`rate` a minute, not N × rate. During an outage each replica falls back to its own bucket (at most N × rate).

The rate key has a TTL (until the allowance is full again, at most a minute), so Redis may evict it under
memory pressure. That is deliberate: an evicted key only forgives one person's recent burst (the limit errs on
the lenient side, as during an outage), while a key per Slack user without a TTL would need pruning.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from cachetools import TTLCache
from redis.asyncio import Redis

from bot.state.connection import DEFAULT_PREFIX
from bot.state.health import Fallback

MAX_TRACKED_USERS = 100_000


class UserRate(Protocol):
    @property
    def rate(self) -> int:
        """Requests a minute per person (0: no limit)."""

    async def take(self, key: str) -> float:
        """0.0 when one more request of `key` is allowed now (and counts it); else seconds until it would be."""


class MemoryUserRate:
    def __init__(self, rate_per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate_per_minute
        self._clock = clock
        self._refill = rate_per_minute / 60.0  # tokens a second
        # A bucket untouched for two minutes is full again: forgetting it changes nothing.
        self._buckets: TTLCache[str, tuple[float, float]] = TTLCache(maxsize=MAX_TRACKED_USERS, ttl=120, timer=clock)

    async def take(self, key: str) -> float:
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        tokens, last = self._buckets.get(key, (float(self.rate), now))
        tokens = min(float(self.rate), tokens + (now - last) * self._refill)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self._refill


# KEYS: the person's key. ARGV: the emission interval (µs between requests at the steady rate), the burst
# (requests). A request is allowed while the theoretical arrival time is at most burst × interval ahead of now.
# Returns 0 when allowed (and counted), else microseconds until the next request would be.
_TAKE = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or 0, now)
local allowed_at = tat + interval - burst * interval
if now < allowed_at then
  return allowed_at - now
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return 0
"""


class RedisUserRate:
    """`UserRate` shared by every replica (GCRA on Redis's clock). Redis errors propagate; `SharedState.user_rate`
    wraps it so they fall back to `MemoryUserRate`."""

    def __init__(self, redis: Redis, rate_per_minute: int, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.rate = rate_per_minute
        self._interval_us = round(60_000_000 / rate_per_minute) if rate_per_minute > 0 else 0
        self._prefix = f"{prefix}rate:"
        self._take = redis.register_script(_TAKE)

    def redis_key(self, key: str) -> str:
        return self._prefix + key

    async def take(self, key: str) -> float:
        if self.rate <= 0:
            return 0.0
        # Not idempotent: redis-py's one re-send after a dropped connection may count a request twice.
        wait_us = await self._take(keys=[self.redis_key(key)], args=[self._interval_us, self.rate])
        return int(wait_us) / 1_000_000


class FallbackUserRate(Fallback[UserRate]):
    """During an outage each replica counts for itself, so a person may get up to N × rate across N replicas."""

    @property
    def rate(self) -> int:
        return self.local.rate

    async def take(self, key: str) -> float:
        return await self._call(lambda limit: limit.take(key))
