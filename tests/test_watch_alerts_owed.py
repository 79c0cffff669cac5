"""An alert is owed from the moment its watch fires until it is posted: one caller fires a watch, its alert is
held by that caller while it posts, and an alert whose poster died (stopped holding it) is taken over by one
other caller. Both stores; Redis through a real redis-server, shared by two clients as two replicas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.state.connection import connect
from bot.watch.conditions import parse_condition
from bot.watch.model import Watch
from bot.watch.poller import Reading, WatchPoller
from bot.watch.store import MAX_ALERT_TRIES, Limits, MemoryWatchStore, OwedAlert, RedisWatchStore, WatchStore

LIMITS = Limits(per_conversation=20, per_workspace=200)
HOLD = 0.3


def a_watch(index: int = 1) -> Watch:
    condition = parse_condition("--when-empty", None)
    return Watch(f"{index:016x}", "T1", "C1", None, "U1", "default", "lobby", condition, 1.0, 9e9)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def lapse(store: WatchStore, clock: Clock | None) -> None:
    """Let a hold of HOLD seconds run out: the fake clock moves, or Redis time passes (waited for, positively)."""
    if clock is not None:
        clock.now += HOLD + 0.01
        return
    await asyncio.sleep(HOLD + 0.05)


@pytest.fixture(params=["memory", "redis"])
async def two_stores(
    request: pytest.FixtureRequest, redis_url: str
) -> AsyncIterator[tuple[WatchStore, WatchStore, Clock | None]]:
    if request.param == "memory":
        clock = Clock()
        store = MemoryWatchStore(clock=clock)
        yield store, store, clock  # one process: both "callers" share it
        return
    clients = [connect(redis_url), connect(redis_url)]  # two replicas, a client each
    yield RedisWatchStore(clients[0], prefix="roomusers:"), RedisWatchStore(clients[1], prefix="roomusers:"), None
    for client in clients:
        await client.aclose()


async def test_one_caller_fires_a_watch_and_holds_its_alert(two_stores):
    first, second, clock = two_stores
    watch = a_watch()
    await first.add(watch, limits=LIMITS, first_due_in=0)
    fired = await asyncio.gather(
        first.fire(watch, '{"count":0}', hold_for=HOLD), second.fire(watch, "{}", hold_for=HOLD)
    )
    owed = [alert for alert in fired if alert is not None]
    assert len(owed) == 1 and owed[0].watch == watch and owed[0].reading == '{"count":0}'
    assert await first.get(watch.id) is None and await first.count() == 0  # the watch itself has ended
    assert await second.claim_owed_alerts(hold_for=HOLD, limit=10) == []  # held by its poster
    renewed = await first.hold_alert(owed[0], hold_for=60)
    assert renewed is not None
    await lapse(first, clock)
    assert await second.claim_owed_alerts(hold_for=HOLD, limit=10) == []  # still held: the renewal counted
    await first.alert_posted(renewed)
    assert await first.hold_alert(renewed, hold_for=HOLD) is None  # posted: owed no more, held by nobody


async def test_an_alert_whose_poster_stopped_holding_it_is_taken_over_by_one_caller(two_stores):
    first, second, clock = two_stores
    watch = a_watch(2)
    await first.add(watch, limits=LIMITS, first_due_in=0)
    owed = await first.fire(watch, '{"count":3}', hold_for=HOLD)
    assert owed is not None
    await lapse(first, clock)  # the poster died: no renewal
    taken = await asyncio.gather(*(store.claim_owed_alerts(hold_for=60, limit=10) for store in (first, second)))
    alerts = [alert for batch in taken for alert in batch]
    assert len(alerts) == 1 and alerts[0].watch == watch and alerts[0].reading == '{"count":3}'
    assert await first.hold_alert(owed, hold_for=60) is None  # the dead poster's hold is gone for good
    assert await second.hold_alert(alerts[0], hold_for=60) is not None


async def test_an_alert_taken_over_too_often_is_dropped(two_stores):
    first, _second, clock = two_stores
    watch = a_watch(3)
    await first.add(watch, limits=LIMITS, first_due_in=0)
    assert await first.fire(watch, "{}", hold_for=HOLD) is not None
    for _ in range(MAX_ALERT_TRIES - 1):  # the first holder was try 1
        await lapse(first, clock)
        assert len(await first.claim_owed_alerts(hold_for=HOLD, limit=10)) == 1
    await lapse(first, clock)
    assert await first.claim_owed_alerts(hold_for=HOLD, limit=10) == []
    await lapse(first, clock)
    assert await first.claim_owed_alerts(hold_for=HOLD, limit=10) == []  # gone, not merely held


async def until(predicate: Callable[[], bool], *, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - plain attributes, nothing to wait on
            await asyncio.sleep(0.01)


class Recorder:
    """The poller's notifier, keeping what it was asked to post."""

    def __init__(self) -> None:
        self.alerts: list[tuple[Watch, Reading]] = []

    async def alert(self, watch: Watch, reading: Reading) -> None:
        self.alerts.append((watch, reading))

    async def checking_failed(self, watch: Watch, problem: str) -> None:
        raise AssertionError("no poll is made in these tests")

    async def checking_works(self, watch: Watch) -> None:
        raise AssertionError("no poll is made in these tests")

    async def expired(self, watch: Watch) -> None:
        raise AssertionError("no watch expires in these tests")


