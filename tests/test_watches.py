"""Watches end to end: the real app over HTTP, the ZIM sandbox changing rooms under it, the strict Slack
stand-in (which refuses posts to channels the bot is not in). A 1 s interval; every wait is for a message or a
poll that must come, never a fixed sleep."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from prometheus_client import REGISTRY

from bot.dev.local_stack import LocalStack, local_stack
from bot.dev.slack_standin import StoredMessage
from bot.dev.zim_sandbox import ZimSandbox
from bot.dev.zim_sandbox.faults import Fault
from bot.settings import WatchSettings
from bot.slack.access import AccessPolicy
from bot.slack.watches import WatchDesk
from bot.watch.model import group_of
from bot.zim import codes

from .conftest import FAST_RETRY
from .slack_helpers import all_text, wait_for_message

FAST = WatchSettings(interval=1.0, hours=8.0, max_per_conversation=20, max_per_workspace=200)


@pytest.fixture
async def watching(sandbox: ZimSandbox) -> AsyncIterator[LocalStack]:
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, watch=FAST) as stack:
        yield stack


def desk_of(local: LocalStack) -> WatchDesk:
    assert local.watches is not None
    return local.watches


def posted(local: LocalStack, channel: str, needle: str) -> list[StoredMessage]:
    """Visible (non-ephemeral) messages in `channel` whose text or blocks contain `needle`."""
    return [m for m in local.slack.messages(channel) if not m.ephemeral and needle in all_text(m)]


def finder(local: LocalStack, channel: str, needle: str) -> Callable[[], StoredMessage | None]:
    def find() -> StoredMessage | None:
        found = posted(local, channel, needle)
        return found[0] if found else None

    return find


async def set_watch(
    local: LocalStack, text: str, *, channel_id: str = "C0OPS", channel_name: str = "ops", user_id: str = "U0ALICE"
) -> StoredMessage:
    response = await local.slack.send_command(text, channel_id=channel_id, channel_name=channel_name, user_id=user_id)
    assert response.status == 200 and response.acked_in_time
    await local.slack.next_message()  # the ack
    return await next_ephemeral(local)  # an alert for a condition already true may come first


async def next_ephemeral(local: LocalStack) -> StoredMessage:
    while not (message := await local.slack.next_message()).ephemeral:
        pass
    return message


async def until(predicate: Callable[[], bool], *, within: float = 30.0) -> None:
    """Wait for a positive signal (a poll, a loop turn) that must come; fail after `within` seconds."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - plain attributes, nothing to wait on
            await asyncio.sleep(0.02)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_when_empty_fires_once_when_the_room_empties(watching: LocalStack):
    reads = metric("roomusers_watch_zim_requests_total", profile="default", api="QueryRoomUserList")
    lags = metric("roomusers_watch_poll_lag_seconds_count")
    room = watching.sandbox.add_room("w-empty", [("u1", "Ann"), ("u2", "Bob")])
    confirmation = await set_watch(watching, "w-empty --watch --when-empty")
    text = all_text(confirmation)
    assert confirmation.ephemeral and "Watch set" in text and "this channel" in text and "until" in text
    assert posted(watching, "C0OPS", "Watch:") == []
    room.leave("u1")
    room.leave("u2")
    alert = await wait_for_message(watching.slack, finder(watching, "C0OPS", "Watch:"))
    shown = all_text(alert)
    assert "the room is empty" in shown and "*0 users*" in shown and "<@U0ALICE>" in shown
    assert "roomusers_watch_show" in shown
    desk = desk_of(watching)
    assert await desk.poller.store.count() == 0  # one-shot: nothing left to post another alert
    turns = desk.poller.turns
    await until(lambda: desk.poller.turns >= turns + 2)  # two more turns in which a second alert could come
    assert len(posted(watching, "C0OPS", "Watch:")) == 1
    # The first check, then at least one poll: each one QueryRoomUserList, each poll's lag observed.
    assert metric("roomusers_watch_zim_requests_total", profile="default", api="QueryRoomUserList") >= reads + 2
    assert metric("roomusers_watch_poll_lag_seconds_count") >= lags + 1


