"""Several app replicas sharing one real redis-server behave as one app (one sandbox, one Slack stand-in)."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from bot.dev.local_stack import LocalReplicas, local_replicas
from bot.dev.slack_standin import StoredMessage
from bot.dev.zim_sandbox import ZimSandbox

from .conftest import FAST_RETRY
from .redis_server import RedisServer
from .slack_helpers import all_text, answers_to, listed_user_ids, wait_for_message

WAITING = "Waiting for a free reader"


async def command_answer(local: LocalReplicas, replica: int, text: str, user: str = "U0ALICE") -> StoredMessage:
    """Send the command to `replica`; return the answer that follows (the one after the "fetching" ack)."""

    seen = len(answers_to(local.slack, user))
    local.route(replica)
    await local.slack.send_command(text, user_id=user)
    return await wait_for_message(local.slack, lambda: next(iter(answers_to(local.slack, user)[seen:]), None))


def answer_with(local: LocalReplicas, user: str, text: str) -> StoredMessage | None:
    return next((m for m in answers_to(local.slack, user) if text in all_text(m)), None)


async def first_answer(local: LocalReplicas, user: str) -> StoredMessage:
    return await wait_for_message(local.slack, lambda: next(iter(answers_to(local.slack, user)), None))


async def until_cached(local: LocalReplicas, rooms: list[str], *, within: float = 60) -> None:
    """Wait until every room's whole roster is in the shared store (the store is Redis: poll it)."""
    snapshots = local.replicas[0].running.zego_apps.by_profile["default"].snapshots
    async with asyncio.timeout(within):
        while [room for room in rooms if await snapshots.cached(room) is None]:  # noqa: ASYNC110
            await asyncio.sleep(0.1)


async def test_a_click_on_another_replica_is_served_from_the_shared_snapshot(sandbox: ZimSandbox, redis_url: str):
    async with local_replicas(2, sandbox=sandbox, redis_url=redis_url, retry=FAST_RETRY) as local:
        first = await command_answer(local, 0, "demo-499")
        requests = sandbox.stats.requests
        local.route(1)
        await local.slack.click(first, "roomusers_next")

        def replaced() -> StoredMessage | None:
            message = local.slack.message(first.ts)
            return message if message is not None and message.replaced_count > 0 else None

        second = await wait_for_message(local.slack, replaced)
        assert listed_user_ids(second) == [uid for uid, _ in sandbox.rooms["demo-499"].users[20:40]]
        assert "from cache" in all_text(second)
        assert sandbox.stats.requests == requests


async def test_a_room_requested_on_both_replicas_at_once_is_fetched_once(sandbox: ZimSandbox, redis_url: str):
    sandbox.add_room("shared-room", 4000)  # 8 pages
    sandbox.faults.set_latency(latency_ms=30)
    async with local_replicas(2, sandbox=sandbox, redis_url=redis_url, retry=FAST_RETRY) as local:
        local.route(0)
        one = asyncio.create_task(local.slack.send_command("shared-room", user_id="U0ALICE"))
        local.route(1)
        two = asyncio.create_task(local.slack.send_command("shared-room", user_id="U0BOB"))
        await asyncio.gather(one, two)
        for user in ("U0ALICE", "U0BOB"):
            answer = await first_answer(local, user)
            assert "4,000 users" in all_text(answer)
        await until_cached(local, ["shared-room"])
    # one two-chain fetch of 8 pages: at most a couple of requests past the meeting point
    assert sandbox.stats.requests <= 10


