"""Watches as Slack shows them: where the confirmation says the alert goes (checked against the strict stand-in's
membership), the audit lines and metrics each watch event leaves, the `--watches` list, Stop racing a fire, and
the DM path for alerts and notices. End to end: the real app over HTTP, the ZIM sandbox, the strict stand-in."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from bot.dev.local_stack import LocalStack, local_replicas, local_stack, sandbox_profile
from bot.dev.zim_sandbox import ZimSandbox
from bot.dev.zim_sandbox.faults import Fault
from bot.settings import WatchSettings, ZegoProfiles
from bot.slack.access import AccessPolicy, AccessRules
from bot.slack.render.watches import MAX_LISTED, expired_message, watches_message
from bot.slack.watches import ALREADY_ENDED, STOPPED
from bot.watch.budget import stretched_interval
from bot.watch.conditions import Condition
from bot.watch.model import Watch
from bot.zim import codes
from bot.zim.pacing import DEFAULT_BACKGROUND_SHARE

from .conftest import FAST_RETRY
from .redis_server import RedisServer
from .slack_helpers import all_text, wait_for_message
from .test_incomplete import scrape
from .test_watches import FAST, desk_of, finder, next_ephemeral, posted, set_watch

AUDIT = "roomusers.audit"


@pytest.fixture
async def watching(sandbox: ZimSandbox) -> AsyncIterator[LocalStack]:
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, watch=FAST) as stack:
        yield stack


def watch_audit(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == AUDIT]
    return [line for line in lines if line.get("surface") == "watch"]


async def until(predicate: Callable[[], bool], *, within: float = 30.0) -> None:
    """Wait for a positive signal (a poll, an audit line) that must come; fail after `within` seconds."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - plain attributes and log records, nothing to wait on
            await asyncio.sleep(0.02)


async def turns_after(local: LocalStack, more: int) -> None:
    """Wait for the poller to take `more` further turns (a positive signal that it looked again)."""
    poller = desk_of(local).poller
    target = poller.turns + more
    await until(lambda: poller.turns >= target)


# -- where the alert goes -------------------------------------------------------------------------------------


async def test_the_confirmation_names_the_place_the_bot_can_really_post(watching: LocalStack):
    watching.sandbox.add_room("w-place", [("u1", "Ann")])
    here = all_text(await set_watch(watching, "w-place --watch --when-empty"))
    assert "an alert will be posted in this channel" in here and "DM" not in here
    away = all_text(await set_watch(watching, "w-place --watch --when-empty", channel_id="C0NOBOT"))
    assert "in your DM with roomusers: roomusers is not in this channel" in away
    assert "/invite @roomusers" in away  # the bot's name as auth.test gives it


async def test_a_private_channel_or_missing_scopes_are_worded_truthfully(watching: LocalStack):
    watching.sandbox.add_room("w-scope", [("u1", "Ann")])
    private = all_text(await set_watch(watching, "w-scope --watch --when-empty", channel_id="G0SECRET"))
    assert "in your DM with roomusers: roomusers is not in this channel" in private  # channel_not_found
    watching.slack.workspace.scopes = frozenset({"chat:write", "im:write"})  # installed before channels:read
    unsure = all_text(await set_watch(watching, "w-scope --watch --when-empty", channel_id="C0NOBOT"))
    assert "in this channel (or, if roomusers is not in it, in your DM with roomusers)" in unsure


async def test_a_fire_at_once_confirmation_says_where_the_alert_went(watching: LocalStack):
    watching.sandbox.add_room("w-now", 0)
    confirmation = all_text(await set_watch(watching, "w-now --watch --when-empty", channel_id="C0NOBOT"))
    assert "Watch fired at once" in confirmation
    assert "The alert went to your DM with roomusers" in confirmation and "posted in this channel" not in confirmation
    dm = watching.slack.dm_channel("U0ALICE")
    assert len(posted(watching, dm, "Watch:")) == 1
    in_ops = all_text(await set_watch(watching, "w-now --watch --when-empty"))
    assert "The alert is posted in this channel" in in_ops


