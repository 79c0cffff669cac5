"""ROOMUSERS_MAX_CONCURRENT_READS for every replica together: a semaphore in Redis with holder expiry
(`RedisReadSlots`), and the pair with this replica's own `ReadQueue` switched by `RedisHealth`
(`FallbackReadSlots`).

Three keys per ZEGO app, none with a TTL (so a `volatile-*` policy never evicts them; expiry is enforced by the
scripts on Redis's clock, as in bot/state/expiring.py):

    <prefix>reads:<app>          sorted set: the holders' tokens, scored by when their slot expires (ms)
    <prefix>reads:<app>:queue    sorted set: waiting tokens, scored by arrival (µs): first come, first served
    <prefix>reads:<app>:waiting  sorted set: the same waiters, scored by when they stop counting (ms)

A waiter asks again every `poll_interval` (which also keeps it alive) and learns its place in the line across
every replica; a holder renews its slot every third of `holder_ttl`. A replica that dies stops renewing and
asking, so its slots are freed within `holder_ttl` and its places in line within `waiter_ttl` (by default
four polls: a dead waiter at the head of the line must not keep free slots from the live ones behind it).
During an outage each replica falls back to its own queue (so up to N × the limit across N replicas) and
returns to the shared one with its next read.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis

from bot.observability.metrics import READS_QUEUED
from bot.roster.reads import ReadQueue, ReadSlots, Ticket
from bot.state.health import REDIS_UNAVAILABLE, Fallback, RedisHealth

log = logging.getLogger(__name__)

DEFAULT_HOLDER_TTL = 15.0
DEFAULT_POLL_INTERVAL = 0.25
WAITER_TTL_POLLS = 4  # a waiter whose poll is a little late (a busy loop) keeps its place

_PRELUDE = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(now_us / 1000)
"""

# KEYS: holders, queue, waiting. ARGV: token, limit, holder ttl ms, waiter ttl ms.
# Returns {position, running}: position 0 = the slot is held.
_ENTER = (
    _PRELUDE
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 64)) do
  redis.call('ZREM', KEYS[2], gone)
  redis.call('ZREM', KEYS[3], gone)
end
local token = ARGV[1]
local limit = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
if redis.call('ZSCORE', KEYS[1], token) then
  redis.call('ZADD', KEYS[1], now + ttl, token)
  return {0, redis.call('ZCARD', KEYS[1])}
end
if not redis.call('ZSCORE', KEYS[2], token) then
  redis.call('ZADD', KEYS[2], now_us, token)
end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), token)
local running = redis.call('ZCARD', KEYS[1])
local free = limit - running
local rank = redis.call('ZRANK', KEYS[2], token)
if rank < free then
  redis.call('ZREM', KEYS[2], token)
  redis.call('ZREM', KEYS[3], token)
  redis.call('ZADD', KEYS[1], now + ttl, token)
  return {0, running + 1}
end
return {rank - math.max(free, 0) + 1, running}
"""
)

# KEYS: holders. ARGV: token, ttl ms. 1 = renewed, 0 = the slot had expired (lost).
_RENEW = (
    _PRELUDE
    + """
local expiry = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')
if expiry <= now then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
"""
)

_LEAVE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
"""