@pytest.mark.parametrize(
    ("option", "change", "expect"),
    [
        ("--when-below 2", "leave", "fewer than 2 users"),
        ("--when-above 2", "join", "more than 2 users"),
    ],
)
async def test_count_conditions_fire_when_the_count_crosses(
    watching: LocalStack, option: str, change: str, expect: str
):
    room = watching.sandbox.add_room("w-count", [("u1", "Ann"), ("u2", "Bob")])
    await set_watch(watching, f"w-count --watch {option}")
    if change == "leave":
        room.leave("u1")
    else:
        room.join("u3", "Cy")
    alert = await wait_for_message(watching.slack, finder(watching, "C0OPS", "Watch:"))
    assert expect in all_text(alert)
    assert await desk_of(watching).poller.store.count() == 0


async def test_leaves_and_joins_name_the_user_escaped_and_never_ping(watching: LocalStack):
    members = metric("roomusers_watch_zim_requests_total", profile="default", api="QueryRoomMembers")
    room = watching.sandbox.add_room("w-users", [("host", "Host"), ("u2", "Bob")])
    await set_watch(watching, "w-users --watch --when-leaves host")
    await set_watch(watching, "w-users --watch --when-joins guest")
    room.join("guest", "<!channel> & <@U0BOSS>")
    joined = await wait_for_message(watching.slack, finder(watching, "C0OPS", "is in the room"))
    shown = all_text(joined)
    assert "`guest`" in shown and "&lt;!channel&gt; &amp; &lt;@U0BOSS&gt;" in shown
    assert "<!channel>" not in shown and "<@U0BOSS>" not in shown
    room.leave("host")
    left = await wait_for_message(watching.slack, finder(watching, "C0OPS", "is not in the room now"))
    assert "`host` (Host) is not in the room now" in all_text(left)  # named from an earlier poll
    assert "*2 users* in the room now" in all_text(left)
    assert await desk_of(watching).poller.store.count() == 0
    assert metric("roomusers_watch_zim_requests_total", profile="default", api="QueryRoomMembers") > members + 2


async def test_a_condition_already_true_fires_at_once(watching: LocalStack):
    watching.sandbox.add_room("w-none", 0)
    confirmation = await set_watch(watching, "w-none --watch --when-empty")
    assert "already true" in all_text(confirmation)
    assert len(posted(watching, "C0OPS", "Watch:")) == 1
    assert await desk_of(watching).poller.store.count() == 0


async def test_a_room_that_does_not_exist_counts_as_empty(watching: LocalStack):
    confirmation = await set_watch(watching, "no-such-room --watch --when-below 1")
    assert "already true" in all_text(confirmation)
    alert = posted(watching, "C0OPS", "Watch:")[0]
    assert "*0 users*" in all_text(alert)


async def test_not_in_the_channel_the_alert_goes_to_the_creators_dm(watching: LocalStack):
    watching.sandbox.add_room("w-dm", 0)
    await set_watch(watching, "w-dm --watch --when-empty", channel_id="C0NOBOT", channel_name="nobot")
    assert posted(watching, "C0NOBOT", "Watch:") == []
    dm = watching.slack.dm_channel("U0ALICE")
    alert = await wait_for_message(watching.slack, finder(watching, dm, "Watch:"))
    assert "/invite @roomusers" in all_text(alert) and "<#C0NOBOT>" in all_text(alert)


