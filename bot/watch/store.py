"""Where watches live: in the process (`MemoryWatchStore`, lost on restart) or in Redis (`RedisWatchStore`,
shared by every replica).

Redis layout (prefix `roomusers:`), all keys WITHOUT a TTL so no `volatile-*` eviction policy ever drops a
live watch (an `allkeys-*` policy is not supported); a watch's end (`until`) is in its value, enforced by the
poller, and by a periodic sweep for any group that lost its schedule:

* `watch:<id>`                     the watch as JSON (an ID is 16 hex digits, checked before any lookup);
* `watches:all`, `watches:group:<group>`
                                   sets of watch IDs (the sweep, polling);
* `watches:byteam:<team>`, `watches:byconv:<team>:<channel>`
                                   sorted sets of watch IDs scored by `until` (the limits count only watches
                                   not yet expired; listing);
* `watch-due`                      ZSET: poll group → when it is next due (ms of Redis time);
* `watch-cost`                     HASH: poll group → ZIM requests one poll of it takes (for the budget);
* `watch-alerts-owed`, `watch-alerts-held`, `watch-alerts-tries`
                                   the alerts of fired watches not yet posted: HASH id → the alert (watch and
                                   reading, JSON), ZSET id → until when its poster holds it (ms of Redis
                                   time; the fence), HASH id → how many holders took it.

Adding (limits checked in the same script), ending (fired, stopped or expired: a compare-and-delete, so only
one caller ever ends a watch and posts about it), claiming due groups, renewing a claim and recording a poll's
outcome are each one Lua script. A claim pushes the group's due time `hold_for` ahead and returns that score
as its fence: the holder renews it while its poll runs, and `renew`, `finish` and `record_poll` change
nothing once the score is no longer the holder's (the claim lapsed and another replica took the group). A
replica that dies mid-poll stops renewing, so its claim lapses within one hold.

A watch that fires is ended and its alert made owed in the same script, held (fenced, renewed) by the replica
posting it; the alert is deleted once posted. A replica that dies before posting stops holding it, and another
takes it over (`claim_owed_alerts`). The third holder of one alert is its last: after it, the alert is dropped
(logged), so an alert whose post kills its replica can't take every replica down in turn.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from redis.asyncio import Redis

from bot.state.expiring import PRELUDE
from bot.watch.model import FAILURES_BEFORE_NOTICE, Watch, is_watch_id

log = logging.getLogger(__name__)

MAX_ALERT_TRIES = 3  # holders of one owed alert before it is dropped: a post that kills its replica must stop

# What the caller of `record_poll` must post: nothing, the one "could not be checked" notice, or the one
# "can be checked again" notice.
PollNotice = Literal["none", "failing", "works"]


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
    """A poll group this replica now polls: it was due at `due`, claimed at `now` (both the store's clock, s).
    `fence` is the due score the claim wrote: writes made under the claim apply only while it is still there."""

    group: str
    due: float
    now: float
    fence: float = 0.0

    @property
    def lag(self) -> float:
        return max(0.0, self.now - self.due)


@dataclass(frozen=True, slots=True)
class OwedAlert:
    """The alert of a fired watch, not yet posted, held by this caller; `fence` marks the hold (renewals
    and take-overs replace it). `reading` is what the poll saw, as the poller's JSON."""

    watch: Watch
    reading: str
    fence: float


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


def after_poll(watch: Watch, ok: bool) -> tuple[Watch, PollNotice]:
    """The watch after one more poll that worked (`ok`) or failed, and the notice that poll makes due."""
    after = watch.after_poll(ok)
    if ok:
        return after, "works" if watch.failure_notice_posted else "none"
    if after.consecutive_failures >= FAILURES_BEFORE_NOTICE and not after.failure_notice_posted:
        return replace(after, failure_notice_posted=True), "failing"
    return after, "none"


class WatchStore(Protocol):
    async def add(self, watch: Watch, *, limits: Limits, first_due_in: float) -> None:
        """Store a new watch unless a limit is reached (WatchLimitReached; expired watches not yet ended don't
        count); its group is due in `first_due_in` s (unless already scheduled)."""

    async def get(self, watch_id: str) -> Watch | None:
        """The watch, or None (also for text that is not a watch ID)."""

    async def in_conversation(self, team_id: str, channel_id: str) -> list[Watch]:
        """This conversation's active watches, oldest first."""

    async def in_group(self, group: str) -> list[Watch]: ...

    async def all_watches(self) -> list[Watch]:
        """Every stored watch (the periodic sweep)."""

    async def end(self, watch: Watch) -> bool:
        """Remove the watch (fired, stopped or expired). True for exactly one caller: the one that removed it."""

    async def fire(self, watch: Watch, reading: str, *, hold_for: float) -> OwedAlert | None:
        """End the watch because its condition came true, and keep its alert owed, held by this caller for
        `hold_for` s, until `alert_posted`. An OwedAlert for exactly one caller; None for the others."""

    async def hold_alert(self, alert: OwedAlert, *, hold_for: float) -> OwedAlert | None:
        """Hold an owed alert `hold_for` s more while it is posted; None when another caller took it over."""

    async def alert_posted(self, alert: OwedAlert) -> None:
        """Forget the owed alert (posted, or given up on)."""

    async def claim_owed_alerts(self, *, hold_for: float, limit: int) -> list[OwedAlert]:
        """Take up to `limit` owed alerts nobody holds (their poster died); each is this caller's to post."""

    async def record_poll(self, watch: Watch, claim: Claim, *, ok: bool) -> PollNotice:
        """Count one poll of the watch made under `claim`, in one step against the stored watch; the notice
        returned is owed by this caller alone. Nothing changes (and "none") once the claim or watch is gone."""

    async def claim_due(self, *, hold_for: float, limit: int) -> list[Claim]:
        """Take up to `limit` due groups, pushing each one's due time `hold_for` s ahead (the claim)."""

    async def renew(self, claim: Claim, *, hold_for: float) -> Claim | None:
        """Push a claim still held `hold_for` s ahead of now; None when it lapsed (another replica may poll)."""

    async def finish(self, claim: Claim, *, next_due: float, cost: int) -> None:
        """Schedule the group's next poll at `next_due` (store clock) and record its cost, if the claim holds."""

    async def schedule_missing(self, first_due_in: Mapping[str, float]) -> int:
        """Give each group that has no schedule one (due in the given seconds); how many were missing."""

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
    _owed: dict[str, OwedAlert] = field(default_factory=dict)
    _alert_tries: dict[str, int] = field(default_factory=dict)

    async def add(self, watch: Watch, *, limits: Limits, first_due_in: float) -> None:
        now = self.clock()
        live = [w for w in self._watches.values() if not w.expired(now)]
        here = [w for w in live if (w.team_id, w.channel_id) == (watch.team_id, watch.channel_id)]
        if len(here) >= limits.per_conversation:
            raise WatchLimitReached(conversation_limit(limits.per_conversation))
        if sum(w.team_id == watch.team_id for w in live) >= limits.per_workspace:
            raise WatchLimitReached(workspace_limit(limits.per_workspace))
        self._watches[watch.id] = watch
        self._due.setdefault(watch.group, now + first_due_in)

    async def get(self, watch_id: str) -> Watch | None:
        return self._watches.get(watch_id) if is_watch_id(watch_id) else None

    async def in_conversation(self, team_id: str, channel_id: str) -> list[Watch]:
        found = [w for w in self._watches.values() if (w.team_id, w.channel_id) == (team_id, channel_id)]
        return sorted(found, key=lambda w: (w.created_at, w.id))

    async def in_group(self, group: str) -> list[Watch]:
        return [w for w in self._watches.values() if w.group == group]

    async def all_watches(self) -> list[Watch]:
        return list(self._watches.values())

    async def end(self, watch: Watch) -> bool:
        if self._watches.pop(watch.id, None) is None:
            return False
        if not any(w.group == watch.group for w in self._watches.values()):
            self._due.pop(watch.group, None)
            self._costs.pop(watch.group, None)
        return True

    async def fire(self, watch: Watch, reading: str, *, hold_for: float) -> OwedAlert | None:
        if not await self.end(watch):
            return None
        alert = OwedAlert(watch, reading, self.clock() + hold_for)
        self._owed[watch.id] = alert
        self._alert_tries[watch.id] = 1
        return alert

    async def hold_alert(self, alert: OwedAlert, *, hold_for: float) -> OwedAlert | None:
        held = self._owed.get(alert.watch.id)
        if held is None or held.fence != alert.fence:
            return None
        renewed = replace(held, fence=max(held.fence, self.clock() + hold_for))
        self._owed[alert.watch.id] = renewed
        return renewed

    async def alert_posted(self, alert: OwedAlert) -> None:
        self._owed.pop(alert.watch.id, None)
        self._alert_tries.pop(alert.watch.id, None)

    async def claim_owed_alerts(self, *, hold_for: float, limit: int) -> list[OwedAlert]:
        now = self.clock()
        taken: list[OwedAlert] = []
        for watch_id, alert in sorted(self._owed.items(), key=lambda item: item[1].fence):
            if alert.fence > now or len(taken) >= limit:
                continue
            self._alert_tries[watch_id] = self._alert_tries.get(watch_id, 0) + 1
            if self._alert_tries[watch_id] > MAX_ALERT_TRIES:
                log.error("watch %s: its alert was dropped after %d tries to post it", watch_id, MAX_ALERT_TRIES)
                await self.alert_posted(alert)
                continue
            self._owed[watch_id] = replace(alert, fence=now + hold_for)
            taken.append(self._owed[watch_id])
        return taken

    async def record_poll(self, watch: Watch, claim: Claim, *, ok: bool) -> PollNotice:
        stored = self._watches.get(watch.id)
        if stored is None or self._due.get(claim.group) != claim.fence:
            return "none"
        after, notice = after_poll(stored, ok)
        self._watches[watch.id] = after
        return notice

    async def claim_due(self, *, hold_for: float, limit: int) -> list[Claim]:
        now = self.clock()
        due = sorted((at, group) for group, at in self._due.items() if at <= now)[:limit]
        for _, group in due:
            self._due[group] = now + hold_for
        return [Claim(group, at, now, now + hold_for) for at, group in due]

    async def renew(self, claim: Claim, *, hold_for: float) -> Claim | None:
        if self._due.get(claim.group) != claim.fence:
            return None
        fence = max(claim.fence, self.clock() + hold_for)
        self._due[claim.group] = fence
        return replace(claim, fence=fence)

    async def finish(self, claim: Claim, *, next_due: float, cost: int) -> None:
        if self._due.get(claim.group) == claim.fence:
            self._due[claim.group] = next_due
            self._costs[claim.group] = cost

    async def schedule_missing(self, first_due_in: Mapping[str, float]) -> int:
        missing = [group for group in first_due_in if group not in self._due]
        for group in missing:
            self._due[group] = self.clock() + first_due_in[group]
        return len(missing)

    async def costs(self) -> dict[str, int]:
        return {group: self._costs.get(group, 1) for group in self._due}

    async def next_due_in(self) -> float | None:
        if not self._due:
            return None
        return min(self._due.values()) - self.clock()

    async def count(self) -> int:
        return len(self._watches)


# KEYS: watch, all, team, conv, group set, due, cost. ARGV: id, json, per conversation, per workspace, group,
# first due in ms, until (epoch s), now (epoch s: the limits count watches whose until is later).
_ADD = (
    PRELUDE
    + """
local live = '(' .. ARGV[8]
if redis.call('ZCOUNT', KEYS[4], live, '+inf') >= tonumber(ARGV[3]) then return -1 end
if redis.call('ZCOUNT', KEYS[3], live, '+inf') >= tonumber(ARGV[4]) then return -2 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[7], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[1])
redis.call('ZADD', KEYS[6], 'NX', now + tonumber(ARGV[6]), ARGV[5])
return 1
"""
)

# KEYS as _ADD. ARGV: id, group. Removes the watch; false unless this caller's DEL removed it.
_REMOVE = """
if redis.call('DEL', KEYS[1]) == 0 then return false end
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('SREM', KEYS[5], ARGV[1])
if redis.call('SCARD', KEYS[5]) == 0 then
  redis.call('ZREM', KEYS[6], ARGV[2])
  redis.call('HDEL', KEYS[7], ARGV[2])
end
"""

# Only the caller whose DEL removed the watch gets 1.
_END = _REMOVE + "return 1\n"

# KEYS as _ADD, then owed, held, tries. ARGV: id, group, the alert's JSON, hold ms. The fence (held until, ms)
# for the one caller whose DEL ended the watch; false for the others.
_FIRE = (
    PRELUDE
    + _REMOVE
    + """
redis.call('HSET', KEYS[8], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[9], now + tonumber(ARGV[4]), ARGV[1])
redis.call('HSET', KEYS[10], ARGV[1], 1)
return tostring(now + tonumber(ARGV[4]))
"""
)

# KEYS: owed, held, tries. ARGV: hold ms, limit, most tries. Returns {now, id, alert, id, alert, ...} for the
# alerts taken (each now held until now + hold) and, after a '' marker, the IDs dropped for too many tries.
_CLAIM_OWED = (
    PRELUDE
    + """
local out = {tostring(now)}
local dropped = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))) do
  local alert = redis.call('HGET', KEYS[1], id)
  if alert and redis.call('HINCRBY', KEYS[3], id, 1) <= tonumber(ARGV[3]) then
    redis.call('ZADD', KEYS[2], 'XX', now + tonumber(ARGV[1]), id)
    table.insert(out, id)
    table.insert(out, alert)
  else
    redis.call('HDEL', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
    table.insert(dropped, id)
  end
end
table.insert(out, '')
for _, id in ipairs(dropped) do table.insert(out, id) end
return out
"""
)

# KEYS: watch, due. ARGV: group, fence, the JSON the caller read, the JSON after the poll. 1: written;
# 0: the watch changed since it was read (read again); -1: the watch or the claim is gone (nothing to do).
_RECORD_POLL = """
local fence = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not fence or tonumber(fence) ~= tonumber(ARGV[2]) then return -1 end
local stored = redis.call('GET', KEYS[1])
if not stored then return -1 end
if stored ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[4])
return 1
"""

# KEYS: due. ARGV: hold ms, limit. Returns {now, group, due, group, due, ...}; each claim's fence is now + hold.
_CLAIM = (
    PRELUDE
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

# KEYS: due (or the owed alerts' holds). ARGV: group (alert), fence, hold ms. The new fence, or false when the
# claim (hold) is no longer this one.
_RENEW = (
    PRELUDE
    + """
local fence = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not fence or tonumber(fence) ~= tonumber(ARGV[2]) then return false end
local renewed = math.max(tonumber(ARGV[2]), now + tonumber(ARGV[3]))
redis.call('ZADD', KEYS[1], 'XX', renewed, ARGV[1])
return tostring(renewed)
"""
)

# KEYS: due, cost. ARGV: group, fence, next due ms, cost.
_FINISH = """
local fence = redis.call('ZSCORE', KEYS[1], ARGV[1])
if fence and tonumber(fence) == tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
end
return 0
"""

# KEYS: due. ARGV: group, due in ms, group, due in ms, ... How many groups had no schedule.
_SCHEDULE_MISSING = (
    PRELUDE
    + """
local added = 0
for i = 1, #ARGV, 2 do
  added = added + redis.call('ZADD', KEYS[1], 'NX', now + tonumber(ARGV[i + 1]), ARGV[i])
end
return added
"""
)

_NEXT_DUE = (
    PRELUDE
    + """
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #first == 0 then return false end
return tostring(tonumber(first[2]) - now)
"""
)

_RECORD_ATTEMPTS = 5  # a watch changes between read and write only when a Stop or a sweep races the poll


class RedisWatchStore:
    """Watches shared by every replica; Redis errors propagate (the caller pauses or refuses, never forks)."""

    def __init__(self, redis: Redis, *, prefix: str, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._prefix = prefix
        self._clock = clock
        self._all = f"{prefix}watches:all"
        self._due = f"{prefix}watch-due"
        self._cost = f"{prefix}watch-cost"
        self._owed = [f"{prefix}watch-alerts-owed", f"{prefix}watch-alerts-held", f"{prefix}watch-alerts-tries"]
        self._add = redis.register_script(_ADD)
        self._fire = redis.register_script(_FIRE)
        self._claim_owed = redis.register_script(_CLAIM_OWED)
        self._end = redis.register_script(_END)
        self._record_poll = redis.register_script(_RECORD_POLL)
        self._claim = redis.register_script(_CLAIM)
        self._renew = redis.register_script(_RENEW)
        self._finish = redis.register_script(_FINISH)
        self._schedule_missing = redis.register_script(_SCHEDULE_MISSING)
        self._next_due = redis.register_script(_NEXT_DUE)

    def _watch_key(self, watch_id: str) -> str:
        return f"{self._prefix}watch:{watch_id}"

    def _conv_key(self, team_id: str, channel_id: str) -> str:
        return f"{self._prefix}watches:byconv:{team_id}:{channel_id}"

    def _group_key(self, group: str) -> str:
        return f"{self._prefix}watches:group:{group}"

    def _keys(self, watch: Watch) -> list[str]:
        return [
            self._watch_key(watch.id),
            self._all,
            f"{self._prefix}watches:byteam:{watch.team_id}",
            self._conv_key(watch.team_id, watch.channel_id),
            self._group_key(watch.group),
            self._due,
            self._cost,
        ]

    async def add(self, watch: Watch, *, limits: Limits, first_due_in: float) -> None:
        args: list[str | int | float] = [watch.id, watch.to_json(), limits.per_conversation, limits.per_workspace]
        args += [watch.group, round(first_due_in * 1000), repr(watch.until), repr(self._clock())]
        result = int(await self._add(keys=self._keys(watch), args=args))
        if result == -1:
            raise WatchLimitReached(conversation_limit(limits.per_conversation))
        if result == -2:
            raise WatchLimitReached(workspace_limit(limits.per_workspace))

    async def get(self, watch_id: str) -> Watch | None:
        if not is_watch_id(watch_id):
            return None
        raw = await self._redis.get(self._watch_key(watch_id))
        return None if raw is None else Watch.from_json(raw)

    async def _load_ids(self, ids: list[str]) -> list[Watch]:
        found: list[Watch] = []
        for start in range(0, len(ids), 500):
            values = await self._redis.mget([self._watch_key(watch_id) for watch_id in ids[start : start + 500]])
            found += [Watch.from_json(raw) for raw in values if raw is not None]
        return found

    async def in_conversation(self, team_id: str, channel_id: str) -> list[Watch]:
        members = await self._redis.zrange(self._conv_key(team_id, channel_id), 0, -1)
        ids = sorted(_text(member) for member in members if isinstance(member, bytes | str))
        found = await self._load_ids(ids)
        return sorted(found, key=lambda w: (w.created_at, w.id))

    async def in_group(self, group: str) -> list[Watch]:
        return await self._load_ids(
            sorted(_text(member) for member in await self._redis.smembers(self._group_key(group)))
        )

    async def all_watches(self) -> list[Watch]:
        ids = [_text(member) async for member in self._redis.sscan_iter(self._all, count=500)]
        return await self._load_ids(sorted(set(ids)))

    async def end(self, watch: Watch) -> bool:
        return bool(await self._end(keys=self._keys(watch), args=[watch.id, watch.group]))

    async def fire(self, watch: Watch, reading: str, *, hold_for: float) -> OwedAlert | None:
        kept = json.dumps({"watch": watch.to_json(), "reading": reading})
        args: list[str | int] = [watch.id, watch.group, kept, _ms(hold_for)]
        fence = await self._fire(keys=self._keys(watch) + self._owed, args=args)
        return None if fence is None else OwedAlert(watch, reading, float(fence))

    async def hold_alert(self, alert: OwedAlert, *, hold_for: float) -> OwedAlert | None:
        args: list[str | int] = [alert.watch.id, repr(alert.fence), _ms(hold_for)]
        fence = await self._renew(keys=[self._owed[1]], args=args)
        return None if fence is None else replace(alert, fence=float(fence))

    async def alert_posted(self, alert: OwedAlert) -> None:
        await self._forget_alert(alert.watch.id)

    async def _forget_alert(self, watch_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._owed[0], watch_id)
            pipe.zrem(self._owed[1], watch_id)
            pipe.hdel(self._owed[2], watch_id)
            await pipe.execute()

    async def claim_owed_alerts(self, *, hold_for: float, limit: int) -> list[OwedAlert]:
        raw = [
            _text(item)
            for item in await self._claim_owed(keys=self._owed, args=[_ms(hold_for), limit, MAX_ALERT_TRIES])
        ]
        fence = float(raw[0]) + _ms(hold_for)
        marker = raw.index("", 1)
        taken = []
        for index in range(1, marker, 2):
            try:
                kept = json.loads(raw[index + 1])
                taken.append(OwedAlert(Watch.from_json(kept["watch"]), str(kept["reading"]), fence))
            except (ValueError, KeyError, TypeError):  # not what any version of ours writes: never post it
                log.error("watch %s: its owed alert is unreadable and was dropped", raw[index])
                await self._forget_alert(raw[index])
        for watch_id in raw[marker + 1 :]:
            log.error("watch %s: its alert was dropped after %d tries to post it", watch_id, MAX_ALERT_TRIES)
        return taken

    async def record_poll(self, watch: Watch, claim: Claim, *, ok: bool) -> PollNotice:
        keys = [self._watch_key(watch.id), self._due]
        seen: Watch | None = watch
        for _ in range(_RECORD_ATTEMPTS):
            if seen is None:
                return "none"
            raw = await self._redis.get(self._watch_key(watch.id))
            if raw is None:
                return "none"
            seen = Watch.from_json(raw)
            after, notice = after_poll(seen, ok)
            if after == seen:
                return "none"
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            result = int(await self._record_poll(keys=keys, args=[claim.group, claim.fence, text, after.to_json()]))
            if result == 1:
                return notice
            if result == -1:
                return "none"
        return "none"

    async def claim_due(self, *, hold_for: float, limit: int) -> list[Claim]:
        hold_ms = max(1, round(hold_for * 1000))
        raw = await self._claim(keys=[self._due], args=[hold_ms, limit])
        now_ms = float(raw[0])
        claims = []
        for index in range(1, len(raw), 2):
            claims.append(Claim(_text(raw[index]), float(raw[index + 1]) / 1000, now_ms / 1000, now_ms + hold_ms))
        return claims

    async def renew(self, claim: Claim, *, hold_for: float) -> Claim | None:
        raw = await self._renew(keys=[self._due], args=[claim.group, repr(claim.fence), max(1, round(hold_for * 1000))])
        return None if raw is None else replace(claim, fence=float(raw))

    async def finish(self, claim: Claim, *, next_due: float, cost: int) -> None:
        args: list[str | int] = [claim.group, repr(claim.fence), round(next_due * 1000), cost]
        await self._finish(keys=[self._due, self._cost], args=args)

    async def schedule_missing(self, first_due_in: Mapping[str, float]) -> int:
        if not first_due_in:
            return 0
        args: list[str | int] = []
        for group, due_in in first_due_in.items():
            args += [group, round(due_in * 1000)]
        return int(await self._schedule_missing(keys=[self._due], args=args))

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


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