async def test_a_dm_between_people_is_not_called_the_bots_dm(watching: LocalStack):
    watching.sandbox.add_room("w-dm", [("u1", "Ann")])
    between = all_text(await set_watch(watching, "w-dm --watch --when-empty", channel_id="D0PEOPLE"))
    assert "in your DM with roomusers, since roomusers is not part of this direct message" in between
    own_dm = watching.slack.dm_channel("U0ALICE")
    own = all_text(await set_watch(watching, "w-dm --watch --when-empty", channel_id=own_dm))
    assert "posted in your DM with roomusers once" in own and "not part of" not in own


async def test_the_failure_notice_takes_the_dm_path_when_the_channel_is_closed(watching: LocalStack):
    watching.sandbox.add_room("w-faildm", [("u1", "Ann")])
    await set_watch(watching, "w-faildm --watch --when-empty", channel_id="C0NOBOT")
    watching.sandbox.inject(Fault(kind="code", code=codes.SIGNATURE_INVALID, count=10, room_id="w-faildm"))
    dm = watching.slack.dm_channel("U0ALICE")
    notice = await wait_for_message(watching.slack, finder(watching, dm, "could not be checked"))
    assert "<#C0NOBOT>" in all_text(notice) and "/invite @roomusers" in all_text(notice)
    assert posted(watching, "C0NOBOT", "could not be checked") == []


# -- audit and metrics -----------------------------------------------------------------------------------------


async def test_audit_lines_for_set_fired_and_stopped(watching: LocalStack, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger=AUDIT)
    watching.sandbox.add_room("w-audit", [("u1", "Ann")])
    await set_watch(watching, "w-audit --watch --when-leaves u1")
    room = watching.sandbox.add_room("w-audit-now", 0)
    assert room is not None
    await set_watch(watching, "w-audit-now --watch --when-empty")
    await watching.slack.send_command("--watches")
    listing = await watching.slack.next_message()
    await watching.slack.click(listing, "roomusers_watch_stop_0")
    await watching.slack.next_message()
    await watching.until_idle()
    lines = watch_audit(caplog)
    outcomes = [(line["outcome"], line.get("room")) for line in lines]
    assert outcomes.count(("set", "w-audit")) == 1 and outcomes.count(("set", "w-audit-now")) == 1
    fired = [line for line in lines if line["outcome"] == "fired"]
    assert len(fired) == 1 and fired[0]["room"] == "w-audit-now" and fired[0]["delivered_via"] == "thread"
    stopped = [line for line in lines if line["outcome"] == "stopped"]
    assert len(stopped) == 1 and stopped[0]["room"] == "w-audit" and stopped[0]["stopped_by"] == "U0ALICE"
    assert all(line["user"] == "U0ALICE" and line["channel"] == "C0OPS" for line in lines)


async def test_an_expired_watch_leaves_one_audit_line(sandbox: ZimSandbox, caplog: pytest.LogCaptureFixture):
    brief = WatchSettings(interval=1.0, hours=1.5 / 3600)
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, watch=brief) as local:
        caplog.set_level(logging.INFO, logger=AUDIT)  # after the stack set up logging
        local.sandbox.add_room("w-expire", [("u1", "Ann")])
        await set_watch(local, "w-expire --watch --when-empty")
        await wait_for_message(local.slack, finder(local, "C0OPS", "ended after"))

        def expired_lines() -> list[dict[str, object]]:
            return [line for line in watch_audit(caplog) if line["outcome"] == "expired"]

        await until(lambda: bool(expired_lines()))  # written once Slack has answered
        await turns_after(local, 2)
        expired = expired_lines()
        assert len(expired) == 1 and expired[0]["room"] == "w-expire" and expired[0]["delivered_via"] == "thread"


async def test_watches_active_follows_the_store_on_the_scrape(watching: LocalStack):
    watching.sandbox.add_room("w-gauge", [("u1", "Ann")])
    await set_watch(watching, "w-gauge --watch --when-empty")
    await set_watch(watching, "w-gauge --watch --when-leaves u1")
    await turns_after(watching, 2)
    before = (await scrape(watching))[("roomusers_watches_active", frozenset())]
    assert before == 2
    watching.sandbox.rooms["w-gauge"].leave("u1")
    await watching.slack.wait_for(lambda: len(posted(watching, "C0OPS", "Watch:")) == 1, timeout=30)
    await turns_after(watching, 2)
    after = (await scrape(watching))[("roomusers_watches_active", frozenset())]
    assert before - after == 2 and after == 0