class RedisReadSlots:
    """`limit` slots per ZEGO app for all replicas. Redis errors from `acquire` propagate (after leaving the
    line); `FallbackReadSlots` turns them into this replica's own queue."""

    def __init__(
        self,
        redis: Redis,
        *,
        limit: int,
        key: str,
        profile: str = "",
        holder_ttl: float = DEFAULT_HOLDER_TTL,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        waiter_ttl: float | None = None,
    ) -> None:
        """`waiter_ttl`: how long a place in line outlives its last poll (default WAITER_TTL_POLLS polls)."""
        waiter_ttl = WAITER_TTL_POLLS * poll_interval if waiter_ttl is None else waiter_ttl
        if limit < 1 or holder_ttl <= 0 or poll_interval <= 0 or waiter_ttl <= poll_interval:
            raise ValueError(
                "limit must be at least 1, holder_ttl and poll_interval positive, waiter_ttl over poll_interval"
            )
        self.limit = limit
        self.keys = [key, f"{key}:queue", f"{key}:waiting"]
        self._profile = profile
        self._ttl_ms = max(1, round(holder_ttl * 1000))
        self._waiter_ttl_ms = max(1, round(waiter_ttl * 1000))
        self._renew_every = holder_ttl / 3
        self._poll_interval = poll_interval
        self._enter = redis.register_script(_ENTER)
        self._renew = redis.register_script(_RENEW)
        self._leave = redis.register_script(_LEAVE)
        self._renewals: dict[str, asyncio.Task[None]] = {}
        self._running = 0

    @property
    def running(self) -> int:
        """Slots held on every replica, as of this replica's last look."""
        return self._running

    def position(self, ticket: Ticket) -> int | None:
        return ticket.position

    async def acquire(self, ticket: Ticket) -> str:
        """Wait in the shared line until a slot is this ticket's; its token (for `release`)."""
        token = secrets.token_hex(16)
        queued = False
        try:
            while True:
                args: list[str | int] = [token, self.limit, self._ttl_ms, self._waiter_ttl_ms]
                position, running = await self._enter(keys=self.keys, args=args)
                self._running = int(running)
                if not int(position):
                    break
                ticket.position = int(position)
                if not queued:
                    queued = True
                    ticket.queued.set()
                    READS_QUEUED.labels(self._profile).inc()
                await asyncio.sleep(self._poll_interval)
        except BaseException:
            # Cancelled or Redis failed: leave the line (or a slot granted just now) for the next in line.
            ticket.position = None
            await asyncio.shield(self._leave_quietly(token))
            raise
        finally:
            if queued:
                READS_QUEUED.labels(self._profile).dec()
        ticket.position = None
        self._renewals[token] = asyncio.create_task(self._keep(token), name=f"read slot {self.keys[0]}")
        return token

    def abandon(self, token: str) -> None:
        """Stop renewing without touching Redis (as a replica that dies does): the slot expires by itself."""
        renewal = self._renewals.pop(token, None)
        if renewal is not None:
            renewal.cancel()

    async def release(self, token: str) -> None:
        """Give the slot back. Never raises for Redis trouble: it expires by itself within holder_ttl."""
        renewal = self._renewals.pop(token, None)
        if renewal is not None:
            renewal.cancel()
            await asyncio.gather(renewal, return_exceptions=True)
        await self._leave_quietly(token)
        self._running = max(0, self._running - 1)

    async def _leave_quietly(self, token: str) -> None:
        try:
            await self._leave(keys=self.keys, args=[token])
        except REDIS_UNAVAILABLE as exc:
            log.debug("could not give back read slot %s (%s); it expires by itself", self.keys[0], exc)

    async def _keep(self, token: str) -> None:
        while True:
            await asyncio.sleep(self._renew_every)
            try:
                renewed = await self._renew(keys=self.keys[:1], args=[token, self._ttl_ms])
            except REDIS_UNAVAILABLE as exc:
                log.debug("could not renew read slot %s (%s)", self.keys[0], exc)
                continue
            if not renewed:
                # It ran out (Redis unreachable, a stalled loop, a restart): at worst one read more than the limit.
                log.info("read slot %s was lost while held; another read may start", self.keys[0])
                return

    @asynccontextmanager
    async def slot(self, ticket: Ticket) -> AsyncIterator[None]:
        token = await self.acquire(ticket)
        try:
            yield
        finally:
            await self.release(token)


class FallbackReadSlots(Fallback[ReadSlots]):
    """The shared slots while Redis answers; this replica's own queue for a read that starts during an outage
    (or whose wait in the shared line was cut short by one)."""

    def __init__(self, shared: RedisReadSlots, local: ReadQueue, health: RedisHealth) -> None:
        super().__init__(shared, local, health)
        self._redis_slots = shared

    @property
    def running(self) -> int:
        return max(self._redis_slots.running, self.local.running)

    def position(self, ticket: Ticket) -> int | None:
        shared = self._redis_slots.position(ticket)
        return shared if shared is not None else self.local.position(ticket)

    @asynccontextmanager
    async def slot(self, ticket: Ticket) -> AsyncIterator[None]:
        token = await self.health.run(lambda: self._shared_token(ticket), _no_token)
        if token is None:
            async with self.local.slot(ticket):
                yield
            return
        try:
            yield
        finally:
            await self._redis_slots.release(token)

    async def _shared_token(self, ticket: Ticket) -> str | None:
        return await self._redis_slots.acquire(ticket)


async def _no_token() -> str | None:
    return None
