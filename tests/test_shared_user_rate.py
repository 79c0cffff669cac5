"""ROOMUSERS_USER_RATE shared by replicas through a real redis-server: a person gets `rate` a minute across
every replica, not per replica; during an outage each replica counts for itself."""

from __future__ import annotations

import asyncio

from bot.dev.local_stack import local_replicas
from bot.dev.zim_sandbox import ZimSandbox
from bot.settings import LimitSettings
from bot.state import build_shared_state
from bot.state.ratelimit import RedisUserRate
from tests.redis_server import RedisServer

from .conftest import FAST_RETRY
from .slack_helpers import all_text


async def test_a_burst_across_two_replicas_gets_the_rate_once(clients):
    watcher = clients()
    replicas = [RedisUserRate(clients(), 60) for _ in range(2)]
    waits = await asyncio.gather(*(replica.take("T1:U0ALICE") for replica in replicas * 35))
    assert sum(1 for wait in waits if wait == 0) == 60
    refused = [wait for wait in waits if wait > 0]
    assert len(refused) == 10
    assert all(0 < wait <= 1.0 for wait in refused)  # one request a second refills
    assert await replicas[1].take("T1:U0BOB") == 0  # someone else is not affected
    # The key expires once the allowance is full again (at most a minute): an idle person leaves nothing.
    assert 0 < await watcher.pttl(replicas[0].redis_key("T1:U0ALICE")) <= 60_000


async def test_no_limit_touches_nothing(clients):
    watcher = clients()
    unlimited = RedisUserRate(clients(), 0)
    assert [await unlimited.take("T1:U0ALICE") for _ in range(100)] == [0.0] * 100
    assert await watcher.exists(unlimited.redis_key("T1:U0ALICE")) == 0


async def test_a_person_over_the_rate_on_another_replica_is_refused(sandbox: ZimSandbox, redis_url: str):
    limits = LimitSettings(user_rate=2, refresh_min=0)
    async with local_replicas(2, sandbox=sandbox, redis_url=redis_url, retry=FAST_RETRY, limits=limits) as local:
        for replica in (0, 1):
            local.route(replica)
            response = await local.slack.send_command("demo-12")
            assert response.status == 200
            assert "Try again in" not in all_text(local.slack.ephemerals("U0ALICE")[-1])
        await local.until_idle()
        requests = sandbox.stats.requests
        local.route(0)
        response = await local.slack.send_command("demo-12")
        assert response.status == 200 and response.acked_in_time
        ack = local.slack.ephemerals("U0ALICE")[-1]
        assert ack.origin == "ack"
        assert "roomusers answers 2 a minute per person" in all_text(ack) and "Try again in" in all_text(ack)
        await local.until_idle()
        assert sandbox.stats.requests == requests  # the refused command read nothing


async def test_during_an_outage_each_replica_counts_for_itself(own_redis_server: RedisServer):
    state = await build_shared_state(own_redis_server.url, probe_interval=0.2)
    try:
        rate = state.user_rate(2)
        assert rate.rate == 2
        before = [await rate.take("T1:U0ALICE") for _ in range(3)]
        assert before[:2] == [0.0, 0.0] and before[2] > 0
        own_redis_server.stop()
        # The in-process bucket has counted nothing yet: two more, then refused.
        during = [await rate.take("T1:U0ALICE") for _ in range(3)]
        assert during[:2] == [0.0, 0.0] and during[2] > 0
        assert await state.health() == {"redis": "unreachable"}
    finally:
        await state.aclose()