async def test_an_alert_nobody_can_receive_is_counted_and_said(watching: LocalStack):
    name = "roomusers_watch_alerts_undelivered_total"
    before = (await scrape(watching)).get((name, frozenset()), 0.0)
    watching.slack.workspace.messages_tab_enabled = False  # the creator's DM refuses too
    watching.sandbox.add_room("w-lost", 0)
    confirmation = all_text(await set_watch(watching, "w-lost --watch --when-empty", channel_id="C0NOBOT"))
    assert "could be posted neither here nor in your DM with roomusers" in confirmation
    assert "messages_tab_disabled" in confirmation
    after = (await scrape(watching)).get((name, frozenset()), 0.0)
    assert after - before == 1


# -- the list and Stop ------------------------------------------------------------------------------------------


async def test_the_listing_shows_the_stretched_interval(sandbox: ZimSandbox):
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, watch=FAST, qps=1.0) as local:
        local.sandbox.add_room("w-slow-a", [("u1", "Ann")])
        local.sandbox.add_room("w-slow-b", [("u1", "Ann")])
        await set_watch(local, "w-slow-a --watch --when-empty")
        await set_watch(local, "w-slow-b --watch --when-empty")
        await local.slack.send_command("--watches")
        shown = all_text(await local.slack.next_message())
        # Two groups of one request each, every second, against a budget of qps * headroom * share.
        stretched = stretched_interval(1.0, [1, 1], qps=1.0, share=DEFAULT_BACKGROUND_SHARE)
        assert stretched > 1.0
        assert f"checked every {stretched:.0f} s" in shown and "checked every 1 s" not in shown


async def test_stop_racing_a_fire_gives_exactly_one_of_stopped_or_the_alert(watching: LocalStack):
    room = watching.sandbox.add_room("w-race", [("u1", "Ann")])
    await set_watch(watching, "w-race --watch --when-empty")
    await watching.slack.send_command("--watches")
    listing = await watching.slack.next_message()
    room.leave("u1")
    await watching.slack.click(listing, "roomusers_watch_stop_0")

    def redrawn() -> bool:
        current = watching.slack.workspace.message(listing.ts)
        return current is not None and (STOPPED in all_text(current) or ALREADY_ENDED in all_text(current))

    await watching.slack.wait_for(redrawn, timeout=30)
    await watching.until_idle()
    await turns_after(watching, 2)
    assert await desk_of(watching).poller.store.count() == 0
    current = watching.slack.workspace.message(listing.ts)
    assert current is not None
    stopped = "Watch stopped" in all_text(current)
    alerts = len(posted(watching, "C0OPS", "Watch:"))
    assert (stopped, alerts) in {(True, 0), (False, 1)}, (all_text(current), alerts)


async def test_a_stop_value_no_watch_can_have_is_never_looked_up(watching: LocalStack):
    desk = desk_of(watching)
    for value in ["due", "cost", "../x", "0123456789abcdeg", "0123456789ABCDEF", ""]:
        assert await desk.find(value) is None


async def test_stop_while_redis_is_down_says_so(sandbox: ZimSandbox, redis_server: RedisServer, redis_url: str):
    async with local_replicas(1, sandbox=sandbox, redis_url=redis_url, retry=FAST_RETRY, watch=FAST) as local:
        local.route(0)
        sandbox.add_room("r-stop", [("u1", "Ann")])
        await local.slack.send_command("r-stop --watch --when-empty")
        await local.slack.wait_for(lambda: any("Watch set" in all_text(m) for m in local.slack.ephemerals("U0ALICE")))
        await local.slack.send_command("--watches")
        listing = await local.slack.wait_for(
            lambda: next((m for m in local.slack.ephemerals("U0ALICE") if "1 active watch*" in all_text(m)), None)
        )
        assert listing is not None
        desk = local.replicas[0].running.deps.watches
        assert desk is not None
        for value in ["due", "cost"]:  # names of the store's own keys: refused before any lookup (no WRONGTYPE)
            assert await desk.find(value) is None
        redis_server.stop()
        await local.slack.click(listing, "roomusers_watch_stop_0")
        told = await local.slack.wait_for(
            lambda: next((m for m in local.slack.ephemerals("U0ALICE") if "Watch not stopped" in all_text(m)), None)
        )
        assert told is not None and "Redis" in all_text(told)
        redis_server.start()  # for the fixture's teardown; this server keeps nothing across a restart


