"""Roster snapshots: in process (`MemorySnapshotStore`), in Redis for every replica (`RedisSnapshotStore`),
and the pair switched by `RedisHealth` (`FallbackSnapshotStore`).

Redis encoding: a 4-byte tag (`RUS2`), then zlib (level 6) of a length-prefixed UTF-8 JSON header
`{"room", "count", "at", "pages", "destroying", "requests"}` followed by the roster's packed form
(`PackedUsers.to_bytes`: the ID and name blobs and their offsets). Reading it back builds no per-user
objects, so a click served from Redis costs a decompression, not a parse of every user. Strings go through
`surrogatepass`, so any Python string, even a lone surrogate from ZIM's JSON, comes back identical.
An incomplete roster is tagged `RUS3` (the same body; the header adds `"complete": false, "problem",
"reason"`) and kept at most 30 s: older replicas read an unknown tag as a miss and read the room themselves,
so they never show an incomplete list as whole. Complete rosters stay `RUS2`, byte for byte as before.
Large rosters are compressed and decompressed in a worker thread so the event loop keeps answering Slack.

Bounded memory: every snapshot is written with `SET key value PX ttl` (default 300 s), a roster over
`max_users` (default 1,000,000 users, about 15 MB) is not stored at all, and snapshots together get their own
byte budget (SNAPSHOT_REDIS_MAX_MB, default 128): one Lua script stores a snapshot and, while the budget would
be exceeded, deletes the oldest ones first. Two persistent bookkeeping keys hold the budget's state:
`<prefix>snapshot-index` (a sorted set of snapshot keys by expiry) and `<prefix>snapshot-bytes` (a hash of
their sizes, with the total in field `~total`); expired entries are dropped from them at the next write.

So snapshots alone can never fill Redis. Everything that must keep its promise lives in keys WITHOUT a TTL:
the pacer's send-slot schedule (`<prefix>pacer:<app>`, `…:window`, `…:background`), the read slots, the fetch leases,
event dedupe and the replay guard (expiry enforced in Lua against Redis `TIME`, bot/state/expiring.py and
readslots.py), the budget's two bookkeeping keys, and watches. Run Redis with `maxmemory` at least twice the budget and
`maxmemory-policy volatile-lru` as a backstop: a `volatile-*` policy evicts only keys WITH a TTL — snapshots,
shared read progress and other snapshot-like keys, whose loss costs one more read of a room — and never any of
those (tested against a real redis-server over its `maxmemory`). Not `allkeys-*` (it would evict them too) and
not `noeviction` (a full Redis then refuses the writes that leases and the pacer need). A snapshot evicted by
Redis itself leaves a stale index entry that over-counts the total until its expiry passes. The script deletes
keys it did not declare, so Redis Cluster is not supported (standalone or Sentinel only).
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
import zlib
from collections.abc import Callable
from typing import Any, Protocol, get_args

from cachetools import TTLCache
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bot.roster.model import IncompleteReason, Roster
from bot.roster.packed import PackedUsers
from bot.state.connection import DEFAULT_PREFIX
from bot.state.health import Fallback

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 300.0
DEFAULT_MAX_USERS_IN_MEMORY = 2_000_000
DEFAULT_MAX_USERS = 1_000_000  # one roster in Redis

_TAG = b"RUS2"  # RUS1 (JSON columns) snapshots from older versions read as misses and are refetched
_INCOMPLETE_TAG = b"RUS3"  # an incomplete roster: older replicas treat it as a miss
INCOMPLETE_TTL_SECONDS = 30.0  # an incomplete roster is kept for paging clicks, briefly
_METADATA_SIZE = struct.Struct("<I")
_COMPRESSION_LEVEL = 6
_UTF8 = "utf-8"
_ERRORS = "surrogatepass"
# Below this many users (or compressed bytes) a worker thread costs more than the work it would move.
_THREAD_USERS = 5_000
_THREAD_BYTES = 64 * 1024


class SnapshotStore(Protocol):
    async def get(self, key: str) -> Roster | None: ...

    async def put(self, key: str, roster: Roster) -> bool: ...  # whether it was stored

    async def discard(self, key: str) -> None: ...


def _users_held(roster: Roster) -> int:
    return len(roster.users) + 1  # +1 so empty rooms still occupy a slot


class MemorySnapshotStore:
    """In-process snapshots: cachetools TTLCache whose size is the total number of users held."""

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        max_users: int = DEFAULT_MAX_USERS_IN_MEMORY,
        timer: Callable[[], float] = time.monotonic,
        kind: str = "snapshot",
    ) -> None:
        self._kind = kind  # named in the log line of a roster too big to keep
        self._cache: TTLCache[str, Roster] = TTLCache(maxsize=max_users, ttl=ttl, timer=timer, getsizeof=_users_held)
        # Incomplete rosters live shorter (min(ttl, 30 s)); TTLCache has one TTL, so they get their own cache.
        self._incomplete: TTLCache[str, Roster] = TTLCache(
            maxsize=max(1, max_users // 10),
            ttl=min(ttl, INCOMPLETE_TTL_SECONDS),
            timer=timer,
            getsizeof=_users_held,
        )

    async def get(self, key: str) -> Roster | None:
        return self._cache.get(key) or self._incomplete.get(key)

    async def contains(self, key: str) -> bool:
        return key in self._cache or key in self._incomplete

    async def put(self, key: str, roster: Roster) -> bool:
        """Keep `roster` under `key`; False when it is larger than the whole budget (served, not kept)."""
        self._cache.pop(key, None)
        self._incomplete.pop(key, None)
        try:
            (self._cache if roster.complete else self._incomplete)[key] = roster
        except ValueError:
            log.warning("%s of %d users exceeds the cache budget; not cached", self._kind, len(roster.users))
            return False
        return True

    async def discard(self, key: str) -> None:
        self._cache.pop(key, None)
        self._incomplete.pop(key, None)


class SnapshotDecodeError(ValueError):
    """A stored value that is not a roster this module wrote."""


def encode_roster(roster: Roster) -> bytes:
    metadata = {
        "room": roster.room_id,
        "count": roster.reported_count,
        "at": roster.fetched_at,
        "pages": roster.pages,
        "destroying": roster.being_destroyed,
        "requests": list(roster.request_ids),
    }
    if not roster.complete:
        metadata.update(complete=False, problem=roster.problem, reason=roster.incomplete_reason)
    header = json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode(_UTF8, _ERRORS)
    users = roster.users if isinstance(roster.users, PackedUsers) else PackedUsers(roster.users)
    body = _METADATA_SIZE.pack(len(header)) + header + users.to_bytes()
    return (_TAG if roster.complete else _INCOMPLETE_TAG) + zlib.compress(body, _COMPRESSION_LEVEL)


def decode_roster(value: bytes) -> Roster:
    """The roster in `value`; SnapshotDecodeError for anything else (foreign, truncated, older format)."""
    complete = value.startswith(_TAG)
    if not complete and not value.startswith(_INCOMPLETE_TAG):
        raise SnapshotDecodeError("not a roster snapshot (unknown tag)")
    try:
        body = zlib.decompress(value[len(_TAG) :])
        (header_size,) = _METADATA_SIZE.unpack_from(body)
        header_end = _METADATA_SIZE.size + header_size
        document = json.loads(body[_METADATA_SIZE.size : header_end].decode(_UTF8, _ERRORS))
        incomplete: dict[str, Any] = {}
        if not complete:
            if document.get("complete") is not False:
                raise ValueError("a RUS3 snapshot must say complete: false")
            reason = _typed(document["reason"], str)
            if reason not in get_args(IncompleteReason):
                raise ValueError("unknown incomplete reason")
            incomplete = {"complete": False, "problem": _typed(document["problem"], str), "incomplete_reason": reason}
        return Roster(
            room_id=_typed(document["room"], str),
            users=PackedUsers.from_bytes(body[header_end:]),
            reported_count=_typed(document["count"], int),
            fetched_at=float(_typed(document["at"], (int, float))),
            pages=_typed(document["pages"], int),
            being_destroyed=_typed(document["destroying"], bool),
            request_ids=tuple(_typed(request_id, str) for request_id in document["requests"]),
            **incomplete,
        )
    except (zlib.error, struct.error, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise SnapshotDecodeError(f"corrupt roster snapshot ({type(exc).__name__})") from exc


def _typed(value: Any, kind: type | tuple[type, ...]) -> Any:
    # bool is an int in Python; a count of `true` is still a corrupt document.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise TypeError(f"expected {kind}, got {type(value).__name__}")
    return value


DEFAULT_BUDGET_BYTES = 128 * 1024 * 1024

_FORGET = """
local function forget(m)
  local n = tonumber(redis.call('HGET', KEYS[3], m) or '0')
  redis.call('HDEL', KEYS[3], m)
  redis.call('ZREM', KEYS[2], m)
  if n > 0 then redis.call('HINCRBY', KEYS[3], '~total', -n) end