class DeleteFailsOnce(MemoryWatchStore):
    """Redis does not answer the first delete of a posted alert (a blip right after Slack took it)."""

    failed = 0

    async def alert_posted(self, alert: OwedAlert) -> None:
        if not self.failed:
            self.failed += 1
            raise RedisConnectionError("Connection closed by server.")
        await super().alert_posted(alert)


class PostedMeanwhile(MemoryWatchStore):
    """Each alert taken over was posted by its first poster meanwhile, which deleted it just after the claim."""

    async def claim_owed_alerts(self, *, hold_for: float, limit: int) -> list[OwedAlert]:
        taken = await super().claim_owed_alerts(hold_for=hold_for, limit=limit)
        for alert in taken:
            await self.alert_posted(alert)
        return taken


def a_poller(store: WatchStore, notifier: Recorder) -> WatchPoller:
    # An hour between polls: an owed alert must still be taken over within about a hold, not an interval.
    poller = WatchPoller(store, {}, notifier, interval=3600, share=0.25)
    poller.alert_hold = HOLD
    return poller


async def test_a_dead_posters_alert_is_posted_once_though_the_first_delete_fails():
    store, notifier = DeleteFailsOnce(), Recorder()
    watch = a_watch(4)
    await store.add(watch, limits=LIMITS, first_due_in=0)
    assert await store.fire(watch, Reading(count=0).to_json(), hold_for=HOLD) is not None  # then its poster died
    poller = a_poller(store, notifier)
    poller.start()
    try:
        await until(lambda: len(notifier.alerts) == 1 and store.failed == 1)
        assert notifier.alerts[0][0] == watch and notifier.alerts[0][1].count == 0
        turns, after = poller.turns, asyncio.get_running_loop().time() + 6 * HOLD
        # Six holds of time in which the poller went on turning: a second post would have come by then.
        await until(lambda: asyncio.get_running_loop().time() >= after and poller.turns >= turns + 3)
        assert len(notifier.alerts) == 1
        assert await store.claim_owed_alerts(hold_for=HOLD, limit=10) == []  # the retried delete went through
    finally:
        await poller.aclose()


async def test_an_alert_posted_by_its_first_poster_meanwhile_is_not_posted_again():
    store, notifier = PostedMeanwhile(), Recorder()
    watch = a_watch(5)
    await store.add(watch, limits=LIMITS, first_due_in=0)
    assert await store.fire(watch, Reading(count=0).to_json(), hold_for=HOLD) is not None
    poller = a_poller(store, notifier)
    poller.start()
    try:
        await until(lambda: poller.alerts_left == 1)  # taken over, then found posted right before Slack
        assert notifier.alerts == []
    finally:
        await poller.aclose()


async def test_an_unreadable_owed_alert_is_dropped_not_posted(redis_url: str):
    redis = connect(redis_url)
    try:
        store = RedisWatchStore(redis, prefix="roomusers:")
        # Not what any version writes (a hand edit, a foreign key): claimed, logged, deleted; never a post.
        await redis.hset("roomusers:watch-alerts-owed", "00000000000000ff", "{not json")
        await redis.zadd("roomusers:watch-alerts-held", {"00000000000000ff": 0})
        assert await store.claim_owed_alerts(hold_for=HOLD, limit=10) == []
        for key in ("watch-alerts-owed", "watch-alerts-held", "watch-alerts-tries"):
            assert not await redis.exists(f"roomusers:{key}"), key
    finally:
        await redis.aclose()


class ClaimFailsOnce(MemoryWatchStore):
    """A bug's exception (not a Redis error) out of one loop turn."""

    failed = 0

    async def claim_owed_alerts(self, *, hold_for: float, limit: int) -> list[OwedAlert]:
        if not self.failed:
            self.failed += 1
            raise ValueError("a bug")
        return await super().claim_owed_alerts(hold_for=hold_for, limit=limit)


async def test_an_unexpected_error_in_a_loop_turn_does_not_end_the_loop():
    store, notifier = ClaimFailsOnce(), Recorder()
    watch = a_watch(6)
    await store.add(watch, limits=LIMITS, first_due_in=0)
    assert await store.fire(watch, Reading(count=0).to_json(), hold_for=HOLD) is not None
    poller = a_poller(store, notifier)
    poller.start()
    try:
        await until(lambda: len(notifier.alerts) == 1)  # posted by a later turn of the same loop
        assert store.failed == 1
    finally:
        await poller.aclose()
