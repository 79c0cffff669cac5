"""Where watches live: in the process (`MemoryWatchStore`, lost on restart) or in Redis (`RedisWatchStore`,
shared by every replica).

Redis layout (prefix `roomusers:`), all keys WITHOUT a TTL so no `volatile-*` eviction policy ever drops a
live watch; a watch's end (`until`) is in its value and enforced by the poller:

* `watch:<id>`                     the watch as JSON;
* `watches:all`, `watches:team:<team>`, `watches:conv:<team>:<channel>`, `watches:group:<group>`
                                   sets of watch IDs (counting for the limits, listing, polling);
* `watch:due`                      ZSET: poll group → when it is next due (ms of Redis time);
* `watch:cost`                     HASH: poll group → ZIM requests one poll of it takes (for the budget).

Adding (limits checked in the same script), ending (fired, stopped or expired: a compare-and-delete, so only
one caller ever ends a watch and posts about it) and claiming due groups are each one Lua script. A claim pushes
the group's due time one interval ahead, so a replica that dies mid-poll loses its claim within an interval and
another replica polls the group instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from redis.asyncio import Redis

from bot.watch.model import Watch


class WatchLimitReached(Exception):
    """A limit refused a new watch; `sentence` says which (plain text)."""

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence


@dataclass(frozen=True, slots=True)
class Limits:
    per_conversation: int
    per_workspace: int


@dataclass(frozen=True, slots=True)
class Claim:
    """A poll group this replica now polls: it was due at `due`, claimed at `now` (both the store's clock, s)."""

    group: str
    due: float
    now: float

    @property
    def lag(self) -> float:
        return max(0.0, self.now - self.due)


def conversation_limit(limit: int) -> str:
    return (
        f"This conversation already has {limit:,} active watches, the most it may have "
        "(ROOMUSERS_MAX_WATCHES_PER_CONVERSATION); stop one with `/roomusers --watches` first."
    )


def workspace_limit(limit: int) -> str:
    return (
        f"This workspace already has {limit:,} active watches, the most it may have "
        "(ROOMUSERS_MAX_WATCHES_PER_WORKSPACE); stop one with `/roomusers --watches` first."
    )


class WatchStore(Protocol):
    async def add(self, watch: Watch, *, limits: Limits, first_due_in: float) -> None:
        """Store a new watch unless a limit is reached (WatchLimitReached); its group is due in `first_due_in` s
        (unless already scheduled)."""

    async def get(self, watch_id: str) -> Watch | None: ...

    async def in_conversation(self, team_id: str, channel_id: str) -> list[Watch]:
        """This conversation's active watches, oldest first."""

    async def in_group(self, group: str) -> list[Watch]: ...

    async def end(self, watch: Watch) -> bool:
        """Remove the watch (fired, stopped or expired). True for exactly one caller: the one that removed it."""

    async def update(self, watch: Watch) -> None:
        """Save the watch's poll state, if it is still stored (an ended watch stays ended)."""

    async def claim_due(self, *, hold_for: float, limit: int) -> list[Claim]:
        """Take up to `limit` due groups, pushing each one's due time `hold_for` s ahead (the claim)."""

    async def finish(self, group: str, *, next_due: float, cost: int) -> None:
        """Schedule the group's next poll at `next_due` (store clock) and record its cost, if it still exists."""

    async def costs(self) -> dict[str, int]:
        """ZIM requests per poll of every group (a group not polled yet counts 1)."""

    async def next_due_in(self) -> float | None:
        """Seconds until the earliest due group (≤ 0: due now), or None when nothing is watched."""

    async def count(self) -> int: ...


@dataclass
class MemoryWatchStore:
    """One replica's watches (lost on restart)."""

    clock: Callable[[], float] = time.time
    _watches: dict[str, Watch] = field(default_factory=dict)
    _due: dict[str, float] = field(default_factory=dict)
    _costs: dict[str, int] = field(default_factory=dict)

    async def add(self, watch: Watch, *, limits: Limits, first_due_in: float) -> None:
        here = [w for w in self._watches.values() if (w.team_id, w.channel_id) == (watch.team_id, watch.channel_id)]
        if len(here) >= limits.per_conversation:
            raise WatchLimitReached(conversation_limit(limits.per_conversation))
        if sum(w.team_id == watch.team_id for w in self._watches.values()) >= limits.per_workspace:
            raise WatchLimitReached(workspace_limit(limits.per_workspace))
        self._watches[watch.id] = watch
        self._due.setdefault(watch.group, self.clock() + first_due_in)

    async def get(self, watch_id: str) -> Watch | None:
        return self._watches.get(watch_id)

    async def in_conversation(self, team_id: str, channel_id: str) -> list[Watch]:
        found = [w for w in self._watches.values() if (w.team_id, w.channel_id) == (team_id, channel_id)]
        return sorted(found, key=lambda w: (w.created_at, w.id))

    async def in_group(self, group: str) -> list[Watch]:
        return [w for w in self._watches.values() if w.group == group]

    async def end(self, watch: Watch) -> bool:
        if self._watches.pop(watch.id, None) is None:
            return False
        if not any(w.group == watch.group for w in self._watches.values()):
            self._due.pop(watch.group, None)
            self._costs.pop(watch.group, None)
        return True

    async def update(self, watch: Watch) -> None:
        if watch.id in self._watches:
            self._watches[watch.id] = watch

    async def claim_due(self, *, hold_for: float, limit: int) -> list[Claim]:
        now = self.clock()
        due = sorted((at, group) for group, at in self._due.items() if at <= now)[:limit]
        for _, group in due:
            self._due[group] = now + hold_for
        return [Claim(group, at, now) for at, group in due]

    async def finish(self, group: str, *, next_due: float, cost: int) -> None:
        if group in self._due:
            self._due[group] = next_due
            self._costs[group] = cost

    async def costs(self) -> dict[str, int]:
        return {group: self._costs.get(group, 1) for group in self._due}

    async def next_due_in(self) -> float | None:
        if not self._due:
            return None
        return min(self._due.values()) - self.clock()

    async def count(self) -> int:
        return len(self._watches)


_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: watch, all, team, conv, group set, due, cost. ARGV: id, json, per conversation, per workspace, group,
# first due in ms.
_ADD = (
    _NOW_MS
    + """
if redis.call('SCARD', KEYS[4]) >= tonumber(ARGV[3]) then return -1 end
if redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[4]) then return -2 end
redis.call('SET', KEYS[1], ARGV[2])
for i = 2, 5 do redis.call('SADD', KEYS[i], ARGV[1]) end
redis.call('ZADD', KEYS[6], 'NX', now + tonumber(ARGV[6]), ARGV[5])
return 1
"""
)

# KEYS as _ADD. ARGV: id, group. Only the caller whose DEL removed the watch gets 1.
_END = """
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
for i = 2, 5 do redis.call('SREM', KEYS[i], ARGV[1]) end
if redis.call('SCARD', KEYS[5]) == 0 then
  redis.call('ZREM', KEYS[6], ARGV[2])
  redis.call('HDEL', KEYS[7], ARGV[2])
end
return 1
"""

# KEYS: watch. ARGV: json. Never brings an ended watch back.
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('SET', KEYS[1], ARGV[1]) end
return 0
"""

# KEYS: due. ARGV: hold ms, limit. Returns {now, group, due, group, due, ...}.
_CLAIM = (
    _NOW_MS
    + """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {tostring(now)}
for i = 1, #due, 2 do
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), due[i])
  table.insert(out, due[i])
  table.insert(out, due[i + 1])
