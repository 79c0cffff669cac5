"""One circuit breaker for every Redis-backed component: use Redis while it answers, else the local fallback.

The first failure trips the circuit and logs ONE warning for the whole outage (not one per component or per
call). While tripped, calls go straight to the fallback without touching the network, so an outage never
adds a socket timeout to each request. At most every `probe_interval` seconds one caller sends a PING; when
it answers, the circuit closes again with one info log and the next call uses Redis.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.observability.metrics import SHARED_STATE_FALLBACK

log = logging.getLogger(__name__)

T = TypeVar("T")

# What "Redis cannot serve us right now" looks like. RedisError covers connection errors, timeouts,
# BusyLoadingError, READONLY after a failover, OOM and cluster-down replies; OSError covers a socket error
# redis-py did not wrap. Anything else is a bug in our code and must surface, not be swallowed.
REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (RedisError, OSError)

DEFAULT_PROBE_INTERVAL = 3.0


class RedisHealth:
    """Shared up/down state for one Redis client. `run(op, fallback)` is the only way components call Redis."""

    def __init__(
        self,
        redis: Redis,
        *,
        probe_interval: float = DEFAULT_PROBE_INTERVAL,
        fallback_note: str = "shared state is per replica until it is back",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._probe_interval = probe_interval
        self._fallback_note = fallback_note
        self._clock = clock
        self._up = True
        self._next_probe = 0.0

    async def run(self, op: Callable[[], Awaitable[T]], fallback: Callable[[], Awaitable[T]]) -> T:
        """`op()` against Redis; `fallback()` instead while Redis is down or if `op` finds it down."""
        if not self._up and not await self._probe_due():
            return await fallback()
        try:
            return await op()
        except REDIS_UNAVAILABLE as exc:
            self.trip(exc)
        return await fallback()

    async def check(self) -> bool:
        """PING now (for health endpoints), updating the circuit either way."""
        try:
            await self._redis.ping()
        except REDIS_UNAVAILABLE as exc:
            self.trip(exc)
            return False
        self._recover()
        return True

    def trip(self, exc: BaseException) -> None:
        """Record a failure; the first one of an outage logs the warning."""
        self._next_probe = self._clock() + self._probe_interval
        if not self._up:
            return  # calls that were in flight when Redis went away: the outage is already reported
        self._up = False
        SHARED_STATE_FALLBACK.set(1)
        log.warning("Redis is unreachable (%s: %s); %s", type(exc).__name__, exc, self._fallback_note)

    def _recover(self) -> None:
        if not self._up:
            self._up = True
            SHARED_STATE_FALLBACK.set(0)
            log.info("Redis is reachable again; shared state is back in Redis")

    async def _probe_due(self) -> bool:
        now = self._clock()
        if now < self._next_probe:
            return False
        # Push the next probe out before awaiting, so concurrent callers take the fallback instead of all
        # probing at once (there is no await between this check and the assignment).
        self._next_probe = now + self._probe_interval
        return await self.check()


C = TypeVar("C")


class Fallback(Generic[C]):
    """A shared component paired with its in-process twin, switched by one `RedisHealth`.

    Subclasses only delegate; when to use which side (and the one warning per outage) lives in
    `RedisHealth.run`. They satisfy the same protocol as what they wrap, so the app cannot tell them apart.
    """

    def __init__(self, shared: C, local: C, health: RedisHealth) -> None:
        self.shared = shared
        self.local = local
        self.health = health

    async def _call(self, op: Callable[[C], Awaitable[T]]) -> T:
        return await self.health.run(lambda: op(self.shared), lambda: op(self.local))