async def test_twelve_concurrent_commands_across_replicas_stay_under_the_global_limit(
    sandbox: ZimSandbox, redis_url: str
):
    rooms = [f"load-{2000 + i}" for i in range(12)]  # 5 pages each: 60 requests, ~3 s at 20/s
    async with local_replicas(3, sandbox=sandbox, redis_url=redis_url, retry=FAST_RETRY) as local:
        sends = []
        for i, room in enumerate(rooms):
            local.route(i % 3)
            sends.append(asyncio.create_task(local.slack.send_command(room, user_id=f"U0USER{i:02d}")))
            await asyncio.sleep(0)
        await asyncio.gather(*sends)
        # ROOMUSERS_MAX_CONCURRENT_READS is shared by the replicas: some reads first wait in line.
        for i in range(len(rooms)):
            user, users = f"U0USER{i:02d}", f"{2000 + i:,} users"
            await wait_for_message(local.slack, partial(answer_with, local, user, users))
            # Anything said before the count was the place in line, never a wrong count.
            said = [all_text(m) for m in answers_to(local.slack, user)]
            before = said[: next(n for n, text in enumerate(said) if users in text)]
            assert all(WAITING in text for text in before), before
        # Big rooms answer after their first page; wait until every whole room is in the shared store.
        await until_cached(local, rooms)
    assert sandbox.stats.rate_limited == 0
    assert sandbox.stats.max_in_window(1.0) <= 20
    assert sandbox.stats.requests >= 60


async def test_a_retried_event_delivered_to_another_replica_is_answered_once(sandbox: ZimSandbox, redis_url: str):
    async with local_replicas(2, sandbox=sandbox, redis_url=redis_url, retry=FAST_RETRY) as local:
        local.route(0)
        first = await local.slack.mention("demo-12")
        await local.slack.next_message()
        local.route(1)
        again = await local.slack.mention("", event_id=first.sent["event_id"], retry_num=1)
        assert again.status == 200
        await local.until_idle()
        assert local.slack.unread() == []
        assert len([m for m in local.slack.messages("C0OPS") if m.origin == "api"]) == 1


async def test_answers_continue_when_redis_stops_and_recover_when_it_returns(
    sandbox: ZimSandbox, redis_server: RedisServer, redis_url: str, caplog
):
    caplog.set_level(logging.WARNING)
    async with local_replicas(2, sandbox=sandbox, redis_url=redis_url, retry=FAST_RETRY) as local:
        before = await command_answer(local, 0, "demo-120")
        assert "120 users" in all_text(before)
        redis_server.stop()
        during = await command_answer(local, 1, "demo-12")
        assert "12 users" in all_text(during)
        assert any("redis" in r.getMessage().lower() for r in caplog.records)
        redis_server.start()
        async with asyncio.timeout(15):  # the next probe finds Redis again
            while await local.replicas[0].running.state.health() != {"redis": "ok"}:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
        after = await command_answer(local, 0, "demo-499")
        assert "499 users" in all_text(after)
        health = await local.replicas[0].running.state.health()
        assert health == {"redis": "ok"}


async def test_readyz_reports_redis(sandbox: ZimSandbox, redis_url: str):
    import aiohttp

    async with local_replicas(1, sandbox=sandbox, redis_url=redis_url, retry=FAST_RETRY) as local:
        url = local.replicas[0].ops_url + "/readyz"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200
            assert await response.json() == {"ready": True, "checks": {"slack": "connected", "redis": "ok"}}


async def test_a_follower_answers_early_from_the_leaders_shared_progress(sandbox: ZimSandbox, redis_url: str):
    """A replica that waits for another replica's read answers with ZIM's count and first page, as the leader
    does, instead of waiting for the whole room (the progress goes through Redis)."""
    sandbox.add_room("big-shared", 20_000)  # 40 pages: about 2 s at 20 requests a second
    sandbox.faults.set_latency(latency_ms=50)
    async with local_replicas(2, sandbox=sandbox, redis_url=redis_url, retry=FAST_RETRY) as local:
        leader = await command_answer(local, 0, "big-shared", user="U0ALICE")
        assert "still loading" in all_text(leader)
        follower = await command_answer(local, 1, "big-shared", user="U0BOB")
        assert "still loading" in all_text(follower)
        assert "*20,000 users* in this room" in all_text(follower)
        assert listed_user_ids(follower) == [uid for uid, _ in sandbox.rooms["big-shared"].users[:20]]
        await until_cached(local, ["big-shared"])
        assert sandbox.stats.per_room["big-shared"] <= 42  # one read: the follower sent nothing
