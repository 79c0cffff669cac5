"""ROOMUSERS_MAX_CONCURRENT_READS for every replica together, through a real redis-server: one line across
replicas, first come first served, each waiter told its place; a dead holder's slot comes back; during an
outage each replica keeps its own line."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from functools import partial

import pytest

from bot.dev.local_stack import local_replicas
from bot.dev.slack_standin import StoredMessage
from bot.dev.zim_sandbox import ZimSandbox
from bot.roster.reads import Ticket
from bot.settings import LimitSettings
from bot.state import build_shared_state
from bot.state.readslots import RedisReadSlots
from tests.redis_server import RedisServer

from .conftest import FAST_RETRY
from .slack_helpers import all_text, answers_to, wait_for_message

WAITING = "Waiting for a free reader"


class Holder:
    """A read holding (or waiting for) a slot until `done` is set."""

    def __init__(self, slots: RedisReadSlots) -> None:
        self.ticket = Ticket()
        self.has_slot = asyncio.Event()
        self.done = asyncio.Event()
        self.task = asyncio.create_task(self._hold(slots))

    async def _hold(self, slots: RedisReadSlots) -> None:
        async with slots.slot(self.ticket):
            self.has_slot.set()
            await self.done.wait()

    async def finish(self) -> None:
        self.done.set()
        await self.task


async def until(predicate, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110  # polling another replica's shared state
            await asyncio.sleep(0.01)


@pytest.fixture
async def two_replicas(clients) -> list[RedisReadSlots]:
    return [RedisReadSlots(clients(), limit=2, key="t:reads", poll_interval=0.02) for _ in range(2)]


async def test_one_line_across_replicas_first_come_first_served(two_replicas, clients):
    one, two = two_replicas
    first, second = Holder(one), Holder(two)
    await first.has_slot.wait()
    await second.has_slot.wait()
    third = Holder(one)
    await third.ticket.queued.wait()
    fourth = Holder(two)
    await fourth.ticket.queued.wait()
    assert (one.position(third.ticket), two.position(fourth.ticket)) == (1, 2)
    assert two.running == 2
    await second.finish()  # a slot freed on replica two goes to the first in line, on replica one
    await third.has_slot.wait()
    await until(lambda: two.position(fourth.ticket) == 1)
    assert not fourth.has_slot.is_set()
    await first.finish()
    await fourth.has_slot.wait()
    await third.finish()
    await fourth.finish()
    watcher = clients()
    assert [await watcher.zcard(key) for key in one.keys] == [0, 0, 0]
    assert [await watcher.pttl(key) for key in one.keys] == [-2, -2, -2]  # empty sets vanish; none had a TTL


async def test_a_waiter_that_gives_up_leaves_the_line(two_replicas):
    one, two = two_replicas
    holders = [Holder(one), Holder(two)]
    for holder in holders:
        await holder.has_slot.wait()
    leaving, staying = Holder(one), Holder(two)
    await leaving.ticket.queued.wait()
    await staying.ticket.queued.wait()
    assert two.position(staying.ticket) == 2
    leaving.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await leaving.task
    await until(lambda: two.position(staying.ticket) == 1)
    await holders[0].finish()
    await staying.has_slot.wait()
    await holders[1].finish()
    await staying.finish()


async def test_a_dead_replicas_slot_comes_back_after_the_holder_ttl(clients):
    dead = RedisReadSlots(clients(), limit=1, key="t:reads-ttl", holder_ttl=0.3, poll_interval=0.02)
    alive = RedisReadSlots(clients(), limit=1, key="t:reads-ttl", holder_ttl=0.3, poll_interval=0.02)
    token = await dead.acquire(Ticket())
    dead.abandon(token)  # the replica dies: no more renewals, no release
    waiting = Holder(alive)
    await waiting.ticket.queued.wait()
    async with asyncio.timeout(5):
        await waiting.has_slot.wait()
    await waiting.finish()


# A replica that joins the line for one slot, says so, then waits to be killed (never polling again).
WAITER_REPLICA = """
import asyncio, sys
from redis.asyncio import Redis
from bot.roster.reads import Ticket
from bot.state.readslots import RedisReadSlots

async def main():
    slots = RedisReadSlots(Redis.from_url(sys.argv[1]), limit=1, key=sys.argv[2], holder_ttl=600, poll_interval=0.05)
    ticket = Ticket()
    waiting = asyncio.create_task(slots.acquire(ticket))
    await ticket.queued.wait()
    print("queued", flush=True)
    await waiting

