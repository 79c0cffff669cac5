"""Doing a thing once: each Slack event answered once (dedupe), each signed request accepted once (replay guard).

In process (`Memory…`), in Redis for every replica (`Redis…`), and the pair switched by `RedisHealth`
(`Fallback…`).

In Redis both live in claim sets without a TTL (`bot/state/expiring.py`: `<prefix>events` and
`<prefix>replays`, each with its `-expiry` sorted set), not in `SET NX EX` keys, so memory pressure can't evict
them: an evicted replay key would let a captured request be replayed to another replica within the signature
window, and an evicted dedupe key would answer a Slack retry twice (a second reply, or a second export). Both
cost more than re-reading one evicted snapshot. Their size is bounded by rate × TTL instead (measured: ~190
bytes an event, ~260 a signature; 100 events a second for the hour's dedupe window is ~70 MB, 150 signed
requests a second for the 630 s replay window ~25 MB), expired entries being pruned as new ones arrive.
Older versions used `<prefix>event:<id>` and `<prefix>replay:<sha>` strings: during a rolling deploy a retry
reaching a replica of the other version may be answered once more.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Protocol

from cachetools import TTLCache
from redis.asyncio import Redis

from bot.state.connection import DEFAULT_PREFIX
from bot.state.expiring import RedisClaims
from bot.state.health import Fallback

EVENT_TTL_SECONDS = 3600.0  # Slack's last retry comes about 5 minutes after the first delivery


class EventDeduper(Protocol):
    async def first_sighting(self, event_id: str) -> bool:
        """True the first time `event_id` is seen within the TTL, False for every repeat."""

    async def seen(self, event_id: str) -> bool:
        """Whether `event_id` was sighted already (within the TTL), without sighting it."""


class MemoryEventDeduper:
    def __init__(
        self, *, ttl: float = EVENT_TTL_SECONDS, max_events: int = 100_000, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._seen: TTLCache[str, bool] = TTLCache(maxsize=max_events, ttl=ttl, timer=timer)

    async def first_sighting(self, event_id: str) -> bool:
        if event_id in self._seen:
            return False
        self._seen[event_id] = True
        return True

    async def seen(self, event_id: str) -> bool:
        return event_id in self._seen


class RedisEventDeduper:
    """`EventDeduper` over the claim set `<prefix>events` (never evicted; expiry enforced on Redis's clock).

    Each sighting claims the event ID with a random token: if the connection drops after Redis ran the claim,
    redis-py retries it, and finding our own token tells "my retried write" apart from "a real repeat"
    (otherwise that event would be dropped as a duplicate and never answered).
    """

    def __init__(self, redis: Redis, *, ttl: float = EVENT_TTL_SECONDS, prefix: str = DEFAULT_PREFIX) -> None:
        if ttl < 1:
            raise ValueError("ttl must be at least one second")
        self._ttl_ms = round(ttl * 1000)
        self.claims = RedisClaims(redis, name=f"{prefix}events")

    async def first_sighting(self, event_id: str) -> bool:
        return await self.claims.claim(event_id, secrets.token_hex(8), self._ttl_ms)

    async def seen(self, event_id: str) -> bool:
        return await self.claims.remaining_ms(event_id) is not None


class FallbackEventDeduper(Fallback[EventDeduper]):
    """Also remembers every event locally, so a Slack retry that reaches this replica is recognised even
    if Redis went away (or came back) between the delivery and the retry."""

    async def first_sighting(self, event_id: str) -> bool:
        new_here = await self.local.first_sighting(event_id)
        new_everywhere = await self.health.run(lambda: self.shared.first_sighting(event_id), lambda: _const(new_here))
        return new_here and new_everywhere

    async def seen(self, event_id: str) -> bool:
        here = await self.local.seen(event_id)
        return here or await self.health.run(lambda: self.shared.seen(event_id), lambda: _const(here))


async def _const(value: bool) -> bool:
    return value


SIGNATURE_WINDOW_SECONDS = 300  # slack_sdk's SignatureVerifier (and so Bolt) accepts |now - timestamp| <= 300 s
# A signature verifies while our clock is within 300 s of its timestamp, on either side: first seen at the
# earliest moment (timestamp - 300 s), it stays valid for 600 s. So remember it for the window, plus the
# largest clock skew the window tolerates (another 300 s), plus a margin for the moment of arrival.
REPLAY_TTL_SECONDS = 2 * SIGNATURE_WINDOW_SECONDS + 30
# Bounded memory: ~200 bytes an entry. 100,000 entries cover ~150 verified requests/s sustained over the TTL;
# beyond that the oldest signatures are forgotten first (they are also the first to stop verifying).
MAX_REMEMBERED_SIGNATURES = 100_000


class ReplayGuard(Protocol):
    async def first_use(self, signature: str, timestamp: str) -> bool:
        """True the first time this (verified) signature is seen within the TTL, False for every repeat."""


class MemoryReplayGuard:
    """In-process ReplayGuard: a TTLCache of signatures, bounded in size."""

    def __init__(
        self,
        *,
        ttl: float = REPLAY_TTL_SECONDS,
        max_signatures: int = MAX_REMEMBERED_SIGNATURES,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._seen: TTLCache[str, bool] = TTLCache(maxsize=max_signatures, ttl=ttl, timer=timer)

    async def first_use(self, signature: str, timestamp: str) -> bool:
        # The signature covers the timestamp, so it alone identifies the request. No await between the check
        # and the insert: two concurrent copies cannot both pass.
        if signature in self._seen:
            return False
        self._seen[signature] = True
        return True


class RedisReplayGuard:
    """`ReplayGuard` shared by every replica: the claim set `<prefix>replays`, one field per signature's sha256
    (the token as in RedisEventDeduper, so a retried write is not mistaken for a replay)."""

    def __init__(self, redis: Redis, *, ttl: float = REPLAY_TTL_SECONDS, prefix: str = DEFAULT_PREFIX) -> None:
        self._ttl_ms = round(ttl * 1000)
        self.claims = RedisClaims(redis, name=f"{prefix}replays")

    async def first_use(self, signature: str, timestamp: str) -> bool:
        digest = hashlib.sha256(signature.encode()).hexdigest()[:32]
        return await self.claims.claim(digest, secrets.token_hex(8), self._ttl_ms)


class FallbackReplayGuard(Fallback[ReplayGuard]):
    """Remembers every signature locally too: a copy is refused here even while Redis is away."""

    async def first_use(self, signature: str, timestamp: str) -> bool:
        new_here = await self.local.first_use(signature, timestamp)
        new_everywhere = await self.health.run(
            lambda: self.shared.first_use(signature, timestamp), lambda: _const(new_here)
        )
        return new_here and new_everywhere
