"""The watch loop: take due poll groups from the store, read each room once from ZIM (background priority),
and end every watch whose condition came true (posting its alert), or whose time is up.

One poll per group (profile, room): count conditions share one QueryRoomUserList first page (its `Count`),
user conditions one QueryRoomMembers per 10 users. A room that does not exist or is being destroyed counts as
0 users with nobody in it. Polls of one app stretch evenly when the background share can't cover them all.
The loop sleeps until the next group is due (or a new watch wakes it); with Redis, exactly one replica polls
a group at a time (the store's claim), and a dead replica's claims lapse within an interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from bot.observability.metrics import WATCH_POLL_LAG_SECONDS, WATCH_ZIM_REQUESTS, WATCHES_ACTIVE
from bot.state.health import REDIS_UNAVAILABLE
from bot.watch.budget import requests_per_poll, stretched_interval
from bot.watch.model import FAILURES_BEFORE_NOTICE, FirstCheck, Watch, split_group
from bot.watch.store import Claim, WatchStore
from bot.zim import ZimClient
from bot.zim.errors import RoomNotFound, ZimError
from bot.zim.members import MAX_MEMBERS_PER_CALL
from bot.zim.pacing import Priority
from bot.zim.wire import FIRST_CURSOR

log = logging.getLogger(__name__)

CLAIMS_PER_TURN = 64
MAX_POLLS_AT_ONCE = 32


@dataclass(frozen=True, slots=True)
class Reading:
    """What one poll saw: the room's count (None: not read, only users were asked about), and which asked users
    are in it (user ID → name). `names` adds names seen in earlier polls, for a user who has just left."""

    count: int | None
    present: Mapping[str, str] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)

    def holds(self, watch: Watch) -> bool:
        return watch.condition.is_true(self.count or 0, self.present)

    def name_of(self, user_id: str) -> str | None:
        return self.present.get(user_id, self.names.get(user_id))


class WatchNotifier(Protocol):
    """Tells the conversation (the Slack side implements it); each call is made once per watch event."""

    async def alert(self, watch: Watch, reading: Reading) -> None: ...

    async def checking_failed(self, watch: Watch, problem: str) -> None: ...

    async def checking_works(self, watch: Watch) -> None: ...

    async def expired(self, watch: Watch) -> None: ...


@dataclass(frozen=True, slots=True)
class ZegoTarget:
    """One ZEGO app as the poller sees it: the client it reads with and the app's rate."""

    client: ZimClient
    qps: float


async def read_count(client: ZimClient, profile: str, room_id: str, *, priority: Priority) -> int:
    """The room's user count from ZIM's first page (a room that does not exist or is being destroyed: 0)."""
    WATCH_ZIM_REQUESTS.labels(profile, "QueryRoomUserList").inc()
    try:
        page = await client.query_page(room_id, mode=0, cursor=FIRST_CURSOR, priority=priority)
    except RoomNotFound:
        return 0
    return 0 if page.being_destroyed else page.count


async def read_room(
    client: ZimClient, profile: str, room_id: str, watches: list[Watch], *, priority: Priority
) -> Reading:
    """One poll of a room for `watches`; ZimError when ZIM can't answer (room gone = 0 users, not an error)."""
    count = None
    if any(not watch.condition.needs_members for watch in watches):
        count = await read_count(client, profile, room_id, priority=priority)
    asked = list(dict.fromkeys(w.condition.user_id for w in watches if w.condition.needs_members))
    present: dict[str, str] = {}
    for start in range(0, len(asked), MAX_MEMBERS_PER_CALL):
        WATCH_ZIM_REQUESTS.labels(profile, "QueryRoomMembers").inc()
        try:
            members = await client.query_members(
                room_id, asked[start : start + MAX_MEMBERS_PER_CALL], priority=priority
            )
        except RoomNotFound:
            break  # nobody is in a room that does not exist
        present.update((member.user_id, member.user_name) for member in members.present)
    return Reading(count=count, present=present)


