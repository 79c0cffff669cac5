"""Composition: the four pieces of state the app shares, in memory (one replica) or in Redis (several)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from redis.asyncio import Redis

from bot.observability.metrics import SHARED_STATE_FALLBACK
from bot.roster.reads import ReadQueue, ReadSlots
from bot.state.connection import (
    DEFAULT_PREFIX,
    REDIS_URL_SETTING,
    SharedStateUnavailable,
    connect,
    redact_url,
    scrub,
)
from bot.state.health import DEFAULT_PROBE_INTERVAL, REDIS_UNAVAILABLE, RedisHealth
from bot.state.history import (
    DEFAULT_HISTORY_HOURS,
    DEFAULT_HISTORY_MAX_MB,
    FallbackHistoryStore,
    HistoryStore,
    memory_history,
    redis_history,
)
from bot.state.leases import DEFAULT_LEASE_TTL, FallbackLeases, FetchLeases, LocalLeases, RedisLeases
from bot.state.once import (
    EVENT_TTL_SECONDS,
    EventDeduper,
    FallbackEventDeduper,
    FallbackReplayGuard,
    MemoryEventDeduper,
    MemoryReplayGuard,
    RedisEventDeduper,
    RedisReplayGuard,
    ReplayGuard,
)
from bot.state.pacer import FallbackPacer, RedisPacer, SmoothPacer
from bot.state.progress import ProgressBoard, RedisProgressBoard
from bot.state.ratelimit import FallbackUserRate, MemoryUserRate, RedisUserRate, UserRate
from bot.state.readslots import FallbackReadSlots, RedisReadSlots
from bot.state.snapshots import (
    DEFAULT_BUDGET_BYTES,
    DEFAULT_TTL_SECONDS,
    FallbackSnapshotStore,
    MemorySnapshotStore,
    RedisSnapshotStore,
    SnapshotStore,
)
from bot.watch.store import MemoryWatchStore, RedisWatchStore, WatchStore
from bot.zim.pacing import DEFAULT_BACKGROUND_SHARE, Pacer

log = logging.getLogger(__name__)

Backend = Literal["memory", "redis"]


@dataclass(frozen=True)
class _RedisParts:
    client: Redis
    health: RedisHealth
    leases: RedisLeases
    prefix: str


@dataclass
class SharedState:
    """What replicas must share. `backend` says where it lives; the app only uses the protocols.

    Pacers are made per ZEGO app (`pacer_for`), each with that app's own limit, of which background (watch)
    traffic may use `background_share` (ROOMUSERS_WATCH_QPS_SHARE).
    """

    store: SnapshotStore
    deduper: EventDeduper
    leases: FetchLeases
    backend: Backend
    background_share: float = DEFAULT_BACKGROUND_SHARE
    replay_guard: ReplayGuard = field(default_factory=MemoryReplayGuard)
    history: HistoryStore = field(default_factory=memory_history)  # each room's last complete read
    history_hours: float = DEFAULT_HISTORY_HOURS  # how long it is kept (ROOMUSERS_HISTORY_HOURS)
    _redis: _RedisParts | None = field(default=None, repr=False)
    _watch_store: WatchStore | None = field(default=None, repr=False)

    async def health(self) -> dict[str, str]:
        """`{"redis": "ok" | "unreachable" | "not configured"}`; pings Redis (about a second at most)."""
        if self._redis is None:
            return {"redis": "not configured"}
        return {"redis": "ok" if await self._redis.health.check() else "unreachable"}

    def pacer_for(self, name: str, *, qps: float) -> Pacer:
        """The pacer of one ZEGO app (`name`), shared by every replica when the state is in Redis."""
        share = self.background_share
        if self._redis is None:
            return SmoothPacer(qps, background_share=share)
        key = f"{self._redis.prefix}pacer:{name}"
        shared = RedisPacer(self._redis.client, qps=qps, key=key, background_share=share)
        return FallbackPacer(shared, SmoothPacer(qps, background_share=share), self._redis.health)

    def watch_store(self) -> WatchStore:
        """Where watches live: this process, or Redis (without TTLs; no fallback copy, which could alert twice)."""
        if self._watch_store is None:
            if self._redis is None:
                self._watch_store = MemoryWatchStore()
            else:
                self._watch_store = RedisWatchStore(self._redis.client, prefix=self._redis.prefix)
        return self._watch_store

    def read_slots_for(self, name: str, *, limit: int, profile: str = "") -> ReadSlots | None:
        """ROOMUSERS_MAX_CONCURRENT_READS of one ZEGO app (`name`) for every replica when the state is in Redis
        (None: one replica, each service keeps its own line)."""
        if self._redis is None:
            return None
        shared = RedisReadSlots(
            self._redis.client, limit=limit, key=f"{self._redis.prefix}reads:{name}", profile=profile
        )
        return FallbackReadSlots(shared, ReadQueue(limit, profile=profile), self._redis.health)

    def user_rate(self, rate_per_minute: int) -> UserRate:
        """The per-person rate (ROOMUSERS_USER_RATE), shared by every replica when the state is in Redis."""
        local = MemoryUserRate(rate_per_minute)
        if self._redis is None or rate_per_minute <= 0:
            return local
        shared = RedisUserRate(self._redis.client, rate_per_minute, prefix=self._redis.prefix)
        return FallbackUserRate(shared, local, self._redis.health)

    def progress_board(self) -> ProgressBoard | None:
        """Where reads share their progress with replicas waiting on them (None: one replica, nothing to share)."""
        if self._redis is None:
            return None
        return RedisProgressBoard(self._redis.client, prefix=self._redis.prefix)

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.leases.aclose()
            await self._redis.client.aclose()
            SHARED_STATE_FALLBACK.set(0)  # closed: no longer running on a fallback


def memory_state(
    *,
    snapshot_ttl: float = DEFAULT_TTL_SECONDS,
    background_share: float = DEFAULT_BACKGROUND_SHARE,
    history_hours: float = DEFAULT_HISTORY_HOURS,
    history_max_mb: int = DEFAULT_HISTORY_MAX_MB,
) -> SharedState:
    return SharedState(
        store=MemorySnapshotStore(ttl=snapshot_ttl),
        deduper=MemoryEventDeduper(),
        leases=LocalLeases(),
        backend="memory",
        background_share=background_share,
        history=memory_history(hours=history_hours, max_mb=history_max_mb),
        history_hours=history_hours,
    )


async def build_shared_state(
    redis_url: str | None,
    *,
    snapshot_ttl: float = DEFAULT_TTL_SECONDS,
    probe_interval: float = DEFAULT_PROBE_INTERVAL,
    lease_ttl: float = DEFAULT_LEASE_TTL,
    prefix: str = DEFAULT_PREFIX,
    background_share: float = DEFAULT_BACKGROUND_SHARE,
    snapshot_budget_bytes: int = DEFAULT_BUDGET_BYTES,
    history_hours: float = DEFAULT_HISTORY_HOURS,
    history_max_mb: int = DEFAULT_HISTORY_MAX_MB,
) -> SharedState:
    """In-process state when `redis_url` is None or empty; otherwise Redis-backed state with local fallbacks.

    Raises SharedStateUnavailable (one sentence naming REDIS_URL, password redacted) if Redis is configured
    but malformed or unreachable now: a replica that silently ran alone would break the global rate limit.
    """
    local = memory_state(
        snapshot_ttl=snapshot_ttl,
        background_share=background_share,
        history_hours=history_hours,
        history_max_mb=history_max_mb,
    )
    if not redis_url or not redis_url.strip():
        return local
    shown = redact_url(redis_url)
    try:
        redis = connect(redis_url)
    except ValueError as exc:
        # `from None`: redis-py's parse errors can quote parts of the URL, password included.
        raise SharedStateUnavailable(
            f"{REDIS_URL_SETTING}={shown} is not a valid Redis URL ({type(exc).__name__})."
        ) from None
    try:
        await redis.ping()
    except REDIS_UNAVAILABLE as exc:
        await redis.aclose()
        reason = scrub(str(exc), redis_url).rstrip(". ") or type(exc).__name__
        raise SharedStateUnavailable(f"Cannot reach Redis at {REDIS_URL_SETTING}={shown} ({reason}).") from None
    health = RedisHealth(
        redis,
        probe_interval=probe_interval,
        fallback_note=(
            "falling back to in-process state until it is back: snapshots, event dedupe and single-flight are "
            "per replica, and each ZEGO app's rate limit (ZEGO_QPS) now applies per replica, not to all replicas "
            "together"
        ),
    )
    leases = RedisLeases(redis, lease_ttl=lease_ttl, prefix=prefix)
    log.info("shared state in Redis at %s", shown)
    return SharedState(
        store=FallbackSnapshotStore(
            RedisSnapshotStore(redis, ttl=snapshot_ttl, prefix=prefix, budget_bytes=snapshot_budget_bytes),
            local.store,
            health,
        ),
        deduper=FallbackEventDeduper(
            RedisEventDeduper(redis, ttl=EVENT_TTL_SECONDS, prefix=prefix), local.deduper, health
        ),
        leases=FallbackLeases(leases, local.leases, health),
        backend="redis",
        background_share=background_share,
        replay_guard=FallbackReplayGuard(RedisReplayGuard(redis, prefix=prefix), local.replay_guard, health),
        history=FallbackHistoryStore(
            redis_history(redis, hours=history_hours, max_mb=history_max_mb, prefix=prefix), local.history, health
        ),
        history_hours=history_hours,
        _redis=_RedisParts(redis, health, leases, prefix),
    )
