"""Slack as it really is, end to end in both modes: the strict stand-in's rules, and what the app does under them.

Membership, the Messages tab, invisible ephemerals, edited and bot mentions, org-wide and Slack Connect shapes,
the app-wide chat.update budget, a click during loading, and one final audit line per request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import pytest
from prometheus_client import REGISTRY

from bot.dev.local_stack import LocalStack, Mode, local_stack
from bot.dev.slack_standin import StoredMessage
from bot.dev.slack_standin.payloads import ORG_USER
from bot.dev.slack_standin.ratelimits import RateLimits, max_in_window
from bot.dev.zim_sandbox import ZimSandbox
from bot.slack.budget import UpdateBudget

from .conftest import FAST_RETRY
from .slack_helpers import all_text, answer_to, listed_user_ids, wait_for_message

pytestmark = pytest.mark.both_modes

LOADING = re.compile(r"still loading: [\d,]+ of [\d,]+ read")


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "roomusers.audit"]


async def until_audited(caplog: pytest.LogCaptureFixture, count: int, *, within: float = 10.0) -> list[dict[str, Any]]:
    """Wait for the `count`-th audit line: the request it records was fully handled."""
    async with asyncio.timeout(within):
        while len(audit_lines(caplog)) < count:  # noqa: ASYNC110 - log records wake nobody
            await asyncio.sleep(0.01)
    return audit_lines(caplog)


def replies(local: LocalStack, thread_ts: str) -> list[StoredMessage]:
    return [m for m in local.slack.thread("C0OPS", thread_ts) if m.origin == "api"]


@pytest.fixture
def audit(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="roomusers.audit")
    return caplog


# -- mentions: edits, bots, other organisations ------------------------------------------------------------


async def test_an_edited_mention_is_not_answered_again_and_a_new_mention_is(local: LocalStack, audit):
    first = await local.slack.mention("demo-12")
    ts = str(first.sent["event"]["ts"])
    await wait_for_message(local.slack, lambda: next(iter(replies(local, ts)), None))
    edited = await local.slack.edit_mention(first, "demo-120")
    assert edited.ok
    assert edited.sent["event"]["ts"] == ts and edited.sent["event_id"] != first.sent["event_id"]
    lines = await until_audited(audit, 2)
    assert [line["outcome"] for line in lines] == ["ok", "ignored_edit"]
    assert len(replies(local, ts)) == 1  # the original's answer stands
    again = await local.slack.mention("demo-120")
    thread = str(again.sent["event"]["ts"])
    answer = await wait_for_message(local.slack, lambda: next(iter(replies(local, thread)), None))
    assert "120 users" in all_text(answer)
    assert len(replies(local, ts)) == 1


async def test_mentions_written_by_bots_are_not_answered(local: LocalStack, audit):
    response = await local.slack.mention("demo-12", bot_id="B0OTHERBOT")
    assert response.ok and "user" not in response.sent["event"]
    (line,) = await until_audited(audit, 1)
    assert (line["outcome"], line["user"]) == ("ignored_bot", "B0OTHERBOT")
    assert replies(local, str(response.sent["event"]["ts"])) == []
    assert local.sandbox.stats.requests == 0


async def test_org_wide_users_are_answered_and_slack_connect_outsiders_refused(local: LocalStack):
    org = await local.slack.mention("demo-120", user=ORG_USER, org=True)
    assert org.sent["authorizations"][0]["team_id"] is None
    ts = str(org.sent["event"]["ts"])
    answer = await wait_for_message(local.slack, lambda: next(iter(replies(local, ts)), None))
    await local.slack.click(answer, "roomusers_next", user_id=ORG_USER, org=True)
    paged = await wait_for_message(local.slack, lambda: next((m for m in replies(local, ts) if m.replaced_count), None))
    assert listed_user_ids(paged) == [uid for uid, _ in local.sandbox.rooms["demo-120"].users[20:40]]
    connect = await local.slack.mention("demo-12", user="W0OTHERORG", from_team="T0OTHER", from_enterprise="E0OTHER")
    assert connect.sent["team_id"] == "T0OTHER" and connect.sent["is_ext_shared_channel"] is True
    # Someone of another organisation, in a Slack Connect channel: external, so refused (privately) unless
    # ROOMUSERS_ALLOW_EXTERNAL=true; the org-wide install's own user above is not external.
    refusal = await wait_for_message(
        local.slack,
        lambda: next(iter(local.slack.ephemerals("W0OTHERORG")), None),
    )
    assert "other organisations" in all_text(refusal)
    assert listed_user_ids(refusal) == []
    await local.until_idle()
    assert replies(local, str(connect.sent["event"]["ts"])) == []


# -- refusals and where answers go ---------------------------------------------------------------------------


async def test_a_refused_top_level_mention_gets_a_visible_ephemeral(sandbox: ZimSandbox, mode: Mode):
    from bot.slack.access import AccessPolicy

    async with local_stack(
        mode=mode, sandbox=sandbox, access=AccessPolicy(users=["U0ALICE"]), retry=FAST_RETRY
    ) as local:
        await local.slack.mention("demo-12", user="U0MALLORY")
        refused = await local.slack.next_message()
        assert refused.ephemeral and refused.user == "U0MALLORY"
        assert refused.thread_ts is None  # not the mention's own "thread", where Slack would not show it
        assert "Not allowed" in all_text(refused)
        # A mention inside a real thread keeps the refusal in that thread (it has replies: it is shown).
        await local.slack.mention("demo-1", user="U0ALICE")
        root = await local.slack.next_message()
        assert root.thread_ts is not None
        await local.slack.mention("demo-12", user="U0MALLORY", thread_ts=root.thread_ts)
        in_thread = await local.slack.next_message()
        assert in_thread.ephemeral and in_thread.thread_ts == root.thread_ts
        assert local.slack.invisible == []
        assert local.slack.warnings == []


async def test_a_command_in_a_dm_without_the_bot_whose_response_url_fails_goes_to_the_app_dm(local: LocalStack, audit):
    local.slack.add_conversation("D0HUMANS", bot_member=False)  # Alice and Bob's DM: the bot is not in it
    local.slack.fail_next_response_urls(500)
    await local.slack.send_command("demo-12", channel_id="D0HUMANS", channel_name="directmessage")
    dm = local.slack.dm_channel("U0ALICE")
    answer = await wait_for_message(local.slack, lambda: next(iter(local.slack.messages(dm)), None))
    assert len(listed_user_ids(answer)) == 12
    assert "from a direct message" in all_text(answer)
    (line,) = await until_audited(audit, 1)
    assert (line["outcome"], line["delivered_via"]) == ("ok", "dm")
    errors = [c.error for c in local.slack.api_calls if c.method == "chat.postEphemeral"]
    assert errors == ["channel_not_found"]


async def test_when_even_the_dm_fails_it_is_logged_and_counted(local: LocalStack, audit):
    local.slack.workspace.messages_tab_enabled = False
    local.slack.add_conversation("G0SECRET", bot_member=False)
    labels = {"surface": "command", "error": "messages_tab_disabled"}
    before = REGISTRY.get_sample_value("roomusers_undelivered_total", labels) or 0.0
    local.slack.fail_next_response_urls(500)
    await local.slack.send_command("demo-12", channel_id="G0SECRET", channel_name="secret")
    (line,) = await until_audited(audit, 1)
    assert (line["outcome"], line["slack_error"]) == ("undelivered", "messages_tab_disabled")
    assert REGISTRY.get_sample_value("roomusers_undelivered_total", labels) == before + 1
    assert "messages_tab_disabled" in audit.text
    assert not [r for r in audit.records if r.exc_info]


async def test_a_failing_post_of_a_mention_reply_is_answered_in_the_dm_and_audited_once(local: LocalStack, audit):
    local.slack.fail_next_api_calls("chat.postMessage", "internal_error", status=500)
    await local.slack.mention("demo-12")
    dm = local.slack.dm_channel("U0ALICE")
    answer = await wait_for_message(local.slack, lambda: next(iter(local.slack.messages(dm)), None))
    assert len(listed_user_ids(answer)) == 12
    (line,) = await until_audited(audit, 1)
    assert (line["outcome"], line["delivered_via"]) == ("ok", "dm")


async def test_a_dropped_connection_posting_a_mention_reply_is_retried_and_audited_once(local: LocalStack, audit):
    local.slack.drop_next_api_calls("chat.postMessage")
    sent = await local.slack.mention("demo-12")
    ts = str(sent.sent["event"]["ts"])
    answer = await wait_for_message(local.slack, lambda: next(iter(replies(local, ts)), None))
    assert len(listed_user_ids(answer)) == 12
    (line,) = await until_audited(audit, 1)
    assert (line["outcome"], line["delivered_via"]) == ("ok", "thread")
    posts = [c.error for c in local.slack.api_calls if c.method == "chat.postMessage"]
    assert posts == ["connection_dropped", None]
    assert not [r for r in audit.records if r.exc_info]


# -- big rooms: one final outcome, the shared update budget, clicks during loading ---------------------------


async def test_a_big_command_is_audited_once_with_its_final_outcome(sandbox: ZimSandbox, mode: Mode, audit):
    sandbox.add_room("big", 6_000)
    sandbox.faults.set_latency(latency_ms=30)
    async with local_stack(mode=mode, sandbox=sandbox, retry=FAST_RETRY) as local:
        first = await answer_to(local, "big")
        assert LOADING.search(all_text(first))
        (line,) = await until_audited(audit, 1)
        assert (line["outcome"], line["first_answer"], line["room_users"]) == ("ok", "loading", 6_000)
        assert all(line["outcome"] != "loading" for line in audit_lines(audit))


async def test_many_loading_mentions_share_one_update_budget_and_all_end_complete(sandbox: ZimSandbox, mode: Mode):
    rooms = [f"big-{i}" for i in range(4)]
    for room in rooms:
        sandbox.add_room(room, 8_000)
    sandbox.faults.set_latency(latency_ms=40)
    limits = RateLimits(update_limit=10, update_window=5.0)
    budget = UpdateBudget(limit=8, window=5.0, reserve=3)
    async with local_stack(
        mode=mode, sandbox=sandbox, retry=FAST_RETRY, slack_limits=limits, updates=budget, progress_every=0.2
    ) as local:
        sent = await asyncio.gather(*(local.slack.mention(room) for room in rooms))
        threads = [str(response.sent["event"]["ts"]) for response in sent]

        def finished() -> bool:
            shown = [replies(local, ts) for ts in threads]
            return all(len(r) == 1 and r[0].replaced_count and not LOADING.search(all_text(r[0])) for r in shown)

        await local.slack.wait_for(finished, timeout=60)
        updates = [c for c in local.slack.api_calls if c.method == "chat.update"]
        assert [c for c in updates if c.status == 429] == []
        assert max_in_window([c.at for c in updates], 5.0) <= 8
        assert any(LOADING.search(json.dumps(c.args)) for c in updates)  # progress was shown
        for ts in threads:
            (reply,) = replies(local, ts)
            assert "loading" not in all_text(reply).lower()
            assert "8,000 users" in all_text(reply)


async def test_the_final_update_lands_after_rate_limits_and_is_posted_anew_when_the_message_is_gone(
    sandbox: ZimSandbox, mode: Mode
):
    sandbox.add_room("big", 3_000)
    sandbox.add_room("big-b", 3_000)
    sandbox.faults.set_latency(latency_ms=30)
    async with local_stack(mode=mode, sandbox=sandbox, retry=FAST_RETRY, progress_every=120.0) as local:
        # No progress edits (120 s apart): the first chat.update calls are the final's.
        local.slack.rate_limit_next_api_calls("chat.update", count=3, retry_after=1)  # past slack_sdk's 2 retries
        first = await local.slack.mention("big")
        ts = str(first.sent["event"]["ts"])
        done = await wait_for_message(
            local.slack, lambda: next((m for m in replies(local, ts) if m.replaced_count), None), within=30
        )
        assert "3,000 users" in all_text(done) and "loading" not in all_text(done).lower()

        # The message is gone (deleted) when the final edit comes: the final answer is posted anew in the thread.
        local.slack.fail_next_api_calls("chat.update", "message_not_found")
        again = await local.slack.mention("big-b")
        thread = str(again.sent["event"]["ts"])
        reposted = await wait_for_message(
            local.slack, lambda: next((m for m in replies(local, thread)[1:]), None), within=30
        )
        assert "3,000 users" in all_text(reposted) and "loading" not in all_text(reposted).lower()


async def test_next_pressed_while_a_mention_is_loading_wins_over_the_final_update(
    sandbox: ZimSandbox, mode: Mode, audit
):
    sandbox.add_room("big", 8_000)
    sandbox.faults.set_latency(latency_ms=60)
    async with local_stack(mode=mode, sandbox=sandbox, retry=FAST_RETRY, progress_every=0.2) as local:
        sent = await local.slack.mention("big")
        ts = str(sent.sent["event"]["ts"])
        loading = await wait_for_message(local.slack, lambda: next(iter(replies(local, ts)), None))
        assert LOADING.search(all_text(loading))
        await local.slack.click(loading, "roomusers_next")
        lines = await until_audited(audit, 2, within=30)
        assert sorted(line["surface"] for line in lines) == ["action:roomusers_next", "mention"]
        (reply,) = replies(local, ts)
        assert listed_user_ids(reply) == [uid for uid, _ in sandbox.rooms["big"].users[20:40]]
        assert "loading" not in all_text(reply).lower()
        # The mention never redrew its message with the finished page 1: its only edits were progress.
        edits = [c for c in local.slack.api_calls if c.method == "chat.update" and c.args.get("ts") == reply.ts]
        assert all(LOADING.search(json.dumps(c.args)) for c in edits)


async def test_a_refused_user_cannot_make_the_bot_post_help_or_its_profiles_in_the_channel(
    sandbox: ZimSandbox, mode: Mode
):
    from bot.slack.access import AccessPolicy

    async with local_stack(
        mode=mode, sandbox=sandbox, access=AccessPolicy(users=["U0ALICE"]), retry=FAST_RETRY
    ) as local:
        for text in ("help", "not a room!", "demo-12 --app nope"):
            await local.slack.mention(text, user="U0MALLORY")
            refused = await local.slack.next_message()
            assert refused.ephemeral and refused.user == "U0MALLORY"
            assert "Not allowed" in all_text(refused)
        await local.until_idle()
        assert [m for m in local.slack.messages("C0OPS") if m.origin == "api"] == []
        assert local.slack.unread() == []
