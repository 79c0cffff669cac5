"""Per-person request rate (ROOMUSERS_USER_RATE): a token bucket per Slack user, in process.

Each person may send `rate` commands and clicks a minute, in bursts of up to `rate`; the bucket refills evenly.
Per replica: with N replicas behind a load balancer a person gets at most N × rate (the ZIM budget itself is
global through the shared pacer, so this limit is about fairness, not about ZIM's quota).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from cachetools import TTLCache

MAX_TRACKED_USERS = 100_000


class UserRate(Protocol):
    rate: int

    def take(self, key: str) -> float:
        """0.0 when one more request of `key` is allowed now (and counts it); else seconds until it would be."""


class MemoryUserRate:
    def __init__(self, rate_per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate_per_minute
        self._clock = clock
        self._refill = rate_per_minute / 60.0  # tokens a second
        # A bucket untouched for two minutes is full again: forgetting it changes nothing.
        self._buckets: TTLCache[str, tuple[float, float]] = TTLCache(maxsize=MAX_TRACKED_USERS, ttl=120, timer=clock)

    def take(self, key: str) -> float:
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
