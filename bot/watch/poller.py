"""The watch loop: take due poll groups from the store, read each room once from ZIM (background priority),
and end every watch whose condition came true (posting its alert), or whose time is up.

One poll per group (profile, room): count conditions share one QueryRoomUserList first page (its `Count`),
user conditions one QueryRoomMembers per 10 users. A room that does not exist or is being destroyed counts as
0 users with nobody in it. Polls of one app stretch evenly when the background share can't cover them all.
The loop sleeps until the next group is due (or a new watch wakes it, or a poll slot frees); it claims only as
many groups as it has free poll slots. With Redis, exactly one replica polls a group at a time: the store's
claim, renewed while the poll runs and fencing every write the poll makes, so a claim that lapsed (a stalled
replica) can't overwrite the new holder's schedule or post a second notice; a dead replica's claims lapse
within one hold. A periodic sweep ends expired watches and reschedules any group whose schedule went missing.

A watch that fires is ended and its alert made owed in one step (only one caller can). The poster holds the
owed alert while it posts, renews the hold right before calling Slack (an alert another caller has taken over is
left to it), and deletes it once posted, retrying through a Redis blip. A replica that dies before posting stops
holding it and another replica posts it (the loop looks every third of `ALERT_HOLD`). So an alert is not lost
to a dying replica; it is posted twice only if its poster dies between Slack's answer and the delete, or loses
Redis for a whole hold while Slack takes the post. Shutdown never cancels a post.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from bot.observability.metrics import WATCH_POLL_LAG_SECONDS, WATCH_ZIM_REQUESTS, WATCHES_ACTIVE
from bot.state.health import REDIS_UNAVAILABLE
from bot.watch.budget import next_due, requests_per_poll, spread_offset, stretched_interval
from bot.watch.model import FirstCheck, Watch, split_group
from bot.watch.store import Claim, OwedAlert, PollNotice, WatchStore
from bot.zim import ZimClient
from bot.zim.errors import RoomNotFound, SendSlotWaitExhausted, ZimError
from bot.zim.members import MAX_MEMBERS_PER_CALL
from bot.zim.pacing import Priority
from bot.zim.wire import FIRST_CURSOR

log = logging.getLogger(__name__)

CLAIMS_PER_TURN = 64
MAX_POLLS_AT_ONCE = 32
RENEWALS_PER_HOLD = 3  # a claim is renewed this often within its hold, so one slow renewal never loses it
ALERT_HOLD = 15.0  # an owed alert's poster holds it this long (renewed); a dead poster's alert waits this long
SWEEP_SECONDS = 300.0  # how often the sweep looks at every stored watch (cheap: one SSCAN, MGETs)


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

    def for_alert(self, watch: Watch) -> Reading:
        """Only what `watch`'s alert shows: the count and, for a user condition, that user's name."""
        if not watch.condition.needs_members:
            return Reading(count=self.count)
        user_id = watch.condition.user_id
        present = {user_id: self.present[user_id]} if user_id in self.present else {}
        name = self.name_of(user_id)
        return Reading(count=self.count, present=present, names={} if name is None else {user_id: name})

    def to_json(self) -> str:
        kept = {"count": self.count, "present": dict(self.present), "names": dict(self.names)}
        return json.dumps(kept, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Reading:
        kept = json.loads(text)
        return cls(
            count=kept.get("count"), present=dict(kept.get("present") or {}), names=dict(kept.get("names") or {})
        )


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


@dataclass(frozen=True, slots=True)
class PollSpan:
    """One poll this replica made of a group, from when it started to when it ended (monotonic clock)."""

    group: str
    started: float
    ended: float


@dataclass
class _HeldAlert:
    """An owed alert this caller posts: its latest hold, until when (monotonic) that hold surely lasts, and
    `lost` once another caller has taken the alert over (or it was posted and forgotten)."""

    alert: OwedAlert
    deadline: float
    lost: bool = False


@dataclass
class _Held:
    """The claim a poll runs under, replaced by each renewal; `lost` once another replica may have the group."""

    claim: Claim
    lost: bool = False


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
        sweep_every: float = SWEEP_SECONDS,
    ) -> None:
        self.store = store
        self._targets = targets
        self._notifier = notifier
        self.interval = interval
        self._share = share
        self._clock = clock
        self._sweep_every = sweep_every
        self._swept_at: float | None = None
        self._owed_checked_at: float | None = None
        self.alert_hold = ALERT_HOLD
        self._wake = asyncio.Event()
        self._polling: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._posts: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._store_down = False
        # Names of watched users seen in this replica's polls, per group, so a "left" alert can name who left;
        # a group's names are dropped when its last watch ends.
        self._names: dict[str, dict[str, str]] = {}
        # What this replica did, for tests and the benchmark: the claims it polled, each poll's span, loop turns
        # taken, polls skipped for want of our own send slot, and sweeps made.
        self.polled: deque[Claim] = deque(maxlen=1000)
        self.spans: deque[PollSpan] = deque(maxlen=1000)
        self.turns = 0
        self.skipped = 0
        self.sweeps = 0
        self.alerts_left = 0  # alerts not posted here because another caller took them over (or posted them)

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.create_task(self.run(), name="watch-poller")

    async def aclose(self, *, grace: float = 0.0) -> None:
        """Stop polling. Polls under way get `grace` seconds to finish, then are cancelled; their claims lapse and
        other replicas take the groups over. A post whose watch has already ended is never cancelled: it is
        awaited (Slack's own timeouts bound it), since no replica could post it again."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        if self._tasks and grace > 0:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*self._posts, return_exceptions=True)

    @property
    def polling(self) -> frozenset[str]:
        """The groups this replica is polling right now."""
        return frozenset(self._polling)

    def wake(self) -> None:
        """A watch was added (or a poll slot freed): look at the schedule again now."""
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
                await self._sweep_when_due()
                await self._take_over_alerts_when_due()
                intervals = await self.intervals()
                free = MAX_POLLS_AT_ONCE - len(self._polling)
                limit = min(CLAIMS_PER_TURN, free)
                claims: list[Claim] = []
                if limit > 0:  # backpressure: never claim a group there is no poll slot for
                    hold = max([*intervals.values(), self.interval])
                    claims = await self.store.claim_due(hold_for=hold, limit=limit)
                    for claim in claims:
                        self._spawn(claim, intervals.get(split_group(claim.group)[0], self.interval), hold)
                WATCHES_ACTIVE.set(await self.store.count())
                if limit > 0 and len(claims) == limit:
                    continue
                # No free slot: a finishing poll wakes the loop.
                due_in = self.interval if limit == 0 else await self.store.next_due_in()
                self._store_back()
            except REDIS_UNAVAILABLE as error:
                self._store_lost(error)
                due_in = self.interval
            except Exception:
                log.exception("a watch loop turn failed unexpectedly; the loop goes on")
                due_in = self.interval
            wait = self.interval if due_in is None else min(max(due_in, 0.01), self.interval)
            wait = min(wait, self._owed_check_every)  # alerts a dead replica owed are taken over on time
            # asyncio.timeout, not wait_for: 3.11's wait_for swallows a cancel that races a wake (a poll ending).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    def _store_lost(self, error: BaseException) -> None:
        if not self._store_down:
            log.warning("watches paused: the watch store (Redis) is unreachable (%s)", type(error).__name__)
        self._store_down = True

    def _store_back(self) -> None:
        if self._store_down:
            log.info("watches resumed: the watch store (Redis) answers again")
        self._store_down = False

    def _spawn(self, claim: Claim, interval: float, hold: float) -> None:
        if claim.group in self._polling:  # still polling it: its next due time is set when that poll ends
            return
        self._polling.add(claim.group)
        task = asyncio.create_task(self._poll_claimed(claim, interval, hold), name="watch-poll")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _poll_claimed(self, claim: Claim, interval: float, hold: float) -> None:
        claimed = time.monotonic()
        held = _Held(claim)
        keeper = asyncio.create_task(self._keep(held, hold), name="watch-claim-keeper")
        # The slot is taken before the claim (backpressure), so the poll starts now: its lag is real.
        WATCH_POLL_LAG_SECONDS.observe(claim.lag + (time.monotonic() - claimed))
        self.polled.append(claim)
        cost = 1
        try:
            cost = await self.poll_group(claim.group, held)
        except REDIS_UNAVAILABLE as error:
            self._store_lost(error)
        except Exception:
            log.exception("watch poll of a group failed unexpectedly")
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            self._polling.discard(claim.group)
            self.spans.append(PollSpan(claim.group, claimed, time.monotonic()))
            self.wake()  # a poll slot is free again
        # Each group keeps its own place in the interval, also after a stall (spread stays spread).
        ended_at = claim.now + (time.monotonic() - claimed)  # the store's clock, near enough
        upcoming = next_due(claim.due, max(ended_at, claim.due), interval)
        with contextlib.suppress(*REDIS_UNAVAILABLE):
            await self.store.finish(held.claim, next_due=upcoming, cost=cost)

    async def _keep(self, held: _Held, hold: float) -> None:
        """Renew the claim while its poll runs, however long ZIM (or the wait for a send slot) takes."""
        while True:
            await asyncio.sleep(hold / RENEWALS_PER_HOLD)
            try:
                renewed = await self.store.renew(held.claim, hold_for=hold)
            except REDIS_UNAVAILABLE:
                continue  # the fence still holds until the hold runs out; the next renewal may get through
            if renewed is None:
                held.lost = True
                log.warning("a watch poll outlasted its claim; its results are dropped")
                return
            held.claim = renewed

    async def poll_group(self, group: str, held: _Held) -> int:
        """Poll one group now (background priority) under its claim; return its cost in ZIM requests."""
        profile, room_id = split_group(group)
        live = await self._unexpired(await self.store.in_group(group))
        target = self._targets.get(profile)
        if not live or target is None:
            self._names.pop(group, None)
            return 1
        try:
            reading = await read_room(target.client, profile, room_id, live, priority="background")
        except SendSlotWaitExhausted:
            # Our own requests had the app's rate; ZIM said nothing, so this is no failed poll: try next time.
            self.skipped += 1
            return poll_cost(live)
        except ZimError as error:
            for watch in live:
                await self._record(watch, held, ok=False, problem=str(error))
            return poll_cost(live)
        if held.lost:
            return poll_cost(live)
        reading = self._remember_names(group, reading)
        ended = 0
        for watch in live:
            ended += await self._settle(watch, reading, target, held)
        if ended == len(live):
            self._names.pop(group, None)
        return poll_cost(live)

    def _remember_names(self, group: str, reading: Reading) -> Reading:
        names = self._names.setdefault(group, {})
        names.update(reading.present)
        return replace(reading, names=dict(names))

    async def _sweep_when_due(self) -> None:
        now = time.monotonic()
        if self._swept_at is not None and now - self._swept_at < self._sweep_every:
            return
        self._swept_at = now
        await self.sweep()

    async def sweep(self) -> None:
        """End every expired watch (with its note), and give each group that has watches but lost its schedule
        (evicted, deleted by hand) a due time again, spread over the interval as a new group's would be."""
        self.sweeps += 1
        groups: dict[str, float] = {}
        for watch in await self._unexpired(await self.store.all_watches()):
            groups.setdefault(watch.group, spread_offset(watch.group, self.interval))
        if await self.store.schedule_missing(groups):
            log.warning("watches: rescheduled poll groups whose schedule was missing")
        known = set(groups)
        for group in [group for group in self._names if group not in known]:
            del self._names[group]

    @property
    def _owed_check_every(self) -> float:
        return min(self.interval, self.alert_hold / RENEWALS_PER_HOLD)

    async def _take_over_alerts_when_due(self) -> None:
        """Post the owed alerts nobody holds any more (their replica died before posting them)."""
        now = time.monotonic()
        if self._owed_checked_at is not None and now - self._owed_checked_at < self._owed_check_every:
            return
        self._owed_checked_at = now
        for alert in await self.store.claim_owed_alerts(hold_for=self.alert_hold, limit=CLAIMS_PER_TURN):
            log.warning("watch %s: posting the alert that a stopped replica had not posted", alert.watch.id)
            target = self._targets.get(alert.watch.profile)
            self._start_post(alert, Reading.from_json(alert.reading), target, "background")

    async def _fire(self, watch: Watch, reading: Reading, target: ZegoTarget, priority: Priority) -> bool:
        """End the watch because it came true and post its alert; False when another caller ended it first.
        The post runs as its own task that shutdown never cancels (`aclose` awaits it)."""
        alert = await self.store.fire(watch, reading.for_alert(watch).to_json(), hold_for=self.alert_hold)
        if alert is None:
            return False
        await asyncio.shield(self._start_post(alert, reading, target, priority))
        return True

    def _start_post(
        self, alert: OwedAlert, reading: Reading, target: ZegoTarget | None, priority: Priority
    ) -> asyncio.Task[None]:
        post = asyncio.create_task(self._post_alert(alert, reading, target, priority), name="watch-alert")
        self._posts.add(post)
        post.add_done_callback(self._posts.discard)
        return post

    async def _post_alert(
        self, alert: OwedAlert, reading: Reading, target: ZegoTarget | None, priority: Priority
    ) -> None:
        """Post an owed alert while holding it, then forget it, still holding it until the store has heard.
        Never raises: what is not posted stays owed, for a take-over."""
        held = _HeldAlert(alert, deadline=time.monotonic() + self.alert_hold)
        keeper = asyncio.create_task(self._hold_alert(held), name="watch-alert-keeper")
        try:
            if await self._post_if_held(held, reading, target, priority):
                await self._forget_posted(held)
        except Exception:
            log.exception("watch %s: its alert could not be posted; it stays owed", alert.watch.id)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

    async def _post_if_held(
        self, held: _HeldAlert, reading: Reading, target: ZegoTarget | None, priority: Priority
    ) -> bool:
        """A user condition's alert also says how many are in the room (one more request). The hold is renewed
        right before Slack is called: an alert another caller has taken over (or posted) is left to it."""
        watch = held.alert.watch
        if reading.count is None and target is not None:
            with contextlib.suppress(ZimError):
                reading = replace(
                    reading, count=await read_count(target.client, watch.profile, watch.room_id, priority=priority)
                )
        if not await self._renew_alert(held) and (held.lost or time.monotonic() >= held.deadline):
            self.alerts_left += 1
            log.warning("watch %s: another replica has its alert now; not posted here", watch.id)
            return False
        await self._tell(self._notifier.alert(watch, reading))
        return True

    async def _forget_posted(self, held: _HeldAlert) -> None:
        """Delete the posted alert, retrying through a Redis blip (the keeper holds it meanwhile), so nobody
        posts it again. Gives up after two holds, saying so."""
        give_up = time.monotonic() + 2 * self.alert_hold
        while True:
            try:
                await self.store.alert_posted(held.alert)
                return
            except REDIS_UNAVAILABLE as error:
                if time.monotonic() >= give_up:
                    log.warning(
                        "watch %s: posted, but the store did not hear so (%s); it may be posted again",
                        held.alert.watch.id,
                        type(error).__name__,
                    )
                    return
            await asyncio.sleep(0.25)

    async def _renew_alert(self, held: _HeldAlert) -> bool:
        """Push the hold ahead now; False when the store can't say (Redis) or another caller has the alert."""
        try:
            renewed = await self.store.hold_alert(held.alert, hold_for=self.alert_hold)
        except REDIS_UNAVAILABLE:
            return False
        if renewed is None:
            held.lost = True
            return False
        held.alert, held.deadline = renewed, time.monotonic() + self.alert_hold
        return True

    async def _hold_alert(self, held: _HeldAlert) -> None:
        """Renew the hold on an owed alert while it is posted (Slack's rate limits can take a while)."""
        while not held.lost:
            await asyncio.sleep(self.alert_hold / RENEWALS_PER_HOLD)
            await self._renew_alert(held)

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
        return "fired" if await self._fire(watch, reading, target, "interactive") else "ended"

    async def _unexpired(self, watches: list[Watch]) -> list[Watch]:
        now = self._clock()
        live = []
        for watch in watches:
            if not watch.expired(now):
                live.append(watch)
            elif await self.store.end(watch):
                await self._tell(self._notifier.expired(watch))
        return live

    async def _settle(self, watch: Watch, reading: Reading, target: ZegoTarget, held: _Held) -> int:
        """End the watch if its condition holds (1: it ended), else count the poll that worked (0)."""
        if reading.holds(watch):
            return 1 if await self._fire(watch, reading, target, "background") else 0
        await self._record(watch, held, ok=True)
        return 0

    async def _record(self, watch: Watch, held: _Held, *, ok: bool, problem: str = "") -> None:
        """Count the poll under the claim; post the notice it made due, which the store gives one caller only."""
        if held.lost:
            return
        notice: PollNotice = await self.store.record_poll(watch, held.claim, ok=ok)
        if notice == "failing":
            await self._tell(self._notifier.checking_failed(watch, problem))
        elif notice == "works":
            await self._tell(self._notifier.checking_works(watch))

    async def _tell(self, call: Awaitable[None]) -> None:
        """Await a notifier call; a failure to post is the notifier's to count, never the loop's end."""
        try:
            await call
        except Exception:
            log.exception("a watch notice could not be sent")