end
"""
# KEYS: the snapshot, the index, the sizes. ARGV: value, ttl in ms, budget in bytes. 1 = stored, 0 = too big.
_PUT_SCRIPT = (
    _FORGET
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local size = string.len(ARGV[1])
local ttl = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do forget(m) end
forget(KEYS[1])
if size > budget then
  redis.call('DEL', KEYS[1])
  return 0
end
while tonumber(redis.call('HGET', KEYS[3], '~total') or '0') + size > budget do
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if not oldest then break end
  redis.call('DEL', oldest)
  forget(oldest)
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('ZADD', KEYS[2], now + ttl, KEYS[1])
redis.call('HSET', KEYS[3], KEYS[1], size)
redis.call('HINCRBY', KEYS[3], '~total', size)
return 1
"""
)
_DISCARD_SCRIPT = (
    _FORGET
    + """
redis.call('DEL', KEYS[1])
forget(KEYS[1])
return 1
"""
)


class RedisSnapshotStore:
    """`SnapshotStore` in Redis: one compressed string per roster, expiring after `ttl` seconds.

    Redis errors propagate; `build_shared_state` wraps this store so they fall back to memory.
    Needs a client that returns bytes (redis-py's default, `decode_responses=False`).
    """

    def __init__(
        self,
        redis: Redis,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        prefix: str = DEFAULT_PREFIX,
        max_users: int = DEFAULT_MAX_USERS,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        kind: str = "snapshot",
        budget_setting: str = "SNAPSHOT_REDIS_MAX_MB",
    ) -> None:
        """`kind` names the keys (`<prefix><kind>:…`, `<prefix><kind>-index`, `<prefix><kind>-bytes`): another
        kind (the history of baselines) is another store with its own TTL and budget."""
        if ttl <= 0 or max_users < 0 or budget_bytes < 1:
            raise ValueError("ttl must be positive, max_users non-negative and budget_bytes positive")
        self._redis = redis
        self._ttl_ms = max(1, round(ttl * 1000))
        self._prefix = f"{prefix}{kind}:"
        self._index = f"{prefix}{kind}-index"
        self._bytes = f"{prefix}{kind}-bytes"
        self._max_users = max_users
        self._budget = budget_bytes
        self._budget_setting = budget_setting  # named when a roster is too big for the budget
        self._kind = kind
        self._put = redis.register_script(_PUT_SCRIPT)
        self._discard = redis.register_script(_DISCARD_SCRIPT)

    def redis_key(self, key: str) -> str:
        return self._prefix + key

    async def get(self, key: str) -> Roster | None:
        try:
            value = await self._redis.get(self.redis_key(key))
        except ResponseError as exc:
            if not str(exc).startswith("WRONGTYPE"):
                raise
            log.warning("snapshot key %r holds a non-string Redis value; treated as a miss", key)
            return None
        if value is None:
            return None
        if not isinstance(value, bytes):
            raise TypeError("RedisSnapshotStore needs a client with decode_responses=False")
        try:
            if len(value) > _THREAD_BYTES:
                return await asyncio.to_thread(decode_roster, value)
            return decode_roster(value)
        except SnapshotDecodeError as exc:
            log.warning("snapshot %r is unreadable (%s, %d bytes); treated as a miss", key, exc, len(value))
            return None

    async def contains(self, key: str) -> bool:
        """Whether a roster is stored under `key`, without reading it."""
        return bool(await self._redis.exists(self.redis_key(key)))

    async def put(self, key: str, roster: Roster) -> bool:
        """Store `roster` under `key`; False (and a log line) when it is over the user limit or the budget."""
        if len(roster.users) > self._max_users:
            log.warning(
                "%s of %d users exceeds the shared store's limit of %d; not stored",
                self._kind,
                len(roster.users),
                self._max_users,
            )
            return False
        if len(roster.users) > _THREAD_USERS:
            value = await asyncio.to_thread(encode_roster, roster)
        else:
            value = encode_roster(roster)
        # An incomplete roster is kept briefly (INCOMPLETE_TTL_SECONDS), for paging clicks only.
        ttl_ms = self._ttl_ms if roster.complete else min(self._ttl_ms, round(INCOMPLETE_TTL_SECONDS * 1000))
        keys = [self.redis_key(key), self._index, self._bytes]
        if not await self._put(keys=keys, args=[value, ttl_ms, self._budget]):
            log.warning(
                "%s of %d bytes exceeds the shared store's budget of %d bytes (%s); not stored",
                self._kind,
                len(value),
                self._budget,
                self._budget_setting,
            )
            return False
        return True

    async def discard(self, key: str) -> None:
        await self._discard(keys=[self.redis_key(key), self._index, self._bytes])


class FallbackSnapshotStore(Fallback[SnapshotStore]):
    """Snapshots written during an outage stay in this replica's memory; Redis keeps the older copy."""

    async def get(self, key: str) -> Roster | None:
        return await self._call(lambda store: store.get(key))

    async def put(self, key: str, roster: Roster) -> bool:
        return await self._call(lambda store: store.put(key, roster))

    async def discard(self, key: str) -> None:
        await self._call(lambda store: store.discard(key))