async def test_ten_failed_polls_post_one_notice_and_recovery_posts_one_more(watching: LocalStack):
    watching.sandbox.add_room("w-fail", [("u1", "Ann")])
    await set_watch(watching, "w-fail --watch --when-empty")
    poller = desk_of(watching).poller
    # Nine failures in a row: no notice yet.
    watching.sandbox.inject(Fault(kind="code", code=codes.SIGNATURE_INVALID, count=9, room_id="w-fail"))
    before = watching.sandbox.stats.per_room["w-fail"]
    await until(lambda: watching.sandbox.stats.per_room["w-fail"] >= before + 9)
    await until(lambda: not poller.polling)  # the ninth poll has been counted
    (stored,) = await poller.store.in_group(group_of("default", "w-fail"))
    assert stored.consecutive_failures == 9
    assert posted(watching, "C0OPS", "could not be checked") == []
    # The tenth: exactly one notice.
    watching.sandbox.inject(Fault(kind="code", code=codes.SIGNATURE_INVALID, count=1, room_id="w-fail"))
    failing = await wait_for_message(watching.slack, finder(watching, "C0OPS", "could not be checked"))
    assert "10 times in a row" in all_text(failing)
    await wait_for_message(watching.slack, finder(watching, "C0OPS", "can be checked again"))
    assert len(posted(watching, "C0OPS", "could not be checked")) == 1
    assert len(posted(watching, "C0OPS", "can be checked again")) == 1
    assert await desk_of(watching).poller.store.count() == 1  # still watching


async def test_a_watch_ends_by_itself_after_watch_hours(sandbox: ZimSandbox):
    brief = WatchSettings(interval=1.0, hours=1.5 / 3600)
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, watch=brief) as local:
        local.sandbox.add_room("w-expire", [("u1", "Ann")])
        await set_watch(local, "w-expire --watch --when-empty")
        note = await wait_for_message(local.slack, finder(local, "C0OPS", "ended after"))
        assert "without the condition coming true" in all_text(note)
        assert await desk_of(local).poller.store.count() == 0
        assert posted(local, "C0OPS", "Watch:") == []


async def test_limits_are_refused_with_a_sentence(sandbox: ZimSandbox):
    limits = WatchSettings(interval=1.0, max_per_conversation=2, max_per_workspace=3)
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, watch=limits) as local:
        local.sandbox.add_room("w-limit", [("u1", "Ann")])
        for _ in range(2):
            assert "Watch set" in all_text(await set_watch(local, "w-limit --watch --when-empty"))
        third = all_text(await set_watch(local, "w-limit --watch --when-empty"))
        assert "Watch not set" in third and "already has 2 active watches" in third
        assert "ROOMUSERS_MAX_WATCHES_PER_CONVERSATION" in third
        assert "Watch set" in all_text(await set_watch(local, "w-limit --watch --when-empty", channel_id="C0TWO"))
        fourth = all_text(await set_watch(local, "w-limit --watch --when-empty", channel_id="C0THREE"))
        assert "This workspace already has 3 active watches" in fourth
        assert await desk_of(local).poller.store.count() == 3


async def test_bad_conditions_are_refused_before_anything_is_sent(watching: LocalStack):
    requests = watching.sandbox.stats.requests
    for text, sentence in [
        ("w --watch --when-below -1", "whole number of users (0 or more), not -1"),
        ("w --watch --when-below 2.5", "whole number"),
        ("w --watch --when-leaves " + "x" * 33, "33 bytes long"),
        ("w --watch", "needs a condition"),
        ("w --when-empty", "add `--watch`"),
    ]:
        response = await watching.slack.send_command(text)
        ack = await watching.slack.next_message()
        assert sentence in all_text(ack), (text, all_text(ack))
        assert response.status == 200
    assert watching.sandbox.stats.requests == requests
    assert await desk_of(watching).poller.store.count() == 0


async def test_watches_lists_this_conversation_and_stop_ends_one(watching: LocalStack):
    watching.sandbox.add_room("w-list", [("u1", "Ann")])
    await set_watch(watching, "w-list --watch --when-empty")
    await set_watch(watching, "w-list --watch --when-leaves u1")
    await set_watch(watching, "w-list --watch --when-empty", channel_id="C0ELSE")
    await watching.slack.send_command("--watches")
    listing = await watching.slack.next_message()
    shown = all_text(listing)
    assert "2 active watches" in shown and "checked every 1 s" in shown and "the room is empty" in shown
    await watching.slack.click(listing, "roomusers_watch_stop_0")
    redrawn = await watching.slack.next_message()
    assert redrawn.ts == listing.ts
    assert "1 active watch*" in all_text(redrawn) and "Watch stopped" in all_text(redrawn)
    assert "the room is empty" not in all_text(redrawn)
    assert await desk_of(watching).poller.store.count() == 2


