"""Limits on abuse, each answered politely and counted, through the stand-in, the real Bolt app and the sandbox."""

from __future__ import annotations

import asyncio
from functools import partial

from prometheus_client import REGISTRY

from bot.dev.local_stack import local_stack
from bot.dev.slack_standin import StoredMessage
from bot.dev.zim_sandbox import ZimSandbox
from bot.settings import LimitSettings

from .conftest import FAST_RETRY
from .slack_helpers import all_text, answer_to, answers_to, listed_user_ids, wait_for_message

WAITING = "Waiting for a free reader"


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_person_over_the_rate_is_refused_politely_in_the_ack_and_counted(sandbox: ZimSandbox):
    limits = LimitSettings(user_rate=3, refresh_min=0)
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, limits=limits) as local:
        for _ in range(3):
            await answer_to(local, "demo-12")
        requests = sandbox.stats.requests
        limited_before = metric("roomusers_commands_total", surface="command", outcome="rate_limited")
        response = await local.slack.send_command("demo-12")
        assert response.status == 200 and response.acked_in_time
        ack = local.slack.ephemerals("U0ALICE")[-1]
        assert ack.origin == "ack"
        text = all_text(ack)
        assert "roomusers answers 3 a minute per person" in text and "Try again in" in text
        assert metric("roomusers_commands_total", surface="command", outcome="rate_limited") == limited_before + 1
        # Help costs nothing: it is still answered.
        await local.slack.send_command("help")
        usage = local.slack.ephemerals("U0ALICE")[-1]
        assert usage.origin == "ack" and "Try again in" not in all_text(usage) and "/roomusers" in all_text(usage)
        # Someone else is not affected.
        other = await local.slack.send_command("demo-12", user_id="U0BOB", user_name="bob")
        assert other.status == 200
        await local.slack.wait_for(lambda: answers_to(local.slack, "U0BOB"), timeout=10)
        assert sandbox.stats.requests == requests  # the refused command read nothing (Bob's came from the cache)


async def test_a_click_over_the_rate_is_answered_beside_the_page(sandbox: ZimSandbox):
    limits = LimitSettings(user_rate=2, refresh_min=0)
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, limits=limits) as local:
        page = await answer_to(local, "demo-120")  # 1
        await local.slack.click(page, "roomusers_next")  # 2
        await local.slack.wait_for(lambda: (m := local.slack.message(page.ts)) is not None and m.replaced_count > 0)
        seen = len(answers_to(local.slack, "U0ALICE"))
        await local.slack.click(page, "roomusers_next")  # 3: over
        refusal = await wait_for_message(
            local.slack, lambda: next(iter(answers_to(local.slack, "U0ALICE")[seen:]), None)
        )
        assert "Try again in" in all_text(refusal)
        assert local.slack.message(page.ts) is not None  # the page the user was on stays


async def test_reads_beyond_the_limit_wait_in_line_and_say_their_place(sandbox: ZimSandbox):
    sandbox.faults.set_latency(latency_ms=60)
    for room in ("line-a", "line-b", "line-c"):
        sandbox.add_room(room, 2500)  # 5 pages a chain
    limits = LimitSettings(max_concurrent_reads=1, refresh_min=0)
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, limits=limits) as local:
        await local.slack.send_command("line-a", user_id="U0A")
        await local.slack.wait_for(lambda: sandbox.stats.per_room["line-a"] > 0, timeout=10)
        await local.slack.send_command("line-b", user_id="U0B")
        first_b = await wait_for_message(local.slack, lambda: next(iter(answers_to(local.slack, "U0B")), None))
        await local.slack.send_command("line-c", user_id="U0C")
        first_c = await wait_for_message(local.slack, lambda: next(iter(answers_to(local.slack, "U0C")), None))
        assert "Waiting for a free reader: 1st in line (1 read of this app is running)" in all_text(first_b)
        assert "2nd in line" in all_text(first_c)
        assert sandbox.stats.per_room["line-c"] == 0  # still waiting: not read yet

        def final(user: str) -> StoredMessage | None:
            done = [m for m in answers_to(local.slack, user) if WAITING not in all_text(m)]
            return done[-1] if done and "2,500 users" in all_text(done[-1]) else None

        for user in ("U0B", "U0C"):
            message = await wait_for_message(local.slack, partial(final, user), within=60)
            assert len(listed_user_ids(message)) == 20


async def test_a_read_past_the_deadline_ends_incomplete_and_is_not_cached(sandbox: ZimSandbox):
    sandbox.faults.set_latency(latency_ms=150)
    sandbox.add_room("slow-big", 20_000)
    limits = LimitSettings(read_deadline=0.5, refresh_min=0)
    incomplete = metric("roomusers_fetch_outcomes_total", profile="default", outcome="incomplete")
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, limits=limits) as local:
        await local.slack.send_command("slow-big")

        def stopped() -> StoredMessage | None:
            return next(
                (m for m in answers_to(local.slack, "U0ALICE") if "ROOMUSERS_READ_DEADLINE_SECONDS" in all_text(m)),
                None,
            )

        message = await wait_for_message(local.slack, stopped)
        # The users read by then are shown, as an incomplete list: never as the whole room, never dropped.
        assert "the read was stopped after 0.5 s" in all_text(message)
        assert listed_user_ids(message)
        kept = await local.rosters.by_profile["default"].snapshots.cached("slow-big")
        assert kept is not None and not kept.complete and 0 < len(kept.users) < 20_000
        assert kept.incomplete_reason == "deadline"
    assert metric("roomusers_fetch_outcomes_total", profile="default", outcome="incomplete") == incomplete + 1


async def test_a_refresh_of_a_young_snapshot_answers_from_it_and_says_how_old_it_is(sandbox: ZimSandbox):
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, limits=LimitSettings(refresh_min=10)) as local:
        page = await answer_to(local, "demo-120")
        requests = sandbox.stats.requests
        await local.slack.click(page, "roomusers_refresh")

        def replaced() -> StoredMessage | None:
            message = local.slack.message(page.ts)
            return message if message is not None and message.replaced_count > 0 else None

        refreshed = await wait_for_message(local.slack, replaced)
        assert "s ago — refreshes come at most every 10 s, so this is that list" in all_text(refreshed)
        assert sandbox.stats.requests == requests


async def test_concurrent_refreshes_of_one_room_join_one_read(sandbox: ZimSandbox):
    sandbox.faults.set_latency(latency_ms=50)
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, limits=LimitSettings(refresh_min=0)) as local:
        pages = []
        for user in ("U0A", "U0B", "U0C", "U0D", "U0E"):
            await local.slack.send_command("demo-499", user_id=user)

        def first_answer(user: str) -> StoredMessage | None:
            return next(iter(answers_to(local.slack, user)), None)

        for user in ("U0A", "U0B", "U0C", "U0D", "U0E"):
            pages.append(await wait_for_message(local.slack, partial(first_answer, user)))
        one_read = sandbox.stats.requests  # demo-499 read once for all five
        await asyncio.gather(
            *(
                local.slack.click(page, "roomusers_refresh", user_id=user)
                for page, user in zip(pages, ("U0A", "U0B", "U0C", "U0D", "U0E"), strict=True)
            )
        )
        await local.slack.wait_for(
            lambda: all((m := local.slack.message(p.ts)) is not None and m.replaced_count > 0 for p in pages),
            timeout=20,
        )
        # The first replacement may be the "Refreshing…" placeholder, sent before the read: wait until every
        # refresh has been answered in full, then count what ZIM saw.
        await local.until_idle(within=20)
        assert sandbox.stats.requests == 2 * one_read
