"""Watches with two replicas sharing a real redis-server: exactly one replica polls a group at a time, a dead
replica's claim lapses and the other takes over within an interval or two, and each alert is posted once."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from bot.dev.local_stack import LocalReplicas, local_replicas
from bot.dev.zim_sandbox import ZimSandbox
from bot.dev.zim_sandbox.faults import Fault
from bot.settings import WatchSettings
from bot.state.connection import connect
from bot.watch.conditions import parse_condition
from bot.watch.model import Watch, group_of
from bot.watch.poller import Reading, WatchPoller
from bot.watch.store import Limits, RedisWatchStore, WatchLimitReached

from .conftest import FAST_RETRY
from .redis_server import RedisServer
from .slack_helpers import all_text

INTERVAL = 1.0
FAST = WatchSettings(interval=INTERVAL)


async def until(predicate: Callable[[], bool], *, within: float = 30.0) -> None:
    """Wait for a positive signal (a poll, a message) that must come; fail after `within` seconds."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - plain attributes, nothing to wait on
            await asyncio.sleep(0.02)


def pollers(local: LocalReplicas) -> list[WatchPoller]:
    found = [replica.running.deps.watches for replica in local.replicas]
    return [desk.poller for desk in found if desk is not None]


def alerts(local: LocalReplicas, room: str) -> list[str]:
    return [
        all_text(m)
        for m in local.slack.messages("C0OPS")
        if not m.ephemeral and f"room `{room}`" in all_text(m) and "Watch:" in all_text(m)
    ]


def assert_no_overlap(both: list[WatchPoller], group: str) -> None:
    """No two polls of the group, on any replica, ran at the same time (one process: one monotonic clock)."""
    spans = sorted((span.started, span.ended) for poller in both for span in poller.spans if span.group == group)
    for (_, ended), (started, _) in itertools.pairwise(spans):
        assert started >= ended, "two polls of one group overlapped"


async def set_watch(local: LocalReplicas, text: str, replica: int) -> None:
    local.route(replica)
    await local.slack.send_command(text)
    await local.slack.next_message()  # the ack
    while not (await local.slack.next_message()).ephemeral:
        pass


async def test_one_replica_polls_a_group_and_each_alert_is_posted_once(sandbox: ZimSandbox, redis_url: str):
    async with local_replicas(2, sandbox=sandbox, redis_url=redis_url, retry=FAST_RETRY, watch=FAST) as local:
        room = sandbox.add_room("r-once", [("u1", "Ann"), ("u2", "Bob")])
        await set_watch(local, "r-once --watch --when-empty", 0)
        await set_watch(local, "r-once --watch --when-below 1", 1)
        first_checks = sandbox.stats.per_room["r-once"]
        both = pollers(local)
        group = group_of("default", "r-once")
        await until(lambda: sum(1 for p in both for c in p.polled if c.group == group) >= 6)
        claims = [(c.group, c.due) for p in both for c in p.polled if c.group == group]
        assert len(claims) == len(set(claims)), "a due poll was taken by both replicas"
        assert_no_overlap(both, group)
        # One ZIM request per poll of the group, however many watches and replicas: never one per replica
        # (the latest claim's request may still be on its way).
        polls = sum(1 for p in both for c in p.polled if c.group == group)
        assert sandbox.stats.per_room["r-once"] - first_checks in (polls - 1, polls)
        room.leave("u1")
        room.leave("u2")
        await until(lambda: len(alerts(local, "r-once")) == 2)  # two watches, one alert each
        turns = [p.turns for p in both]
        await until(lambda: all(p.turns >= t + 2 for p, t in zip(both, turns, strict=True)))
        assert len(alerts(local, "r-once")) == 2
        assert await both[0].store.count() == 0


async def test_a_poll_slower_than_the_interval_keeps_its_claim(sandbox: ZimSandbox, redis_url: str):
    async with local_replicas(2, sandbox=sandbox, redis_url=redis_url, retry=FAST_RETRY, watch=FAST) as local:
        sandbox.add_room("r-slow", [("u1", "Ann")])
        await set_watch(local, "r-slow --watch --when-empty", 0)
        both = pollers(local)
        group = group_of("default", "r-slow")
        # Three polls in a row take 3 intervals each in ZIM: the holder renews its claim, so the other replica
        # never polls the group meanwhile (it did when the claim ran out after one interval).
        sandbox.inject(Fault(kind="delay", seconds=3 * INTERVAL, count=3, room_id="r-slow"))
        done = sum(1 for p in both for s in p.spans if s.group == group)
        await until(lambda: sum(1 for p in both for s in p.spans if s.group == group) >= done + 4)
        assert_no_overlap(both, group)


