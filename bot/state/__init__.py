"""State that replicas share when `REDIS_URL` is set, one module per shared thing, in-process and Redis side by side.

    snapshots.py   SnapshotStore: MemorySnapshotStore (TTLCache bounded by users held), RedisSnapshotStore
                   (compressed packed rosters with a TTL and a size cap), FallbackSnapshotStore
    pacer.py       the ZIM rate limit: SmoothPacer (one process), RedisPacer (Lua on Redis's clock), FallbackPacer;
                   two priorities on one schedule: interactive first, background (watches) within a share
    leases.py      FetchLeases, who reads a room: LocalLeases, RedisLeases (renewed), FallbackLeases
    once.py        event dedupe and the replay guard: Memory…, Redis… (claim sets), Fallback…
    readslots.py   ROOMUSERS_MAX_CONCURRENT_READS for all replicas: RedisReadSlots (a line in Redis), Fallback…
    ratelimit.py   ROOMUSERS_USER_RATE: MemoryUserRate, RedisUserRate (GCRA in Lua), FallbackUserRate
    expiring.py    RedisClaims: expiring claims in keys without a TTL (never evicted), expiry enforced in Lua
    health.py      RedisHealth: one circuit breaker (one warning per outage, periodic probe, recovery);
                   Fallback, the base of every Fallback… pair
    connection.py  connect(url) with short timeouts; redact_url; SharedStateUnavailable
    shared.py      SharedState and build_shared_state(redis_url)

Redis memory stays bounded by the snapshot byte budget plus expiry: TTLs on snapshot-like keys (the only ones
a `volatile-lru` Redis may evict), expiry inside the value for everything that must never be evicted.
"""

from bot.state.connection import SharedStateUnavailable, redact_url
from bot.state.shared import SharedState, build_shared_state, memory_state

__all__ = ["SharedState", "SharedStateUnavailable", "build_shared_state", "memory_state", "redact_url"]