async def test_show_users_is_refused_for_a_person_without_access(sandbox: ZimSandbox):
    policy = AccessPolicy(users={"U0ALICE"})
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, watch=FAST, access=policy) as local:
        local.sandbox.add_room("w-refuse", 0)
        await set_watch(local, "w-refuse --watch --when-empty")
        alert = posted(local, "C0OPS", "Watch:")[0]
        reads = local.sandbox.stats.requests
        await local.slack.click(alert, "roomusers_watch_show", user_id="U0MALLORY")
        refusal = await next_ephemeral(local)
        assert refusal.user == "U0MALLORY" and "Not allowed" in all_text(refusal)
        assert "`u" not in all_text(refusal)
        assert local.sandbox.stats.requests == reads  # refused before any ZIM request


async def test_watches_lists_only_the_apps_the_asker_may_use(sandbox: ZimSandbox):
    profiles = ZegoProfiles(
        default="default",
        by_name={"default": sandbox_profile(sandbox), "staging": sandbox_profile(sandbox, name="staging")},
    )
    access = AccessRules(per_app={"staging": AccessPolicy(users={"U0BOB"})}, default_profile="default")
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, watch=FAST, profiles=profiles, access=access) as local:
        local.sandbox.add_room("w-open", [("u1", "Ann")])
        local.sandbox.add_room("w-staging", [("u1", "Ann")])
        await set_watch(local, "w-open --watch --when-empty", user_id="U0BOB")
        await set_watch(local, "w-staging --watch --when-empty --app staging", user_id="U0BOB")
        await local.slack.send_command("--watches", user_id="U0ALICE")
        alice = all_text(await local.slack.next_message())
        assert "1 active watch*" in alice and "w-open" in alice and "w-staging" not in alice
        await local.slack.send_command("--watches", user_id="U0BOB")
        bob = all_text(await local.slack.next_message())
        assert "2 active watches" in bob and "w-staging" in bob


async def test_watches_is_refused_only_when_no_app_is_allowed(sandbox: ZimSandbox):
    profiles = ZegoProfiles(
        default="default",
        by_name={"default": sandbox_profile(sandbox), "staging": sandbox_profile(sandbox, name="staging")},
    )
    access = AccessRules(
        per_app={"default": AccessPolicy(users={"U0ALICE"}), "staging": AccessPolicy(users={"U0BOB"})},
        default_profile="default",
    )
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, watch=FAST, profiles=profiles, access=access) as local:
        await local.slack.send_command("--watches", user_id="U0BOB")  # not allowed for the default app
        assert "No active watches" in all_text(await local.slack.next_message())
        await local.slack.send_command("--watches", user_id="U0MALLORY")
        assert "Not allowed" in all_text(await local.slack.next_message())


# -- the messages themselves -------------------------------------------------------------------------------------


def _watch(index: int, *, hours: float = 8.0) -> Watch:
    return Watch(
        id=f"{index:016x}",
        team_id="T0",
        channel_id="C0OPS",
        thread_ts=None,
        creator="U0ALICE",
        profile="default",
        room_id=f"room-{index}",
        condition=Condition("empty"),
        created_at=1_800_000_000.0,
        until=1_800_000_000.0 + hours * 3600,
    )


def test_a_long_list_says_how_many_it_shows_and_stays_within_slacks_blocks():
    watches = [_watch(i) for i in range(60)]
    message = watches_message(watches, intervals={"default": 30.0})
    shown = all_text_of(message.blocks)
    assert "*60 active watches*" in shown and f"Showing the first {MAX_LISTED} of 60" in shown
    assert len(message.blocks) + 1 <= 50  # a Stop's note is one more block
    assert sum(1 for block in message.blocks if "accessory" in block) == MAX_LISTED
    few = watches_message(watches[:3], intervals={"default": 30.0})
    assert "Showing" not in all_text_of(few.blocks)


def test_the_expiry_note_states_the_watchs_own_hours():
    assert "ended after 2 hours" in expired_message(_watch(1, hours=2.0)).text
    assert "ended after 0.5 hours" in expired_message(_watch(1, hours=0.5)).text


def all_text_of(blocks: list[dict[str, object]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)