end
return out
"""
)

# KEYS: due, cost. ARGV: group, next due ms, cost.
_FINISH = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
return 0
"""

_NEXT_DUE = (
    _NOW_MS
    + """
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #first == 0 then return false end
return tostring(tonumber(first[2]) - now)
"""
)


class RedisWatchStore:
    """Watches shared by every replica; Redis errors propagate (the caller pauses or refuses, never forks)."""

    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._all = f"{prefix}watches:all"
        self._due = f"{prefix}watch:due"
        self._cost = f"{prefix}watch:cost"
        self._add = redis.register_script(_ADD)
        self._end = redis.register_script(_END)
        self._update = redis.register_script(_UPDATE)
        self._claim = redis.register_script(_CLAIM)
        self._finish = redis.register_script(_FINISH)
        self._next_due = redis.register_script(_NEXT_DUE)

    def _watch_key(self, watch_id: str) -> str:
        return f"{self._prefix}watch:{watch_id}"

    def _conv_key(self, team_id: str, channel_id: str) -> str:
        return f"{self._prefix}watches:conv:{team_id}:{channel_id}"

    def _group_key(self, group: str) -> str:
        return f"{self._prefix}watches:group:{group}"

    def _keys(self, watch: Watch) -> list[str]:
        return [
            self._watch_key(watch.id),
            self._all,
            f"{self._prefix}watches:team:{watch.team_id}",
            self._conv_key(watch.team_id, watch.channel_id),
            self._group_key(watch.group),
            self._due,
            self._cost,
        ]

    async def add(self, watch: Watch, *, limits: Limits, first_due_in: float) -> None:
        args: list[str | int] = [watch.id, watch.to_json(), limits.per_conversation, limits.per_workspace]
        result = int(await self._add(keys=self._keys(watch), args=[*args, watch.group, round(first_due_in * 1000)]))
        if result == -1:
            raise WatchLimitReached(conversation_limit(limits.per_conversation))
        if result == -2:
            raise WatchLimitReached(workspace_limit(limits.per_workspace))

    async def get(self, watch_id: str) -> Watch | None:
        raw = await self._redis.get(self._watch_key(watch_id))
        return None if raw is None else Watch.from_json(raw)

    async def _load(self, set_key: str) -> list[Watch]:
        ids = sorted(
            member.decode() if isinstance(member, bytes) else str(member)
            for member in await self._redis.smembers(set_key)
        )
        if not ids:
            return []
        values = await self._redis.mget([self._watch_key(watch_id) for watch_id in ids])
        return [Watch.from_json(raw) for raw in values if raw is not None]

    async def in_conversation(self, team_id: str, channel_id: str) -> list[Watch]:
        found = await self._load(self._conv_key(team_id, channel_id))
        return sorted(found, key=lambda w: (w.created_at, w.id))

    async def in_group(self, group: str) -> list[Watch]:
        return await self._load(self._group_key(group))

    async def end(self, watch: Watch) -> bool:
        return int(await self._end(keys=self._keys(watch), args=[watch.id, watch.group])) == 1

    async def update(self, watch: Watch) -> None:
        await self._update(keys=[self._watch_key(watch.id)], args=[watch.to_json()])

    async def claim_due(self, *, hold_for: float, limit: int) -> list[Claim]:
        raw = await self._claim(keys=[self._due], args=[max(1, round(hold_for * 1000)), limit])
        now = float(raw[0]) / 1000
        claims = []
        for index in range(1, len(raw), 2):
            group = raw[index].decode() if isinstance(raw[index], bytes) else str(raw[index])
            claims.append(Claim(group, float(raw[index + 1]) / 1000, now))
        return claims

    async def finish(self, group: str, *, next_due: float, cost: int) -> None:
        await self._finish(keys=[self._due, self._cost], args=[group, round(next_due * 1000), cost])

    async def costs(self) -> dict[str, int]:
        groups = [
            _text(group) for group in await self._redis.zrange(self._due, 0, -1) if isinstance(group, bytes | str)
        ]
        known = await self._redis.hgetall(self._cost)
        decoded = {_text(key): int(value) for key, value in known.items()}
        return {group: decoded.get(group, 1) for group in groups}

    async def next_due_in(self) -> float | None:
        raw = await self._next_due(keys=[self._due], args=[])
        return None if raw is None else float(raw) / 1000

    async def count(self) -> int:
        return int(await self._redis.scard(self._all))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