asyncio.run(main())
"""


async def test_a_dead_replicas_place_in_line_lapses_within_the_waiter_ttl_not_the_holder_ttl(redis_url, clients):
    key = "t:reads-dead-waiter"
    holder_ttl = 600.0  # were a dead waiter kept as long as a holder, the live one would wait 10 minutes
    alive = RedisReadSlots(clients(), limit=1, key=key, holder_ttl=holder_ttl, poll_interval=0.02)
    first = Holder(alive)
    await first.has_slot.wait()
    dead = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WAITER_REPLICA, redis_url, key, stdout=asyncio.subprocess.PIPE
    )
    assert dead.stdout is not None
    assert await dead.stdout.readline() == b"queued\n"
    dead.kill()  # abandoned, not cancelled: it never leaves the line
    await dead.wait()
    behind = Holder(alive)
    await behind.ticket.queued.wait()
    assert alive.position(behind.ticket) == 2  # behind the dead waiter
    await first.finish()
    async with asyncio.timeout(holder_ttl / 10):
        await behind.has_slot.wait()
    await behind.finish()
    assert [await clients().zcard(k) for k in alive.keys] == [0, 0, 0]


async def test_a_long_read_keeps_its_slot_by_renewal(clients):
    watcher = clients()
    slots = [RedisReadSlots(clients(), limit=1, key="t:reads-renew", holder_ttl=0.15, poll_interval=0.02) for _ in "ab"]
    token = await slots[0].acquire(Ticket())
    first_expiry = await watcher.zscore(slots[0].keys[0], token)
    waiter = Holder(slots[1])
    await waiter.ticket.queued.wait()

    async def redis_now_ms() -> float:
        seconds, micros = await watcher.time()
        return float(seconds * 1000 + micros / 1000)

    async with asyncio.timeout(5):
        while await redis_now_ms() < first_expiry + 300:  # noqa: ASYNC110  # two TTLs past the first expiry
            await asyncio.sleep(0.02)
    assert await watcher.zscore(slots[0].keys[0], token) > first_expiry  # renewed, still the holder
    assert slots[1].position(waiter.ticket) == 1
    assert not waiter.has_slot.is_set()
    await slots[0].release(token)
    await waiter.has_slot.wait()
    await waiter.finish()


async def test_reads_on_two_app_replicas_share_one_limit(sandbox: ZimSandbox, redis_url: str):
    sandbox.faults.set_latency(latency_ms=60)
    for room in ("line-a", "line-b"):
        sandbox.add_room(room, 2500)  # 5 pages a chain
    limits = LimitSettings(max_concurrent_reads=1, refresh_min=0)
    async with local_replicas(2, sandbox=sandbox, redis_url=redis_url, retry=FAST_RETRY, limits=limits) as local:
        local.route(0)
        await local.slack.send_command("line-a", user_id="U0A")
        await local.slack.wait_for(lambda: sandbox.stats.per_room["line-a"] > 0, timeout=10)
        local.route(1)
        await local.slack.send_command("line-b", user_id="U0B")
        first_b = await wait_for_message(local.slack, lambda: next(iter(answers_to(local.slack, "U0B")), None))
        assert "Waiting for a free reader: 1st in line (1 read of this app is running)" in all_text(first_b)

        def final(user: str) -> StoredMessage | None:
            done = [m for m in answers_to(local.slack, user) if WAITING not in all_text(m)]
            return done[-1] if done and "2,500 users" in all_text(done[-1]) else None

        for user in ("U0A", "U0B"):
            await wait_for_message(local.slack, partial(final, user), within=60)


async def test_during_an_outage_each_replica_keeps_its_own_line(own_redis_server: RedisServer):
    state = await build_shared_state(own_redis_server.url, probe_interval=0.2)
    try:
        slots = state.read_slots_for("zim:1", limit=1)
        assert slots is not None
        own_redis_server.stop()
        first = Ticket()
        async with slots.slot(first):
            second = Ticket()
            waiting = asyncio.create_task(slots.slot(second).__aenter__())
            await second.queued.wait()
            assert slots.position(second) == 1
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
        assert await state.health() == {"redis": "unreachable"}
    finally:
        await state.aclose()
