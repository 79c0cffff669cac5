"""The history of reads: the last *complete* roster of each room (per ZEGO app), the baseline `--changes` compares
a fresh read with. In process (`memory_history`), in Redis for every replica (`redis_history`), and the pair
switched by `RedisHealth` (`FallbackHistoryStore`).

It is the snapshot store's machinery under its own name: the same packed encoding, one key per room (so one
baseline per room, each read replacing the last), `<prefix>history:<app>:<room>` with a TTL of
ROOMUSERS_HISTORY_HOURS, and its own byte budget ROOMUSERS_HISTORY_MAX_MB (`<prefix>history-index`,
`<prefix>history-bytes`), oldest baselines dropped first. In process the budget is counted in users held, at
about 28 bytes a packed user. Only complete rosters are written here (SnapshotService does so at the end of a
read); an incomplete read never becomes a baseline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis

from bot.roster.model import Roster
from bot.state.connection import DEFAULT_PREFIX
from bot.state.health import Fallback
from bot.state.snapshots import DEFAULT_MAX_USERS, MemorySnapshotStore, RedisSnapshotStore

DEFAULT_HISTORY_HOURS = 24.0
DEFAULT_HISTORY_MAX_MB = 64
HISTORY_KIND = "history"
BYTES_PER_USER_IN_MEMORY = 28  # a packed user (README: "~28 bytes a user in memory")


class HistoryStore(Protocol):
    async def get(self, key: str) -> Roster | None: ...

    async def put(self, key: str, roster: Roster) -> bool: ...  # whether it was kept

    async def contains(self, key: str) -> bool: ...


def memory_history(
    *,
    hours: float = DEFAULT_HISTORY_HOURS,
    max_mb: int = DEFAULT_HISTORY_MAX_MB,
    timer: Callable[[], float] = time.monotonic,
) -> MemorySnapshotStore:
    """Baselines in this process: a TTL cache bounded by users held (the MB budget at ~28 bytes a user)."""
    max_users = max(1, max_mb * 1024 * 1024 // BYTES_PER_USER_IN_MEMORY)
    return MemorySnapshotStore(ttl=hours * 3600, max_users=max_users, timer=timer, kind=HISTORY_KIND)


def redis_history(
    redis: Redis,
    *,
    hours: float = DEFAULT_HISTORY_HOURS,
    max_mb: int = DEFAULT_HISTORY_MAX_MB,
    prefix: str = DEFAULT_PREFIX,
) -> RedisSnapshotStore:
    """Baselines in Redis, shared by every replica: `SET … PX` (ROOMUSERS_HISTORY_HOURS) inside their own budget."""
    return RedisSnapshotStore(
        redis,
        ttl=hours * 3600,
        prefix=prefix,
        max_users=DEFAULT_MAX_USERS,
        budget_bytes=max_mb * 1024 * 1024,
        kind=HISTORY_KIND,
        budget_setting="ROOMUSERS_HISTORY_MAX_MB",
    )


class FallbackHistoryStore(Fallback[HistoryStore]):
    """Baselines written during a Redis outage stay in this replica's memory; Redis keeps the older one."""

    async def get(self, key: str) -> Roster | None:
        return await self._call(lambda store: store.get(key))

    async def put(self, key: str, roster: Roster) -> bool:
        return await self._call(lambda store: store.put(key, roster))

    async def contains(self, key: str) -> bool:
        return await self._call(lambda store: store.contains(key))
