"""Expiring claims that Redis can never evict: the store under fetch leases, event dedupe and the replay guard.

Under a `volatile-*` maxmemory policy Redis evicts only keys that have a TTL. A claim that must keep its promise
under memory pressure therefore lives in keys WITHOUT a TTL, with its expiry kept beside it and enforced by Lua
against Redis's own `TIME` (the one clock every replica agrees on). One claim set is two keys, neither with a TTL:

    <name>          a hash: field = what is claimed, value = the holder's random token
    <name>-expiry   a sorted set: the same fields, scored by their expiry in milliseconds of Redis time

A field whose expiry has passed counts as absent. Every claim first prunes up to `_PRUNE_PER_CLAIM` expired
fields (cheap: `ZRANGEBYSCORE … LIMIT`), so the set stays about as large as what is live, and memory stays
bounded by the claim rate times the TTL rather than by an eviction policy. Tokens make every script idempotent:
redis-py re-sends a command once after a dropped connection, and a claim that finds its own token reports
"mine", not "someone else's". The scripts touch only their declared keys (Cluster-safe per claim set, though
the app as a whole supports standalone and Sentinel only).
"""

from __future__ import annotations

from redis.asyncio import Redis

_PRUNE_PER_CLAIM = 64  # more than one claim adds, so pruning keeps up with any steady rate

# Every script that reads `TIME` and then writes starts with this (Redis < 5 replicates scripts verbatim and
# refuses a write after a non-deterministic command; `replicate_commands()` makes it replicate the effects).
PRELUDE = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: the hash, the expiry set. ARGV: field, token, ttl in ms, prune limit. 1 = held by this token now, 0 = not.
_CLAIM = (
    PRELUDE
    + """
for _, field in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))) do
  redis.call('HDEL', KEYS[1], field)
  redis.call('ZREM', KEYS[2], field)
end
local holder = redis.call('HGET', KEYS[1], ARGV[1])
local expiry = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]) or '0')
if holder and holder ~= ARGV[2] and expiry > now then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
return 1
"""
)

# Extends a live claim of this token back to the full TTL. 0 when it expired or another token holds it.
_RENEW = (
    PRELUDE
    + """
local expiry = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]) or '0')
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] or expiry <= now then
  return 0
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
return 1
"""
)

# Compare-and-delete: never frees a claim that expired and was taken by another token.
_RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

# Milliseconds until the claim expires, or -1 when there is no live claim.
_REMAINING = (
    PRELUDE
    + """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return -1
end
local expiry = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]) or '0')
if expiry <= now then
  return -1
end
return expiry - now
"""
)


class RedisClaims:
    """One claim set (`<name>` and `<name>-expiry`). Redis errors propagate to the caller."""

    def __init__(self, redis: Redis, *, name: str) -> None:
        self.hash_key = name
        self.expiry_key = f"{name}-expiry"
        self._keys = [self.hash_key, self.expiry_key]
        self._claim = redis.register_script(_CLAIM)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._remaining = redis.register_script(_REMAINING)

    async def claim(self, field: str, token: str, ttl_ms: int) -> bool:
        """Hold `field` for `ttl_ms` if nobody else holds it live (or it is already this token's)."""
        return bool(await self._claim(keys=self._keys, args=[field, token, ttl_ms, _PRUNE_PER_CLAIM]))

    async def renew(self, field: str, token: str, ttl_ms: int) -> bool:
        """Back to the full `ttl_ms`, only while this token's claim is live."""
        return bool(await self._renew(keys=self._keys, args=[field, token, ttl_ms]))

    async def release(self, field: str, token: str) -> bool:
        """Give `field` up if this token holds it (expired or not); False when it no longer does."""
        return bool(await self._release(keys=self._keys, args=[field, token]))

    async def remaining_ms(self, field: str) -> int | None:
        """Milliseconds of Redis time left on the live claim of `field`, None when nobody holds it."""
        left = int(await self._remaining(keys=self._keys, args=[field]))
        return None if left < 0 else left
