"""Page arithmetic, filtering, navigation through button values (Prev/Next and the tools), the RoomView
encoding, and the filter length cap shared by parsing, encoding and decoding."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.roster.model import RoomUser, Roster
from bot.roster.view import (
    MAX_FILTER_CHARS,
    PAGE_SIZE,
    RoomView,
    clamp_page,
    filter_users,
    page_count,
    page_slice,
)
from bot.settings import PROFILE_NAME
from bot.slack.parsing import InvalidRequest, parse_command_text
from bot.slack.render.blocks import (
    EXPORT_ACTION_ID,
    EXPORT_MATCHES_ACTION_ID,
    NEXT_ACTION_ID,
    ORDER_ACTION_ID,
    PAGING_BLOCK_ID,
    PREV_ACTION_ID,
    REFRESH_ACTION_ID,
    TOOLS_BLOCK_ID,
    Message,
    roster_message,
)
from bot.slack.render.buttons import (
    MAX_BUTTON_VALUE,
    MAX_FILTER_VALUE_UNITS,
    StaleButton,
    decode_view,
    encode_view,
    filter_value_units,
)
from bot.slack.render.escaping import escape_mrkdwn, slack_length
from bot.slack.render.text import LAST_EPOCH
from bot.zim.room_id import ROOM_ID_SYMBOLS

FETCHED = 1_700_000_000.0


def make_roster(count: int, room_id: str = "lobby-1") -> Roster:
    users = tuple(RoomUser(f"u{i}", f"User {i}") for i in range(1, count + 1))
    return Roster(room_id, users, count, FETCHED)


def buttons(message: Message, block_id: str = PAGING_BLOCK_ID) -> dict[str, dict[str, Any]]:
    """The buttons of one actions block (the Prev/Next block unless told), by action_id, in order."""
    blocks = [block for block in message.blocks if block.get("block_id") == block_id]
    assert len(blocks) <= 1
    assert all(block["type"] == "actions" for block in blocks)
    return {button["action_id"]: button for block in blocks for button in block["elements"]}


def tools(message: Message) -> dict[str, dict[str, Any]]:
    return buttons(message, TOOLS_BLOCK_ID)


def click(found: dict[str, dict[str, Any]], action_id: str) -> RoomView:
    return decode_view(found[action_id]["value"])


def listed_ids(message: Message) -> list[str]:
    lists = [block for block in message.blocks if block["type"] == "section" and block["text"].get("verbatim")][1:]
    if not lists:
        return []
    return [line.rsplit("`", 2)[1] for line in lists[0]["text"]["text"].split("\n")]


def render(roster: Roster, ref: RoomView) -> Message:
    return roster_message(
        roster,
        page=ref.page,
        newest_first=ref.newest_first,
        now=FETCHED + 5,
        filter_text=ref.filter_text,
        profile=ref.profile,
    )


@pytest.mark.parametrize(("total", "pages"), [(0, 1), (1, 1), (PAGE_SIZE, 1), (PAGE_SIZE + 1, 2), (120, 6), (121, 7)])
def test_page_count(total: int, pages: int) -> None:
    assert page_count(total) == pages


@pytest.mark.parametrize(("page", "total", "clamped"), [(0, 50, 1), (-3, 50, 1), (2, 50, 2), (9, 50, 3), (5, 0, 1)])
def test_clamp_page(page: int, total: int, clamped: int) -> None:
    assert clamp_page(page, total) == clamped


def test_page_slice() -> None:
    users = list(range(45))
    assert page_slice(users, 1) == list(range(20))
    assert page_slice(users, 3) == list(range(40, 45))
    assert page_slice(users, 4) == []
    assert page_slice(users, 0) == []
    assert page_slice(users, 2, page_size=10) == list(range(10, 20))


def test_filter_users_is_casefolded_substring_of_id_or_name() -> None:
    users = (RoomUser("id-STRASSE", "x"), RoomUser("u2", "Straße"), RoomUser("u3", "Bob"), RoomUser("u4", "ANNA"))
    assert filter_users(users, "strasse") == users[:2]  # casefold: ß matches ss
    assert filter_users(users, " anna ") == users[3:]
    assert filter_users(users, "") == users
    assert filter_users(users, "zzz") == ()


def test_next_buttons_visit_every_user_exactly_once() -> None:
    roster = make_roster(120)
    ref = RoomView(roster.room_id, 1, fetched_at=roster.fetched_at)
    seen: list[str] = []
    pages = 0
    while True:
        message = render(roster, ref)
        seen += listed_ids(message)
        pages += 1
        found = buttons(message)
        assert (PREV_ACTION_ID in found) == (ref.page > 1)
        assert click(tools(message), REFRESH_ACTION_ID) == ref  # refresh redraws the page it sits on
        if NEXT_ACTION_ID not in found:
            break
        ref = decode_view(found[NEXT_ACTION_ID]["value"])
        assert ref.fetched_at == FETCHED
    assert pages == 6
    assert seen == [f"u{i}" for i in range(1, 121)]


def test_prev_from_page_three_goes_to_page_two() -> None:
    message = render(make_roster(120), RoomView("lobby-1", 3, newest_first=True, filter_text="User", profile="staging"))
    found = buttons(message)
    assert decode_view(found[PREV_ACTION_ID]["value"]) == RoomView("lobby-1", 2, True, FETCHED, "User", "staging")
    assert decode_view(found[NEXT_ACTION_ID]["value"]).page == 4


def test_first_and_last_pages_have_one_button() -> None:
    roster = make_roster(45)
    assert list(buttons(render(roster, RoomView("lobby-1", 1)))) == [NEXT_ACTION_ID]
    assert list(buttons(render(roster, RoomView("lobby-1", 3)))) == [PREV_ACTION_ID]


@pytest.mark.parametrize("count", [0, 1, PAGE_SIZE])
def test_single_page_has_no_paging_block(count: int) -> None:
    message = render(make_roster(count), RoomView("lobby-1", 1))
    assert buttons(message) == {}
    actions = [block for block in message.blocks if block["type"] == "actions"]
    assert [block["block_id"] for block in actions] == [TOOLS_BLOCK_ID]  # only the tools, last
    assert message.blocks[-1] is actions[0]
    assert NEXT_ACTION_ID not in tools(message)
    assert PREV_ACTION_ID not in tools(message)


def test_order_button_restarts_at_page_one_in_the_other_order() -> None:
    roster = make_roster(120)
    ref = RoomView("lobby-1", 3, filter_text="user", profile="staging")
    flipped = click(tools(render(roster, ref)), ORDER_ACTION_ID)
    assert flipped == RoomView("lobby-1", 1, True, FETCHED, "user", "staging")
    newest = render(roster, flipped)
    assert listed_ids(newest) == [f"u{i}" for i in range(120, 100, -1)]
    back = click(tools(newest), ORDER_ACTION_ID)
    assert back == RoomView("lobby-1", 1, False, FETCHED, "user", "staging")
    assert listed_ids(render(roster, back)) == [f"u{i}" for i in range(1, 21)]


def test_refresh_and_export_keep_page_order_filter_and_profile() -> None:
    users = tuple(RoomUser(f"u{i}", "even" if i % 2 == 0 else "odd") for i in range(1, 101))
    roster = Roster("lobby-1", users, 100, FETCHED)
    ref = RoomView("lobby-1", 2, True, FETCHED, "EVEN", "staging")
    message = render(roster, ref)
    found = tools(message)
    assert list(found) == [ORDER_ACTION_ID, REFRESH_ACTION_ID, EXPORT_ACTION_ID, EXPORT_MATCHES_ACTION_ID]
    assert click(found, REFRESH_ACTION_ID) == ref
    assert click(found, EXPORT_ACTION_ID) == ref
    assert click(found, EXPORT_MATCHES_ACTION_ID) == ref
    assert listed_ids(message) == [f"u{i}" for i in range(60, 20, -2)]
    # a refresh click draws the very same page again
    assert listed_ids(render(roster, click(found, REFRESH_ACTION_ID))) == listed_ids(message)


def test_filters_page_within_matches() -> None:
    users = tuple(RoomUser(f"u{i}", "even" if i % 2 == 0 else "odd") for i in range(1, 101))
    roster = Roster("lobby-1", users, 100, FETCHED)
    ref = RoomView("lobby-1", 1, filter_text="EVEN")
    seen: list[str] = []
    while True:
        message = render(roster, ref)
        assert message.blocks[1]["text"]["text"] == "*50 of 100 users* match “EVEN”"
        seen += listed_ids(message)
        found = buttons(message)
        if NEXT_ACTION_ID not in found:
            break
        ref = decode_view(found[NEXT_ACTION_ID]["value"])
        assert ref.filter_text == "EVEN"
    assert seen == [f"u{i}" for i in range(2, 101, 2)]
    assert ref.page == 3


# --- encoding -------------------------------------------------------------------------------------------


def test_encoding_is_compact_and_omits_defaults() -> None:
    assert encode_view(RoomView("lobby-1", 2)) == '{"v":1,"r":"lobby-1","p":2}'
    value = encode_view(RoomView("a&<b>", 3, True, 1_700_000_000.9, "anna", "staging"))
    assert "<" not in value
    assert ">" not in value
    assert "&" not in value
    assert json.loads(value) == {"v": 1, "r": "a&<b>", "p": 3, "o": 1, "t": 1700000000, "f": "anna", "a": "staging"}


def longest_filter(char: str) -> str:
    """The longest filter of `char` a command accepts: MAX_FILTER_CHARS, or fewer when JSON escapes `char`."""
    return char * min(MAX_FILTER_CHARS, MAX_FILTER_VALUE_UNITS // filter_value_units(char))


def test_long_filters_are_cut_to_the_cap() -> None:
    for filter_text in ("x" * 5000, "&" * 5000, "😀" * 3000, "\x01" * 3000, "a" * MAX_FILTER_CHARS + "b"):
        value = encode_view(RoomView("&" * 32, 10**6, True, FETCHED, filter_text, "p" * 32))
        assert len(value.encode("utf-16-le")) // 2 <= MAX_BUTTON_VALUE
        decoded = decode_view(value)
        assert decoded.filter_text == longest_filter(filter_text[0])
    lone = encode_view(RoomView("lobby", 1, filter_text="\ud800" * (MAX_FILTER_CHARS + 36)))
    assert decode_view(lone).filter_text == "\ufffd" * MAX_FILTER_CHARS


@pytest.mark.parametrize("char", ["x", "&", "<", ">", "😀", "\x00", "\x01", '"', "\\", "\u2028", "\ud83d"])
def test_the_longest_filters_fit_whole_in_the_longest_value(char: str) -> None:
    """Worst case: a 32-char room ID and the longest filter a command accepts, all fields set."""
    filter_text = longest_filter(char)
    ref = RoomView("&" * 32, 10**9, True, float(LAST_EPOCH), filter_text, "p" * 32)
    value = encode_view(ref)
    assert slack_length(value) <= MAX_BUTTON_VALUE // 2  # six buttons of this size stay within a message's budget
    expected = filter_text.replace("\ud83d", "\ufffd")  # a lone surrogate cannot be sent
    assert decode_view(value) == RoomView("&" * 32, 10**9, True, float(LAST_EPOCH), expected, "p" * 32)


@pytest.mark.parametrize("char", ["x", "&", "😀", "\x00"])
def test_decoding_refuses_a_filter_over_the_cap(char: str) -> None:
    at_cap = json.dumps({"v": 1, "r": "lobby", "p": 2, "f": char * MAX_FILTER_CHARS}, ensure_ascii=False)
    assert decode_view(at_cap).filter_text == char * MAX_FILTER_CHARS
    over = json.dumps({"v": 1, "r": "lobby", "p": 2, "f": char * (MAX_FILTER_CHARS + 1)}, ensure_ascii=False)
    assert slack_length(over) <= MAX_BUTTON_VALUE  # refused for its filter, not for its size
    with pytest.raises(StaleButton, match="over-long filter"):
        decode_view(over)


@pytest.mark.parametrize(
    ("text", "filter_text"),
    [
        ("lobby " + "a" * MAX_FILTER_CHARS, "a" * MAX_FILTER_CHARS),
        ("lobby " + " ".join(["abc"] * 64), " ".join(["abc"] * 64)),  # 255 with the joining spaces
        ("lobby " + "&amp;" * 90, "&" * 90),  # counted after Slack's escaping; & takes 6 units in a button
        ("lobby " + "&lt;" * 90, "<" * 90),
        ("lobby " + "😀" * MAX_FILTER_CHARS, "😀" * MAX_FILTER_CHARS),
        ("lobby a" + " " * 500 + "b", "a b"),  # runs of spaces collapse before counting
        ("lobby --reverse " + "a" * MAX_FILTER_CHARS + " --app=staging", "a" * MAX_FILTER_CHARS),
    ],
    ids=["letters", "words", "escaped-amp", "escaped-lt", "emoji", "spaces", "with-options"],
)
def test_parsing_accepts_filters_up_to_the_cap(text: str, filter_text: str) -> None:
    result = parse_command_text(text)
    assert isinstance(result, RoomView)
    assert result.filter_text == filter_text


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("lobby " + "a" * (MAX_FILTER_CHARS + 1), MAX_FILTER_CHARS + 1),
        ("lobby " + " ".join(["abc"] * 65), 259),
        ("lobby " + "&lt;" * (MAX_FILTER_CHARS + 1), MAX_FILTER_CHARS + 1),
        ("lobby " + "😀" * (MAX_FILTER_CHARS + 1), MAX_FILTER_CHARS + 1),
        ("lobby --reverse " + "x" * 5000 + " --app=staging", 5000),
    ],
    ids=["letters", "words", "escaped-lt", "emoji", "with-options"],
)
def test_parsing_refuses_a_filter_over_the_cap(text: str, length: int) -> None:
    result = parse_command_text(text)
    assert isinstance(result, InvalidRequest)
    assert f"{length:,} characters long" in result.problem
    assert "it can match nothing, since a ZIM user name has at most 256 bytes" in result.problem
    assert escape_mrkdwn(result.problem) == result.problem  # safe mrkdwn: no &, < or > at all


@pytest.mark.parametrize(("text", "units"), [("lobby " + "&amp;" * 91, 546), ("lobby " + "&amp;" * 80 + '"' * 31, 542)])
def test_parsing_refuses_a_filter_too_long_for_the_buttons(text: str, units: int) -> None:
    result = parse_command_text(text)
    assert isinstance(result, InvalidRequest)
    assert f"it takes {units:,} of the {MAX_FILTER_VALUE_UNITS:,} places there" in result.problem
    assert escape_mrkdwn(result.problem) == result.problem


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(max_size=300), st.text(min_size=247, max_size=267)))
def test_every_parsed_filter_survives_a_button_unchanged(raw: str) -> None:
    result = parse_command_text("lobby " + escape_mrkdwn(raw))
    if isinstance(result, RoomView) and result.room_id == "lobby":
        assert len(result.filter_text) <= MAX_FILTER_CHARS
        ref = RoomView("lobby", 2, result.newest_first, FETCHED, result.filter_text, result.profile)
        clean_filter = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in result.filter_text)
        assert decode_view(encode_view(ref)).filter_text == clean_filter


@pytest.mark.parametrize(
    "ref",
    [RoomView("bad room", 1), RoomView("", 1), RoomView("lobby", 0), RoomView("lobby", 1, profile="bad profile!")],
)
def test_refs_a_click_could_not_use_are_not_encoded(ref: RoomView) -> None:
    with pytest.raises(ValueError, match="cannot be put in a button"):
        encode_view(ref)


_room_ids = st.text(st.sampled_from(string.ascii_letters + string.digits + ROOM_ID_SYMBOLS), min_size=1, max_size=32)


@settings(max_examples=150, deadline=None)
@given(
    room_id=_room_ids,
    page=st.integers(min_value=1, max_value=10**9),
    newest_first=st.booleans(),
    fetched_at=st.one_of(st.just(0.0), st.integers(1, 4_000_000_000).map(float)),
    filter_text=st.text(max_size=300),
    profile=st.one_of(st.just(""), st.from_regex(PROFILE_NAME, fullmatch=True)),
)
def test_page_ref_round_trip(
    room_id: str, page: int, newest_first: bool, fetched_at: float, filter_text: str, profile: str
) -> None:
    ref = RoomView(room_id, page, newest_first, fetched_at, filter_text, profile)
    value = encode_view(ref)
    assert len(value) <= MAX_BUTTON_VALUE
    for char in "<>&":
        assert char not in value
    value.encode("utf-8")
    decoded = decode_view(value)
    clean_filter = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in filter_text)
    assert decoded == RoomView(room_id, page, newest_first, fetched_at, clean_filter[:MAX_FILTER_CHARS], profile)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "2",
        "next",
        '{"page":2}',
        '{"room":"lobby","page":2}',
        "[1,2]",
        "null",
        '"lobby"',
        '{"v":2,"r":"lobby","p":2}',
        '{"v":"1","r":"lobby","p":2}',
        '{"v":true,"r":"lobby","p":2}',
        '{"v":1,"p":2}',
        '{"v":1,"r":"lobby"}',
        '{"v":1,"r":"lobby","p":0}',
        '{"v":1,"r":"lobby","p":-1}',
        '{"v":1,"r":"lobby","p":"2"}',
        '{"v":1,"r":"lobby","p":2.0}',
        '{"v":1,"r":"lobby","p":true}',
        '{"v":1,"r":"bad room","p":2}',
        '{"v":1,"r":"","p":2}',
        '{"v":1,"r":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","p":2}',
        '{"v":1,"r":5,"p":2}',
        '{"v":1,"r":"lobby","p":2,"o":2}',
        '{"v":1,"r":"lobby","p":2,"o":true}',
        '{"v":1,"r":"lobby","p":2,"t":-1}',
        '{"v":1,"r":"lobby","p":2,"t":1.5}',
        '{"v":1,"r":"lobby","p":2,"t":999999999999999}',
        '{"v":1,"r":"lobby","p":2,"f":3}',
        '{"v":1,"r":"lobby","p":2,"a":"bad profile"}',
        '{"v":1,"r":"lobby","p":2,"a":5}',
        '{"v":1,"r":"lobby","p":2,"x":1}',
        '{"v":1,"r":"lobby","p":NaN}',
        '{"v":1,"r":"lobby","p":2',
        "[" * 5000 + "]" * 5000,
        '{"v":1,"r":"lobby","p":2,"f":"' + "x" * 2000 + '"}',
        '{"v":1,"r":"lobby","p":2,"f":"' + "x" * (MAX_FILTER_CHARS + 1) + '"}',
        '{"v":1,"r":"lobby","p":2,"f":"' + "\\u0026" * (MAX_FILTER_CHARS + 1) + '"}',
    ],
)
def test_foreign_and_old_values_are_stale(value: str) -> None:
    with pytest.raises(StaleButton):
        decode_view(value)


def test_escaped_and_unescaped_json_decode_alike() -> None:
    assert decode_view('{"v":1,"r":"a\\u0026b","p":2}') == decode_view('{"v":1,"r":"a&b","p":2}')
