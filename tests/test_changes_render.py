"""The `--changes` and `--member` messages and the changes-page buttons: within Slack's limits and free of live
markup for the most hostile IDs and names, and a button codec that refuses anything it did not make."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.roster.diff import KeptChanges
from bot.roster.model import RoomUser, Roster
from bot.roster.view import PAGE_SIZE
from bot.settings import ConfigError, load_runtime_settings
from bot.slack.render.blocks import roster_message, usage_message
from bot.slack.render.buttons import StaleButton, decode_view
from bot.slack.render.changes import (
    ChangesPage,
    changed_while_read_message,
    changes_message,
    changes_too_soon_message,
    decode_changes_page,
    encode_changes_page,
    members_message,
    no_baseline_message,
    reading_to_compare_message,
)
from bot.state.history import memory_history
from bot.zim.members import Absence, AbsentUser, RoomMember, RoomMembers

from .test_blocks import NOW, assert_no_live_markup, assert_within_slack_limits, roster

HOSTILE_CHARS = ("&", "<", "😀", "\x00", "`", "*")


@pytest.mark.parametrize("char", HOSTILE_CHARS)
def test_every_page_of_a_hostile_diff_fits_and_cannot_ping(char: str):
    joined = [RoomUser(char * 64, "<!channel>" + char * 200) for _ in range(PAGE_SIZE + 7)]
    left = [RoomUser(char * 32 + "l", "<@U0BOSS>" + char * 200) for _ in range(PAGE_SIZE)]
    for page in (1, 2, 3):
        message = changes_message(
            "&" * 32,
            KeptChanges(joined, left, since=NOW - 1080, read_at=NOW, users_now=10**6),
            now=NOW,
            page=page,
            profile="p" * 32,
            changes_id="0123456789ab",
        )
        assert_within_slack_limits(message)
        assert_no_live_markup(message)


def test_the_headline_counts_and_dates_the_baseline():
    changes = KeptChanges(
        [RoomUser("a", "A")] * 2, [RoomUser("b", "B")] * 2, since=NOW - 1080, read_at=NOW, users_now=9
    )
    message = changes_message("lobby", changes, now=NOW)
    assert message.blocks[1]["text"]["text"].startswith("*+2 joined, −2 left* since <!date^")
    assert message.blocks[1]["text"]["text"].endswith("(18 min ago)")


def test_the_sentences_without_a_diff_are_safe():
    for message in (
        no_baseline_message("<!here>", users_now=3, hours=24, read_at=NOW),
        no_baseline_message("<!here>", users_now=3, hours=24, read_at=NOW, kept=False),
        changes_too_soon_message("<!here>", age=5, refresh_min=10),
        reading_to_compare_message("<!here>", baseline_at=NOW - 60),
        changed_while_read_message("<!here>", "the room changed <!channel> while it was read", baseline_at=NOW - 5),
        changed_while_read_message("r", "x", baseline_at=None),
    ):
        assert_within_slack_limits(message)
        assert_no_live_markup(message)


def test_ten_hostile_members_fit_one_message():
    members = RoomMembers(
        "&" * 32,
        tuple(RoomMember("&" * 32, "<!channel>" + "&" * 200) for _ in range(10)),
        (AbsentUser("<" * 32, Absence.NOT_IN_ROOM),),
        "338368403252050047",
    )
    message = members_message(members, profile="p" * 32)
    assert_within_slack_limits(message)
    assert_no_live_markup(message)


def test_what_changed_keeps_the_worst_answer_within_limits_and_carries_no_filter():
    filter_text = "&" * 90
    users = [RoomUser(filter_text, "x") for _ in range(PAGE_SIZE * 3)]
    r = roster(users, room_id="&" * 32)
    message = roster_message(
        r, page=2, now=NOW, filter_text=filter_text, profile="p" * 32, shareable=True, what_changed=True
    )
    assert_within_slack_limits(message)
    (button,) = [e for b in message.blocks for e in b.get("elements", []) if e.get("action_id") == "roomusers_changes"]
    ref = decode_view(button["value"])
    assert (ref.room_id, ref.filter_text, ref.profile, ref.page) == ("&" * 32, "", "p" * 32, 1)


@settings(max_examples=100, deadline=None)
@given(
    changes_id=st.text("0123456789abcdef", min_size=12, max_size=12),
    page=st.integers(1, 10**6),
    profile=st.sampled_from(["", "eu", "p" * 32]),
)
def test_changes_buttons_round_trip(changes_id: str, page: int, profile: str):
    ref = ChangesPage(changes_id, "room#1+a&b", page, profile)
    value = encode_changes_page(ref)
    assert "<" not in value and "&" not in value
    assert decode_changes_page(value) == ref


@pytest.mark.parametrize(
    "value",
    [
        '{"v":1,"r":"lobby","p":1}',
        '{"v":1,"c":"xyz","r":"lobby","p":1}',
        '{"v":2,"c":"0123456789ab","r":"a","p":1}',
        '{"v":1,"c":"0123456789ab","r":"a b","p":1}',
        '{"v":1,"c":"0123456789ab","r":"a","p":true}',
        "not json",
        "",
    ],
)
def test_changes_buttons_refuse_what_they_did_not_make(value: str):
    with pytest.raises(StaleButton):
        decode_changes_page(value)


def test_help_and_readme_list_changes_and_member():
    usage = usage_message().blocks[0]["text"]["text"]
    assert "--changes" in usage and "--member U1,U2" in usage
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    for phrase in (
        "### What changed: `--changes`",
        "### Is this user in the room? `--member`",
        "ROOMUSERS_HISTORY_HOURS",
    ):
        assert phrase in readme


@pytest.mark.parametrize(
    ("env", "sentence"),
    [
        ({"ROOMUSERS_HISTORY_HOURS": "0"}, "ROOMUSERS_HISTORY_HOURS must be a whole number of hours from 1 to 720."),
        ({"ROOMUSERS_HISTORY_HOURS": "1.5"}, "ROOMUSERS_HISTORY_HOURS must be a whole number of hours from 1 to 720."),
        ({"ROOMUSERS_HISTORY_MAX_MB": "-1"}, "ROOMUSERS_HISTORY_MAX_MB must be a whole number of MB from 1 to 65536."),
    ],
)
def test_history_settings_are_checked(env: dict[str, str], sentence: str):
    with pytest.raises(ConfigError) as refused:
        load_runtime_settings(env)
    assert str(refused.value) == sentence
    defaults = load_runtime_settings({})
    assert (defaults.history_hours, defaults.history_max_mb) == (24, 64)


async def test_the_in_process_history_keeps_a_baseline_for_its_hours_only():
    now = [0.0]
    history = memory_history(hours=2, max_mb=1, timer=lambda: now[0])
    read = Roster("r", (RoomUser("a", "Ann"),), 1, NOW)
    await history.put("zim:1:r", read)
    assert await history.contains("zim:1:r") and await history.get("zim:1:r") == read
    now[0] = 2 * 3600 + 1
    assert not await history.contains("zim:1:r") and await history.get("zim:1:r") is None


def test_a_long_problem_is_clipped_without_cutting_an_escape():
    message = changed_while_read_message("r", "&" * 3000, baseline_at=None)
    assert_within_slack_limits(message)
    assert_no_live_markup(message)
    assert "&amp;…), so it is not compared" in message.blocks[1]["text"]["text"]


def test_a_too_soon_changes_says_how_long_to_wait():
    text = changes_too_soon_message("lobby", age=5.2, refresh_min=10).text
    assert "The last complete read of room `lobby` was 5 s ago; try again in 5 s" in text


def test_a_changes_page_button_carries_the_room_size_and_reads_older_buttons_without_it():
    ref = ChangesPage("0123456789ab", "lobby", 2, "", users_now=12)
    assert decode_changes_page(encode_changes_page(ref)) == ref
    assert decode_changes_page('{"v":1,"c":"0123456789ab","r":"lobby","p":2}').users_now is None
    with pytest.raises(StaleButton):
        decode_changes_page('{"v":1,"c":"0123456789ab","r":"lobby","p":2,"n":-1}')
