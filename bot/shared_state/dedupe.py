"""Slack event dedupe shared by every replica: Slack may retry a delivery to a different replica."""

from __future__ import annotations

import secrets

from redis.asyncio import Redis

from bot.dedupe import EVENT_TTL_SECONDS
from bot.shared_state.connection import DEFAULT_PREFIX


class RedisEventDeduper:
    """`EventDeduper` over `SET <prefix>event:<id> <token> NX EX ttl`.

    The value is a random token rather than a constant: if the connection drops after Redis ran the SET,
    redis-py retries it, and finding our own token tells "my retried write" apart from "a real repeat"
    (otherwise that event would be dropped as a duplicate and never answered).
    """

    def __init__(self, redis: Redis, *, ttl: float = EVENT_TTL_SECONDS, prefix: str = DEFAULT_PREFIX) -> None:
        if ttl < 1:
            raise ValueError("ttl must be at least one second")
        self._redis = redis
        self._ttl = int(ttl)
        self._prefix = f"{prefix}event:"

    async def first_sighting(self, event_id: str) -> bool:
        key = self._prefix + event_id
        token = secrets.token_hex(8)
        if await self._redis.set(key, token, nx=True, ex=self._ttl):
            return True
        return bool(await self._redis.get(key) == token.encode())