def poll_cost(watches: list[Watch]) -> int:
    users = {w.condition.user_id for w in watches if w.condition.needs_members}
    return requests_per_poll(counts=any(not w.condition.needs_members for w in watches), user_ids=len(users))


class WatchPoller:
    def __init__(
        self,
        store: WatchStore,
        targets: Mapping[str, ZegoTarget],
        notifier: WatchNotifier,
        *,
        interval: float,
        share: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._targets = targets
        self._notifier = notifier
        self.interval = interval
        self._share = share
        self._clock = clock
        self._wake = asyncio.Event()
        self._polling: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_POLLS_AT_ONCE)
        self._runner: asyncio.Task[None] | None = None
        self._store_down = False
        # Names of watched users seen in this replica's polls, so a "left" alert can name who left.
        self._names: dict[tuple[str, str], str] = {}
        # What this replica did, for tests and the benchmark: the claims it polled, and loop turns taken.
        self.polled: deque[Claim] = deque(maxlen=1000)
        self.turns = 0

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.create_task(self.run(), name="watch-poller")

    async def aclose(self, *, grace: float = 0.0) -> None:
        """Stop polling. Polls under way get `grace` seconds to finish (so an alert whose watch has just ended is
        still posted), then are cancelled; their claims lapse and other replicas take the groups over."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        if self._tasks and grace > 0:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def polling(self) -> frozenset[str]:
        """The groups this replica is polling right now."""
        return frozenset(self._polling)

    def wake(self) -> None:
        """A watch was added: look at the schedule again now."""
        self._wake.set()

    # -- the budget ----------------------------------------------------------------------------------

    async def intervals(self) -> dict[str, float]:
        """The interval each app's groups really poll at (stretched when the background share is short)."""
        costs = await self.store.costs()
        by_profile: dict[str, list[int]] = {name: [] for name in self._targets}
        for group, cost in costs.items():
            by_profile.setdefault(split_group(group)[0], []).append(cost)
        return {
            name: stretched_interval(self.interval, group_costs, qps=self._qps(name), share=self._share)
            for name, group_costs in by_profile.items()
        }

    def _qps(self, profile: str) -> float:
        target = self._targets.get(profile)
        return target.qps if target is not None else 1.0

    # -- the loop ------------------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            self._wake.clear()
            self.turns += 1
            try:
                intervals = await self.intervals()
                hold = max([*intervals.values(), self.interval])
                claims = await self.store.claim_due(hold_for=hold, limit=CLAIMS_PER_TURN)
                for claim in claims:
                    self._spawn(claim, intervals.get(split_group(claim.group)[0], self.interval))
                WATCHES_ACTIVE.set(await self.store.count())
                if len(claims) == CLAIMS_PER_TURN:
                    continue
                due_in = await self.store.next_due_in()
                self._store_back()
            except REDIS_UNAVAILABLE as error:
                self._store_lost(error)
                due_in = self.interval
            wait = self.interval if due_in is None else min(max(due_in, 0.01), self.interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def _store_lost(self, error: BaseException) -> None:
        if not self._store_down:
            log.warning("watches paused: the watch store (Redis) is unreachable (%s)", type(error).__name__)
        self._store_down = True

    def _store_back(self) -> None:
        if self._store_down:
            log.info("watches resumed: the watch store (Redis) answers again")
        self._store_down = False

    def _spawn(self, claim: Claim, interval: float) -> None:
        if claim.group in self._polling:  # still polling it: its next due time is set when that poll ends
            return
        self._polling.add(claim.group)
        task = asyncio.create_task(self._poll_claimed(claim, interval), name="watch-poll")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _poll_claimed(self, claim: Claim, interval: float) -> None:
        WATCH_POLL_LAG_SECONDS.observe(claim.lag)
        self.polled.append(claim)
        cost = 1
        try:
            async with self._slots:
                cost = await self.poll_group(claim.group)
        except REDIS_UNAVAILABLE as error:
            self._store_lost(error)
        except Exception:
            log.exception("watch poll of a group failed unexpectedly")
        finally:
            self._polling.discard(claim.group)
        # Anchored to the due time, so groups keep their places in the interval (spread stays spread).
        next_due = claim.due + interval
        if next_due <= claim.now:
            next_due = claim.now + interval
        with contextlib.suppress(*REDIS_UNAVAILABLE):
            await self.store.finish(claim.group, next_due=next_due, cost=cost)

    async def poll_group(self, group: str) -> int:
        """Poll one group now (background priority); return its cost in ZIM requests."""
        profile, room_id = split_group(group)
        live = await self._unexpired(await self.store.in_group(group))
        target = self._targets.get(profile)
        if not live or target is None:
            return 1
        try:
            reading = await read_room(target.client, profile, room_id, live, priority="background")
        except ZimError as error:
            for watch in live:
                await self._failed(watch, str(error))
            return poll_cost(live)
        reading = self._remember_names(group, reading)
        for watch in live:
            await self._settle(watch, reading, target)
        return poll_cost(live)

    def _remember_names(self, group: str, reading: Reading) -> Reading:
        if len(self._names) > 10_000:  # bounded: only a nicety for the alert's text
            self._names.clear()
        self._names.update(((group, user_id), name) for user_id, name in reading.present.items())
        names = {user_id: name for (seen_in, user_id), name in self._names.items() if seen_in == group}
        return replace(reading, names=names)

    async def _alert(self, watch: Watch, reading: Reading, target: ZegoTarget, priority: Priority) -> None:
        """Post the alert; a user condition's alert also says how many are in the room (one more request)."""
        if reading.count is None:
            with contextlib.suppress(ZimError):
                reading = replace(
                    reading, count=await read_count(target.client, watch.profile, watch.room_id, priority=priority)
                )
        await self._tell(self._notifier.alert(watch, reading))

    async def first_check(self, watch: Watch) -> FirstCheck:
        """The check made right when a watch is set (interactive: the person setting it waits for it)."""
        target = self._targets.get(watch.profile)
        if target is None:
            return "failed"
        try:
            reading = await read_room(target.client, watch.profile, watch.room_id, [watch], priority="interactive")
        except ZimError:
            return "failed"
        if not reading.holds(watch):
            return "waiting"
        if not await self.store.end(watch):
            return "ended"
        await self._alert(watch, reading, target, "interactive")
        return "fired"

    async def _unexpired(self, watches: list[Watch]) -> list[Watch]:
        now = self._clock()
        live = []
        for watch in watches:
            if not watch.expired(now):
                live.append(watch)
            elif await self.store.end(watch):
                await self._tell(self._notifier.expired(watch))
        return live

    async def _settle(self, watch: Watch, reading: Reading, target: ZegoTarget) -> None:
        if reading.holds(watch):
            if await self.store.end(watch):
                await self._alert(watch, reading, target, "background")
            return
        if watch.consecutive_failures or watch.failure_notice_posted:
            await self.store.update(watch.after_poll(ok=True))
            if watch.failure_notice_posted:
                await self._tell(self._notifier.checking_works(watch))

    async def _failed(self, watch: Watch, problem: str) -> None:
        after = watch.after_poll(ok=False)
        notice = after.consecutive_failures >= FAILURES_BEFORE_NOTICE and not after.failure_notice_posted
        if notice:
            after = replace(after, failure_notice_posted=True)
        await self.store.update(after)
        if notice:
            await self._tell(self._notifier.checking_failed(watch, problem))

    async def _tell(self, call: Awaitable[None]) -> None:
        """Await a notifier call; a failure to post is the notifier's to count, never the loop's end."""
        try:
            await call
        except Exception:
            log.exception("a watch notice could not be sent")