async def test_show_users_answers_the_clicker_privately(watching: LocalStack):
    watching.sandbox.add_room("w-show", [("u1", "Ann")])
    await set_watch(watching, "w-show --watch --when-above 1")
    watching.sandbox.rooms["w-show"].join("u2", "Bob")
    alert = await wait_for_message(watching.slack, finder(watching, "C0OPS", "Watch:"))
    await watching.slack.click(alert, "roomusers_watch_show", user_id="U0BOB")
    answer = await next_ephemeral(watching)
    assert answer.ephemeral and answer.user == "U0BOB"
    assert "*2 users*" in all_text(answer) and "`u2`" in all_text(answer)


async def test_a_mention_sets_a_watch_whose_alert_goes_to_its_thread(watching: LocalStack):
    room = watching.sandbox.add_room("w-thread", [("u1", "Ann")])
    mention = await watching.slack.mention("w-thread --watch --when-empty")
    ts = str(mention.sent["event"]["ts"])
    confirmation = await wait_for_message(watching.slack, finder(watching, "C0OPS", "Watch set"))
    assert confirmation.thread_ts == ts and "this thread" in all_text(confirmation)
    room.leave("u1")
    alert = await wait_for_message(watching.slack, finder(watching, "C0OPS", "Watch:"))
    assert alert.thread_ts == ts


async def test_access_rules_apply_to_set_list_and_stop(sandbox: ZimSandbox):
    policy = AccessPolicy(users={"U0ALICE"})
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, watch=FAST, access=policy) as local:
        local.sandbox.add_room("w-access", [("u1", "Ann")])
        refused = all_text(await set_watch_ack(local, "w-access --watch --when-empty", user_id="U0MALLORY"))
        assert "Not allowed" in refused
        assert "Not allowed" in all_text(await set_watch_ack(local, "--watches", user_id="U0MALLORY"))
        assert await desk_of(local).poller.store.count() == 0
        await set_watch(local, "w-access --watch --when-empty")
        await local.slack.mention("--watches")  # a visible list, in the mention's thread
        listing = await wait_for_message(local.slack, finder(local, "C0OPS", "1 active watch*"))
        await local.slack.click(listing, "roomusers_watch_stop_0", user_id="U0MALLORY")
        refusal = await next_ephemeral(local)
        assert "Not allowed" in all_text(refusal)
        assert await desk_of(local).poller.store.count() == 1


async def set_watch_ack(local: LocalStack, text: str, *, user_id: str) -> StoredMessage:
    await local.slack.send_command(text, user_id=user_id)
    return await local.slack.next_message()


async def test_a_room_being_destroyed_counts_as_empty(watching: LocalStack):
    room = watching.sandbox.add_room("w-destroy", [("u1", "Ann"), ("u2", "Bob")])
    await set_watch(watching, "w-destroy --watch --when-below 1")
    room.destroy("destroying")  # ZIM answers 660300008 from now on
    alert = await wait_for_message(watching.slack, finder(watching, "C0OPS", "Watch:"))
    assert "*0 users*" in all_text(alert) and "fewer than 1 user is in the room" in all_text(alert)


async def test_watches_work_the_same_in_socket_mode(sandbox: ZimSandbox):
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, watch=FAST, mode="socket") as local:
        room = local.sandbox.add_room("w-socket", [("u1", "Ann")])
        assert "Watch set" in all_text(await set_watch(local, "w-socket --watch --when-empty"))
        room.leave("u1")
        alert = await wait_for_message(local.slack, finder(local, "C0OPS", "Watch:"))
        await local.slack.click(alert, "roomusers_watch_show")
        assert "This room is empty" in all_text(await next_ephemeral(local))
