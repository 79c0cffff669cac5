"""State that replicas share when `REDIS_URL` is set: snapshots, the ZIM rate limit, single-flight, dedupe.

    connection.py  connect(url) with short timeouts; redact_url; SharedStateUnavailable
    health.py      RedisHealth: one circuit breaker (one warning per outage, periodic probe, recovery)
    snapshots.py   RedisSnapshotStore: compressed rosters with a TTL and a size cap
    pacing.py      RedisPacer: evenly spaced send slots reserved by a Lua script on Redis's clock
    flight.py      RedisFlightCoordinator (renewed leases); the protocol and the in-process one: bot/flights.py
    dedupe.py      RedisEventDeduper: SET NX EX
    fallback.py    each shared component paired with its in-process twin, switched by RedisHealth
    state.py       SharedState and build_shared_state(redis_url, qps=...)

Redis memory stays bounded by TTLs on every key plus the snapshot size cap; run Redis with a `maxmemory` and
`maxmemory-policy volatile-ttl` (see snapshots.py).
"""

from bot.flights import FlightCoordinator, FlightLease, LocalFlightCoordinator
from bot.shared_state.connection import SharedStateUnavailable, connect, redact_url
from bot.shared_state.dedupe import RedisEventDeduper
from bot.shared_state.fallback import (
    FallbackEventDeduper,
    FallbackFlightCoordinator,
    FallbackPacer,
    FallbackSnapshotStore,
)
from bot.shared_state.flight import RedisFlightCoordinator, RedisLease
from bot.shared_state.health import REDIS_UNAVAILABLE, RedisHealth
from bot.shared_state.pacing import RedisPacer
from bot.shared_state.snapshots import RedisSnapshotStore, SnapshotDecodeError, decode_roster, encode_roster
from bot.shared_state.state import SharedState, build_shared_state, memory_state

__all__ = [
    "REDIS_UNAVAILABLE",
    "FallbackEventDeduper",
    "FallbackFlightCoordinator",
    "FallbackPacer",
    "FallbackSnapshotStore",
    "FlightCoordinator",
    "FlightLease",
    "LocalFlightCoordinator",
    "RedisEventDeduper",
    "RedisFlightCoordinator",
    "RedisHealth",
    "RedisLease",
    "RedisPacer",
    "RedisSnapshotStore",
    "SharedState",
    "SharedStateUnavailable",
    "SnapshotDecodeError",
    "build_shared_state",
    "connect",
    "decode_roster",
    "encode_roster",
    "memory_state",
    "redact_url",
]