async def test_a_dead_replicas_claim_lapses_and_the_other_takes_over(sandbox: ZimSandbox, redis_url: str):
    async with local_replicas(2, sandbox=sandbox, redis_url=redis_url, retry=FAST_RETRY, watch=FAST) as local:
        room = sandbox.add_room("r-take", [("u1", "Ann")])
        await set_watch(local, "r-take --watch --when-empty", 0)
        both = pollers(local)
        group = group_of("default", "r-take")
        # The next poll hangs in ZIM; the replica making it dies while holding the claim.
        delays = sandbox.stats.faults_applied["delay"]
        sandbox.inject(Fault(kind="delay", seconds=5, room_id="r-take"))
        await until(lambda: sandbox.stats.faults_applied["delay"] > delays)  # the hanging poll is under way
        await until(lambda: any(group in p.polling for p in both))
        dying = next(p for p in both if group in p.polling)
        survivor = next(p for p in both if p is not dying)
        held = dying.polled[-1]
        await dying.aclose()  # killed: its poll is cancelled at once, without grace, and stops renewing
        await until(lambda: any(c.group == group and c.due > held.due for c in survivor.polled))
        taken = next(c for c in survivor.polled if c.group == group and c.due > held.due)
        # Redis time: the survivor's poll was due within two intervals of the dead replica's claim.
        assert taken.due <= held.now + 2 * INTERVAL + 0.01
        room.leave("u1")
        await until(lambda: len(alerts(local, "r-take")) == 1)
        turns = survivor.turns
        await until(lambda: survivor.turns >= turns + 2)
        assert len(alerts(local, "r-take")) == 1
        assert_no_overlap(both, group)


async def test_an_alert_owed_by_a_replica_that_died_before_posting_is_posted_once(sandbox: ZimSandbox, redis_url: str):
    async with local_replicas(2, sandbox=sandbox, redis_url=redis_url, retry=FAST_RETRY, watch=FAST) as local:
        sandbox.add_room("r-owed", [("u1", "Ann")])
        await set_watch(local, "r-owed --watch --when-below 1", 0)
        both = pollers(local)
        for poller in both:
            poller.alert_hold = 0.5  # a second post, if any, would come within a hold or two
        (watch,) = await both[0].store.all_watches()
        # What a replica leaves when it dies right after its poll saw the room empty and ended the watch, before
        # its alert reached Slack: the watch gone, the alert owed, held by nobody after a short hold.
        assert await both[0].store.fire(watch, Reading(count=0).to_json(), hold_for=0.5) is not None
        await until(lambda: len(alerts(local, "r-owed")) == 1)
        assert "*0 users* in the room now" in alerts(local, "r-owed")[0]  # what the dead replica read
        turns = [p.turns for p in both]
        # Six holds of time, in which both replicas went on turning: a second post would have come by then.
        after = asyncio.get_running_loop().time() + 6 * 0.5
        await until(
            lambda: (
                asyncio.get_running_loop().time() >= after
                and all(p.turns >= t + 3 for p, t in zip(both, turns, strict=True))
            )
        )
        assert len(alerts(local, "r-owed")) == 1
        redis = connect(redis_url)
        try:  # posted, so owed no more: nothing of it is left in Redis
            for key in ("watch-alerts-owed", "watch-alerts-held", "watch-alerts-tries"):
                assert not await redis.exists(f"roomusers:{key}"), key
        finally:
            await redis.aclose()


async def test_watches_pause_while_redis_is_down_and_resume_when_it_returns(
    sandbox: ZimSandbox, redis_server: RedisServer, redis_url: str
):
    async with local_replicas(1, sandbox=sandbox, redis_url=redis_url, retry=FAST_RETRY, watch=FAST) as local:
        room = sandbox.add_room("r-down", [("u1", "Ann")])
        (poller,) = pollers(local)
        redis_server.stop()
        local.route(0)
        await local.slack.send_command("r-down --watch --when-empty")
        await local.slack.next_message()  # the ack
        refused = await local.slack.next_message()
        assert "Watch not set" in all_text(refused) and "Redis" in all_text(refused)
        turns = poller.turns
        await until(lambda: poller.turns >= turns + 2)  # the loop goes on, paused, without a second copy
        redis_server.start()
        await set_watch(local, "r-down --watch --when-empty", 0)
        room.leave("u1")
        await until(lambda: len(alerts(local, "r-down")) == 1)


async def test_redis_limits_hold_under_concurrent_adds_and_a_watch_ends_once(clients):
    store = RedisWatchStore(clients(), prefix="roomusers:")
    other = RedisWatchStore(clients(), prefix="roomusers:")  # another replica's client
    condition = parse_condition("--when-empty", None)

    def watch(index: int, channel: str = "C1") -> Watch:
        return Watch(f"{index:016x}", "T1", channel, None, "U1", "default", f"room-{index % 3}", condition, 1.0, 9e9)

    limits = Limits(per_conversation=20, per_workspace=25)

    async def add(index: int, channel: str) -> bool:
        try:
            await (store if index % 2 else other).add(watch(index, channel), limits=limits, first_due_in=0)
        except WatchLimitReached:
            return False
        return True

    added = await asyncio.gather(*(add(index, "C1") for index in range(40)))
    assert sum(added) == 20  # never 21: the check and the add are one script
    added = await asyncio.gather(*(add(index, "C2") for index in range(100, 120)))
    assert sum(added) == 5 and await store.count() == 25
    kept = (await store.in_conversation("T1", "C2"))[0]
    ended = await asyncio.gather(store.end(kept), other.end(kept), store.end(kept))
    assert sorted(ended) == [False, False, True]  # only one caller may post about it
    claims = await asyncio.gather(store.claim_due(hold_for=5, limit=100), other.claim_due(hold_for=5, limit=100))
    groups = [claim.group for batch in claims for claim in batch]
    assert sorted(groups) == sorted(set(groups)) and len(groups) == 3  # each due group claimed by one replica
