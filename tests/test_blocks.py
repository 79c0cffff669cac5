"""Block Kit output: escaping, layout, Slack's limits and slack_sdk validation for arbitrary rosters."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bot.roster.model import RoomUser, Roster
from bot.roster.view import (
    MAX_FILTER_CHARS,
    PAGE_SIZE,
    RoomView,
    can_carry_profile,
    clamp_page,
    filter_users,
    page_count,
)
from bot.settings import PROFILE_NAME
from bot.slack.render.blocks import (
    EXPORT_ACTION_ID,
    EXPORT_MATCHES_ACTION_ID,
    NEXT_ACTION_ID,
    ORDER_ACTION_ID,
    PAGING_BLOCK_ID,
    PREV_ACTION_ID,
    REFRESH_ACTION_ID,
    SHARE_ACTION_ID,
    TOOLS_BLOCK_ID,
    Loading,
    Message,
    loading_text,
    problem_message,
    roster_message,
    usage_message,
)
from bot.slack.render.buttons import MAX_FILTER_VALUE_UNITS, decode_view, filter_value_units
from bot.slack.render.escaping import clean_untrusted, escape_mrkdwn, slack_length, unescape_slack
from bot.slack.render.text import LAST_EPOCH

NOW = 1_700_000_100.0
FETCHED = 1_700_000_000.0
HOSTILE = [
    "<!channel>",
    "<!here|here>",
    "<!everyone>",
    "<@U123ABC>",
    "<#C123|general>",
    "<!subteam^S123>",
    "<https://evil.example|Click me>",
    "<http://x>",
    "a & b",
    "&lt;!channel&gt;",
]
# What roster_message accepts as a sharer (Slack user IDs); anything else must not be rendered at all.
SHARER_ID = r"[UW][A-Z0-9]{2,20}"
CREDIT = "requested by"  # the context's words before the sharer's mention


def roster(users: list[RoomUser] | tuple[RoomUser, ...], room_id: str = "lobby-1", **kwargs: Any) -> Roster:
    return Roster(
        room_id, tuple(users), kwargs.pop("reported_count", len(users)), kwargs.pop("fetched_at", FETCHED), **kwargs
    )


def numbered(count: int) -> list[RoomUser]:
    return [RoomUser(f"u{i}", f"User {i}") for i in range(1, count + 1)]


def _texts(node: Any) -> list[str]:
    """Every text-object string and button value in a block tree."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") in ("plain_text", "mrkdwn"):
            found.append(node["text"])
        if node.get("type") == "button" and "value" in node:
            found.append(node["value"])
        for key, value in node.items():
            if key != "text" or not isinstance(value, str):
                found += _texts(value)
    elif isinstance(node, list):
        for item in node:
            found += _texts(item)
    return found


def assert_within_slack_limits(message: Message) -> None:
    """Slack's documented limits plus our budget for the undocumented total, measured in UTF-16 units."""
    assert message.text.strip()
    assert slack_length(message.text) <= 4000
    assert 1 <= len(message.blocks) <= 50
    block_ids = [block["block_id"] for block in message.blocks if "block_id" in block]
    assert len(block_ids) == len(set(block_ids))  # Slack rejects a message with a repeated block_id
    for block in message.blocks:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()
        assert parsed.to_dict() == block  # nothing we send is unknown to slack_sdk
        if block["type"] == "header":
            assert slack_length(block["text"]["text"]) <= 150
        if block["type"] == "actions":
            assert 1 <= len(block["elements"]) <= 25
            action_ids = [button["action_id"] for button in block["elements"]]
            assert len(action_ids) == len(set(action_ids))
            for button in block["elements"]:
                assert slack_length(button["text"]["text"]) <= 75
                assert slack_length(button["value"]) <= 2000
    texts = _texts(message.blocks)
    assert all(1 <= slack_length(text) <= 3000 for text in texts)
    assert sum(slack_length(text) for text in texts) <= 10_000


def assert_no_live_markup(message: Message, shared_by: str = "") -> None:
    """No mention, broadcast or link syntax anywhere except our own date token and, when `shared_by` is a
    Slack user ID, one mention of that sharer in the context block."""
    own_markup = r"<!date\^\d+\^\{date_short_pretty\} \{time_secs\}\|[^<>]*>"
    sharer = re.fullmatch(SHARER_ID, shared_by) is not None
    if sharer:
        contexts = [block for block in message.blocks if block["type"] == "context"]
        assert [json.dumps(block).count(f"<@{shared_by}>") for block in contexts] == [1]
        own_markup += "|" + re.escape(f"<@{shared_by}>")
    dumped = json.dumps(message.to_payload(), ensure_ascii=False)
    assert dumped.count("<@") == int(sharer)
    without_ours = re.sub(own_markup, "", dumped)
    assert "<" not in without_ours
    assert ">" not in without_ours
    for raw in ("<!", "<@", "<#", "<http", "&&"):
        assert raw not in without_ours
    # every & starts one of the three entities Slack decodes
    plain = json.loads(json.dumps(message.to_payload()))
    for text in [plain["text"], *_texts(plain["blocks"])]:
        assert re.fullmatch(r"(?:[^&]|&amp;|&lt;|&gt;)*", re.sub(own_markup, "", text), re.DOTALL), text


def all_pages(r: Roster, **kwargs: Any) -> list[Message]:
    total = len(r.users)
    return [roster_message(r, page=page, now=NOW, **kwargs) for page in range(1, page_count(total) + 1)]


def block_by_id(message: Message, block_id: str) -> dict[str, Any] | None:
    found = [block for block in message.blocks if block.get("block_id") == block_id]
    assert len(found) <= 1
    return found[0] if found else None


def action_ids(message: Message, block_id: str) -> list[str]:
    block = block_by_id(message, block_id)
    return [] if block is None else [button["action_id"] for button in block["elements"]]


def button(message: Message, block_id: str, action_id: str) -> dict[str, Any]:
    block = block_by_id(message, block_id)
    assert block is not None
    found: list[dict[str, Any]] = [element for element in block["elements"] if element["action_id"] == action_id]
    assert len(found) == 1
    return found[0]


def clicked(message: Message, block_id: str, action_id: str) -> RoomView:
    return decode_view(button(message, block_id, action_id)["value"])


def context_of(message: Message) -> str:
    (context,) = [block for block in message.blocks if block["type"] == "context"]
    text: str = context["elements"][0]["text"]
    return text


# --- escaping -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a & b", "a &amp; b"),
        ("<!channel>", "&lt;!channel&gt;"),
        ("&lt;", "&amp;lt;"),
        ("*bold* _it_ `code` ~s~ \"q\" 'a'", "*bold* _it_ `code` ~s~ \"q\" 'a'"),
        ("", ""),
    ],
)
def test_escape_mrkdwn_and_back(raw: str, escaped: str) -> None:
    assert escape_mrkdwn(raw) == escaped
    assert unescape_slack(escaped) == raw


def test_unescape_order_keeps_literal_entities() -> None:
    assert unescape_slack("&amp;lt; &lt;b&gt; &amp;amp;") == "&lt; <b> &amp;"


@pytest.mark.parametrize(
    ("raw", "limit", "cleaned"),
    [
        ("  Anna   Lee ", 80, "Anna Lee"),
        ("line1\nline2\r\n\tx", 80, "line1 line2 x"),
        ("evil\u202etxt.exe", 80, "evil txt.exe"),  # bidi override
        ("zero\u200bwidth\ufeff", 80, "zero width"),
        ("para\u2029graph\u2028line\x00nul\x1b[31m", 80, "para graph line nul [31m"),
        ("\n\t\u200b ", 80, ""),
        ("abcdefghij", 5, "abcd…"),
        ("abcd ", 4, "abcd"),
        ("ab   cdef", 4, "ab…"),
        ("😀😀😀😀", 3, "😀😀…"),
        ("lone \ud800 surrogate", 80, "lone \ufffd surrogate"),
        ("x", 0, ""),
    ],
)
def test_clean_untrusted(raw: str, limit: int, cleaned: str) -> None:
    assert clean_untrusted(raw, limit) == cleaned


def test_clean_untrusted_long_inputs_match_a_slow_reference() -> None:
    spaced = " \n" * 5000 + "name"
    assert clean_untrusted(spaced, 10) == "name"
    assert clean_untrusted("a" * 10_000, 80) == "a" * 79 + "…"
    assert clean_untrusted(("ab \u200b" * 3000) + "end", 2000) == ("ab " * 3000)[:1999].rstrip() + "…"


@settings(max_examples=150, deadline=None)
@given(st.text(), st.integers(min_value=1, max_value=50))
def test_clean_untrusted_properties(raw: str, limit: int) -> None:
    cleaned = clean_untrusted(raw, limit)
    assert len(cleaned) <= limit
    assert cleaned == cleaned.strip()
    assert "  " not in cleaned
    assert not re.search(r"[\x00-\x1f\x7f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]", cleaned)
    cleaned.encode("utf-8")  # no lone surrogates


# --- roster_message layout ------------------------------------------------------------------------------


def test_first_page_layout() -> None:
    message = roster_message(roster(numbered(45)), page=1, now=NOW)
    types = [block["type"] for block in message.blocks]
    assert types == ["header", "section", "section", "context", "actions", "actions"]
    header, summary, users, context, actions, tools = message.blocks
    assert header["text"] == {"type": "plain_text", "text": "Room lobby-1", "emoji": False}
    assert summary["text"]["text"] == "*45 users* in this room"
    assert users["text"]["verbatim"] is True
    lines = users["text"]["text"].split("\n")
    assert len(lines) == PAGE_SIZE
    assert lines[0] == "1. User 1 · `u1`"
    assert lines[-1] == "20. User 20 · `u20`"
    context_text = context["elements"][0]["text"]
    assert context_text.startswith("Page 1 of 3 · users 1–20 · join order · fetched <!date^1700000000^")
    assert "|2023-11-14 22:13:20 UTC>" in context_text
    assert context_text.endswith(" · fresh")
    assert actions["block_id"] == PAGING_BLOCK_ID
    assert [button["action_id"] for button in actions["elements"]] == [NEXT_ACTION_ID]
    assert tools["block_id"] == TOOLS_BLOCK_ID
    assert [button["action_id"] for button in tools["elements"]] == [
        ORDER_ACTION_ID,
        REFRESH_ACTION_ID,
        EXPORT_ACTION_ID,
    ]
    assert [button["text"]["text"] for button in tools["elements"]] == ["⇅ Newest first", "↻ Refresh", "⬇ Export CSV"]
    assert "45 users" in message.text
    assert_within_slack_limits(message)


def test_newest_first_cache_and_profile() -> None:
    message = roster_message(
        roster(numbered(3)), page=1, now=FETCHED + 125, newest_first=True, from_cache=True, profile="staging"
    )
    lines = message.blocks[2]["text"]["text"].split("\n")
    assert lines == ["1. User 3 · `u3`", "2. User 2 · `u2`", "3. User 1 · `u1`"]
    assert message.blocks[3]["type"] == "context"
    context_text = context_of(message)
    assert "most recent first" in context_text
    assert "from cache, 2 min old" in context_text
    assert context_text.endswith(" · app staging")
    # one page: no paging block; the message ends with the tools block
    assert [block["type"] for block in message.blocks] == ["header", "section", "section", "context", "actions"]
    assert block_by_id(message, PAGING_BLOCK_ID) is None
    assert message.blocks[-1]["block_id"] == TOOLS_BLOCK_ID
    assert button(message, TOOLS_BLOCK_ID, ORDER_ACTION_ID)["text"]["text"] == "⇅ Oldest first"


@pytest.mark.parametrize(
    ("users", "kwargs", "summary"),
    [
        (1, {}, "*1 user* in this room"),
        (1234, {}, "*1,234 users* in this room"),
        (5, {"reported_count": 7}, "*5 users* in this room (ZIM reports 7)"),
        (0, {}, "This room is empty"),
        (0, {"being_destroyed": True}, "This room is empty (it is being destroyed)"),
    ],
)
def test_summaries(users: int, kwargs: dict[str, Any], summary: str) -> None:
    message = roster_message(roster(numbered(users), **kwargs), page=1, now=NOW)
    assert message.blocks[1]["text"]["text"] == summary
    assert_within_slack_limits(message)


def test_empty_room_has_no_user_list_and_only_refresh() -> None:
    message = roster_message(roster([]), page=1, now=NOW)
    assert [block["type"] for block in message.blocks] == ["header", "section", "context", "actions"]
    assert message.blocks[2]["elements"][0]["text"].startswith("Page 1 of 1 · join order")
    assert message.blocks[3]["block_id"] == TOOLS_BLOCK_ID
    assert action_ids(message, TOOLS_BLOCK_ID) == [REFRESH_ACTION_ID]  # nothing to order or export
    assert clicked(message, TOOLS_BLOCK_ID, REFRESH_ACTION_ID) == RoomView("lobby-1", 1, False, FETCHED)
    assert_within_slack_limits(message)


def test_filtered_summary_and_positions() -> None:
    users = [RoomUser("u1", "Anna"), RoomUser("u2", "Bob"), RoomUser("ANN-3", "Carl"), RoomUser("u4", "joANNe")]
    message = roster_message(roster(users), page=1, now=NOW, filter_text="ann")
    assert message.blocks[1]["text"]["text"] == "*3 of 4 users* match “ann”"
    assert message.blocks[2]["text"]["text"].split("\n") == ["1. Anna · `u1`", "2. Carl · `ANN-3`", "3. joANNe · `u4`"]
    one = roster_message(roster(users), page=1, now=NOW, filter_text="bob")
    assert one.blocks[1]["text"]["text"] == "*1 of 4 users* matches “bob”"
    none = roster_message(roster(users), page=1, now=NOW, filter_text="<zed&>")
    assert none.blocks[1]["text"]["text"] == "*0 of 4 users* match “&lt;zed&amp;&gt;”"
    assert [block["type"] for block in none.blocks] == ["header", "section", "context", "actions"]
    assert none.blocks[3]["block_id"] == TOOLS_BLOCK_ID
    # the roster has users (only the filter matches none), so order and export stay
    assert action_ids(none, TOOLS_BLOCK_ID) == [ORDER_ACTION_ID, REFRESH_ACTION_ID, EXPORT_ACTION_ID]
    assert clicked(none, TOOLS_BLOCK_ID, REFRESH_ACTION_ID).filter_text == "<zed&>"
    assert_no_live_markup(none)


def test_missing_names_and_ids_get_placeholders() -> None:
    message = roster_message(roster([RoomUser("", "\u200b\n"), RoomUser("u2", "")]), page=1, now=NOW)
    assert message.blocks[2]["text"]["text"] == "1. _(no name)_ · _(no ID)_\n2. _(no name)_ · `u2`"


def test_out_of_range_page_is_clamped() -> None:
    message = roster_message(roster(numbered(45)), page=99, now=NOW)
    assert message.blocks[3]["elements"][0]["text"].startswith("Page 3 of 3 · users 41–45")
    assert action_ids(message, PAGING_BLOCK_ID) == [PREV_ACTION_ID]
    assert clicked(message, PAGING_BLOCK_ID, PREV_ACTION_ID).page == 2
    assert clicked(message, TOOLS_BLOCK_ID, REFRESH_ACTION_ID).page == 3  # the clamped page, not 99


@pytest.mark.parametrize("fetched_at", [0.0, -5.0, float("nan"), float("inf"), 1e20])
def test_odd_fetch_times_do_not_break_rendering(fetched_at: float) -> None:
    message = roster_message(roster(numbered(30), fetched_at=fetched_at), page=1, now=NOW, from_cache=True)
    assert "fetched at an unknown time" in message.blocks[3]["elements"][0]["text"]
    assert_within_slack_limits(message)
    values = [
        element["value"] for block in message.blocks if block["type"] == "actions" for element in block["elements"]
    ]
    assert len(values) == 4  # Next, and the order, refresh and export tools
    assert all(decode_view(value).fetched_at == 0.0 for value in values)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_text_is_never_live(hostile: str) -> None:
    users = [RoomUser(hostile, hostile) for _ in range(25)]
    r = roster(users, room_id="<!channel>&x")
    messages = all_pages(r) + all_pages(r, filter_text=hostile, profile=hostile)
    messages += all_pages(r, filter_text=hostile, shareable=True, shared_by=hostile)  # not a user ID: ignored
    messages += all_pages(r, filter_text=hostile, loading=Loading(users_read=25, expected=10**6))
    messages += [loading_text_message(hostile), problem_message(escape_mrkdwn(hostile), title=hostile)]
    for message in messages:
        assert_no_live_markup(message)
        assert_within_slack_limits(message)


def loading_text_message(room_id: str) -> Message:
    return Message(text=loading_text(room_id), blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}])


def test_unpageable_room_or_profile_shows_the_page_without_buttons() -> None:
    for room_id, profile in (("bad room", ""), ("lobby", "no spaces allowed"), ("x" * 40, "")):
        r = roster(numbered(45), room_id=room_id)
        message = roster_message(r, page=2, now=NOW, profile=profile, shareable=True)  # no tools either
        assert [block["type"] for block in message.blocks] == ["header", "section", "section", "context"]
        assert message.blocks[3]["elements"][0]["text"].startswith("Page 2 of 3 · users 21–40")
        loading = roster_message(r, page=1, now=NOW, profile=profile, loading=Loading(20, 45))
        assert [block["type"] for block in loading.blocks] == ["header", "section", "section", "context"]


# --- tools, sharing and loading -------------------------------------------------------------------------


def test_tools_follow_paging_and_carry_the_page_shown() -> None:
    message = roster_message(roster(numbered(45)), page=2, now=NOW, filter_text="  User ", profile="staging")
    assert [block.get("block_id") for block in message.blocks[-2:]] == [PAGING_BLOCK_ID, TOOLS_BLOCK_ID]
    assert action_ids(message, PAGING_BLOCK_ID) == [PREV_ACTION_ID, NEXT_ACTION_ID]
    assert action_ids(message, TOOLS_BLOCK_ID) == [
        ORDER_ACTION_ID,
        REFRESH_ACTION_ID,
        EXPORT_ACTION_ID,
        EXPORT_MATCHES_ACTION_ID,
    ]
    here = RoomView("lobby-1", 2, False, FETCHED, "User", "staging")  # the filter as applied: stripped
    assert clicked(message, TOOLS_BLOCK_ID, REFRESH_ACTION_ID) == here
    assert clicked(message, TOOLS_BLOCK_ID, EXPORT_ACTION_ID) == here
    assert clicked(message, TOOLS_BLOCK_ID, EXPORT_MATCHES_ACTION_ID) == here
    assert button(message, TOOLS_BLOCK_ID, EXPORT_MATCHES_ACTION_ID)["text"]["text"] == "⬇ Export 45 matches"
    unfiltered = roster_message(roster(numbered(45)), page=2, now=NOW)
    assert EXPORT_MATCHES_ACTION_ID not in action_ids(unfiltered, TOOLS_BLOCK_ID)
    nothing = roster_message(roster(numbered(45)), page=1, now=NOW, filter_text="zzz")
    assert EXPORT_MATCHES_ACTION_ID not in action_ids(nothing, TOOLS_BLOCK_ID)
    # flipping the order starts again at page 1, keeping snapshot, filter and profile
    assert clicked(message, TOOLS_BLOCK_ID, ORDER_ACTION_ID) == RoomView("lobby-1", 1, True, FETCHED, "User", "staging")
    assert button(message, TOOLS_BLOCK_ID, ORDER_ACTION_ID)["text"]["text"] == "⇅ Newest first"
    assert button(message, TOOLS_BLOCK_ID, REFRESH_ACTION_ID)["text"]["text"] == "↻ Refresh"
    assert button(message, TOOLS_BLOCK_ID, EXPORT_ACTION_ID)["text"]["text"] == "⬇ Export CSV"
    assert_within_slack_limits(message)


def test_order_toggle_from_newest_first_goes_back_to_join_order() -> None:
    message = roster_message(roster(numbered(45)), page=3, newest_first=True, now=NOW, filter_text="user")
    assert button(message, TOOLS_BLOCK_ID, ORDER_ACTION_ID)["text"]["text"] == "⇅ Oldest first"
    assert clicked(message, TOOLS_BLOCK_ID, ORDER_ACTION_ID) == RoomView("lobby-1", 1, False, FETCHED, "user")
    assert clicked(message, TOOLS_BLOCK_ID, REFRESH_ACTION_ID) == RoomView("lobby-1", 3, True, FETCHED, "user")
    assert clicked(message, TOOLS_BLOCK_ID, EXPORT_ACTION_ID) == RoomView("lobby-1", 3, True, FETCHED, "user")


@pytest.mark.parametrize(
    ("count", "tools"),
    [
        (0, [REFRESH_ACTION_ID]),
        (1, [REFRESH_ACTION_ID, EXPORT_ACTION_ID]),
        (2, [ORDER_ACTION_ID, REFRESH_ACTION_ID, EXPORT_ACTION_ID]),
        (PAGE_SIZE, [ORDER_ACTION_ID, REFRESH_ACTION_ID, EXPORT_ACTION_ID]),
        (PAGE_SIZE + 1, [ORDER_ACTION_ID, REFRESH_ACTION_ID, EXPORT_ACTION_ID]),
    ],
)
def test_tools_depend_on_the_roster_and_share_only_when_shareable(count: int, tools: list[str]) -> None:
    r = roster(numbered(count))
    private = roster_message(r, page=1, now=NOW, shareable=True)
    public = roster_message(r, page=1, now=NOW)
    assert action_ids(public, TOOLS_BLOCK_ID) == tools
    assert action_ids(private, TOOLS_BLOCK_ID) == [*tools, SHARE_ACTION_ID]
    assert public.blocks[-1]["block_id"] == private.blocks[-1]["block_id"] == TOOLS_BLOCK_ID
    assert SHARE_ACTION_ID not in json.dumps(public.to_payload())
    assert SHARE_ACTION_ID not in action_ids(private, PAGING_BLOCK_ID)
    share = button(private, TOOLS_BLOCK_ID, SHARE_ACTION_ID)
    assert share["text"]["text"] == "📣 Share in channel"
    assert decode_view(share["value"]) == clicked(private, TOOLS_BLOCK_ID, REFRESH_ACTION_ID)
    # sharing adds one button and changes nothing else
    assert private.text == public.text
    assert private.blocks[:-1] == public.blocks[:-1]
    assert private.blocks[-1]["elements"][:-1] == public.blocks[-1]["elements"]
    for message in (private, public):
        assert_within_slack_limits(message)
        assert_no_live_markup(message)


@pytest.mark.parametrize("user_id", ["U123ABC", "W0AB", "UAB", "U" + "Z9" * 10])
def test_shared_by_credits_the_sharer(user_id: str) -> None:
    r = roster(numbered(45))
    message = roster_message(r, page=2, now=NOW, profile="staging", shared_by=user_id)
    plain = roster_message(r, page=2, now=NOW, profile="staging")
    assert context_of(message) == context_of(plain) + f" · {CREDIT} <@{user_id}>"
    assert context_of(message).endswith(f" · app staging · {CREDIT} <@{user_id}>")
    assert message.text == plain.text  # the fallback (notifications) does not mention anyone
    assert [block for block in message.blocks if block["type"] != "context"] == [
        block for block in plain.blocks if block["type"] != "context"
    ]  # buttons do not carry the sharer
    assert_within_slack_limits(message)
    assert_no_live_markup(message, shared_by=user_id)


@pytest.mark.parametrize(
    "shared_by",
    [
        "",
        "u123abc",
        "U1",
        "U" + "A" * 21,
        "C123ABC",
        "B123ABC",
        "<@U123ABC>",
        "@U123ABC",
        "U123ABC>",
        "U123ABC|x",
        "U123ABC\n",
        " U123ABC",
        "U123 ABC",
        "U123ABÇ",
        "Ｕ123ABC",
        "U１２３",
        "<!channel>",
        "&lt;@U123&gt;",
    ],
)
def test_shared_by_ignores_anything_but_a_user_id(shared_by: str) -> None:
    r = roster(numbered(45))
    message = roster_message(r, page=2, now=NOW, shared_by=shared_by, shareable=True)
    assert message == roster_message(r, page=2, now=NOW, shareable=True)
    assert CREDIT not in json.dumps(message.to_payload())
    assert_no_live_markup(message)


def test_loading_layout() -> None:
    first_page = roster(numbered(PAGE_SIZE + 5), reported_count=1234)
    message = roster_message(
        first_page,
        page=3,  # ignored: only page 1 can be shown while loading
        now=NOW,
        from_cache=True,
        profile="staging",
        loading=Loading(users_read=40, expected=1234),
        shareable=True,
    )
    assert [block["type"] for block in message.blocks] == ["header", "section", "section", "context", "actions"]
    assert message.blocks[1]["text"]["text"] == "*1,234 users* in this room · still loading: 40 of 1,234 read"
    lines = message.blocks[2]["text"]["text"].split("\n")
    assert len(lines) == PAGE_SIZE
    assert lines[0] == "1. User 1 · `u1`"
    assert lines[-1] == "20. User 20 · `u20`"
    assert context_of(message) == "Page 1 of 62 · users 1–20 · join order · loading… · app staging"
    assert "fetched" not in context_of(message)
    assert "(page 1 of 62)" in message.text
    assert block_by_id(message, TOOLS_BLOCK_ID) is None  # no tools (nor share) until the list is complete
    assert message.blocks[-1]["block_id"] == PAGING_BLOCK_ID
    assert action_ids(message, PAGING_BLOCK_ID) == [NEXT_ACTION_ID]
    assert clicked(message, PAGING_BLOCK_ID, NEXT_ACTION_ID) == RoomView("lobby-1", 2, False, FETCHED, "", "staging")
    assert_within_slack_limits(message)
    assert_no_live_markup(message)


@pytest.mark.parametrize(
    ("users", "loading", "summary", "next_button"),
    [
        (0, Loading(0, 0), "*0 users* in this room · still loading: 0 of 0 read", False),
        (1, Loading(1, 1), "*1 user* in this room · still loading: 1 of 1 read", False),
        (PAGE_SIZE, Loading(PAGE_SIZE, PAGE_SIZE), f"*{PAGE_SIZE} users* in this room", False),
        (PAGE_SIZE, Loading(PAGE_SIZE, PAGE_SIZE + 1), f"*{PAGE_SIZE + 1} users* in this room", True),
        (5, Loading(5, 500), "*500 users* in this room · still loading: 5 of 500 read", True),
        (PAGE_SIZE * 3, Loading(10**6, 10**9), "*1,000,000,000 users* in this room", True),
    ],
)
def test_loading_next_button_follows_the_expected_count(
    users: int, loading: Loading, summary: str, next_button: bool
) -> None:
    message = roster_message(roster(numbered(users)), page=1, now=NOW, loading=loading, shareable=True)
    assert message.blocks[1]["text"]["text"].startswith(summary)
    assert "still loading: " in message.blocks[1]["text"]["text"]
    assert context_of(message).startswith(f"Page 1 of {page_count(loading.expected):,} · ")
    assert context_of(message).endswith(" · join order · loading…")
    assert block_by_id(message, TOOLS_BLOCK_ID) is None
    if next_button:
        assert action_ids(message, PAGING_BLOCK_ID) == [NEXT_ACTION_ID]
        assert clicked(message, PAGING_BLOCK_ID, NEXT_ACTION_ID).page == 2
    else:
        assert all(block["type"] != "actions" for block in message.blocks)
        assert message.blocks[-1]["type"] == "context"
    assert_within_slack_limits(message)
    assert_no_live_markup(message)


def test_worst_case_names_still_fit() -> None:
    """Names and IDs that expand 5x when escaped, or are astral (2 UTF-16 units), at 20 per page, with the
    longest filter a command or button can carry (MAX_FILTER_CHARS) and every button and credit shown."""
    sharer = "W" + "Z" * 20  # the longest user ID credited
    for char in ("&", "<", "😀", "a", "\u202e"):
        users = [RoomUser(char * 10_000, char * 10_000) for _ in range(PAGE_SIZE * 3)]
        r = roster(users, room_id="&" * 32)
        for profile in (char * 5000, "p" * 32):  # unpageable (long echo, no buttons) and pageable
            for message in all_pages(
                r, filter_text=char * MAX_FILTER_CHARS, profile=profile, shareable=True, shared_by=sharer
            ):
                assert_within_slack_limits(message)
                assert_no_live_markup(message, shared_by=sharer)
    # The longest button values: the filter expands up to 6x in JSON (\u0026, \u003c, \u0000) or is astral,
    # the room ID expands 6x, and the middle page carries all seven buttons (Prev, Next and five tools).
    for char in ("&", "<", "😀", "\x00"):
        filter_text = char * min(MAX_FILTER_CHARS, MAX_FILTER_VALUE_UNITS // filter_value_units(char))
        users = [RoomUser(filter_text, "x") for _ in range(PAGE_SIZE * 3)]
        r = roster(users, room_id="&" * 32, fetched_at=float(LAST_EPOCH))
        for newest_first in (False, True):
            messages = all_pages(
                r,
                filter_text=filter_text,
                profile="p" * 32,
                newest_first=newest_first,
                from_cache=True,
                shareable=True,
                shared_by=sharer,
            )
            assert [len(message.blocks) for message in messages] == [6, 6, 6]
            assert (
                len(messages[1].blocks[4]["elements"]) + len(messages[1].blocks[5]["elements"]) == 7
            )  # Prev, Next and five tools
            for message in messages:
                assert_within_slack_limits(message)
                assert_no_live_markup(message, shared_by=sharer)
                for block in message.blocks[4:]:
                    for element in block["elements"]:  # the capped filter fits whole: nothing is shortened
                        assert decode_view(element["value"]).filter_text == filter_text
    loading = Loading(users_read=10**9, expected=10**9)
    r = roster([RoomUser("&" * 10_000, "<" * 10_000) for _ in range(500)], room_id="&" * 32, reported_count=10**9)
    message = roster_message(r, page=1, now=NOW, profile="p" * 32, loading=loading, shared_by=sharer)
    assert_within_slack_limits(message)
    assert_no_live_markup(message, shared_by=sharer)
    big = roster([RoomUser("&" * 64, "&" * 80) for _ in range(PAGE_SIZE)], reported_count=10**9)
    lines = roster_message(big, page=1, now=NOW).blocks[2]["text"]["text"].split("\n")
    assert len(lines) == PAGE_SIZE  # every user is still listed, with shortened names


def test_loading_problem_and_usage_messages() -> None:
    assert loading_text("room#1+a&b") == "Fetching users of room `room#1+a&amp;b`…"
    problem = problem_message("Room `x` does not exist.")
    assert problem.blocks == [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": ":warning: *Can't list that room*\nRoom `x` does not exist.",
                "verbatim": True,
            },
        }
    ]
    assert "does not exist" in problem.text
    assert_within_slack_limits(problem_message("x" * 5000, title="Long"))
    usage = usage_message()
    body = usage.blocks[0]["text"]["text"]
    for form in ("/roomusers &lt;room-id&gt;`", "&lt;text&gt;", "--reverse", "--app &lt;profile&gt;", "@roomusers"):
        assert form in body
    assert "!#$%&amp;()+-:;&lt;=.&gt;?@[]^_{}|~" in body
    assert_no_live_markup(usage)
    assert_within_slack_limits(usage)
    with_reason = usage_message("Unknown option `--x`.")
    assert with_reason.blocks[0]["text"]["text"] == ":warning: Unknown option `--x`."
    assert "Unknown option" in with_reason.text


# --- properties -----------------------------------------------------------------------------------------

_nasty_chars = st.sampled_from(["&", "<", ">", "`", "*", "\n", "\u202e", "\u200b", "😀", "a", " ", "\x00", "é"])
_texts_st = st.one_of(
    st.text(),
    st.text(_nasty_chars, max_size=200),
    st.builds(lambda char, count: char * count, st.characters(), st.integers(0, 10_000)),
    st.builds(lambda char, count: char * count, _nasty_chars, st.integers(0, 10_000)),
)
_user_st = st.builds(RoomUser, _texts_st, _texts_st)
_users_st = st.one_of(
    st.lists(_user_st, max_size=200),
    # big rosters cheaply: a few generated users repeated up to 200 times
    st.builds(
        lambda pool, n: [pool[i % len(pool)] for i in range(n)],
        st.lists(_user_st, min_size=1, max_size=8),
        st.integers(0, 200),
    ),
)


@pytest.mark.parametrize("variant", ["plain", "shareable", "loading"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    users=_users_st,
    newest_first=st.booleans(),
    from_cache=st.booleans(),
    filter_text=st.one_of(st.just(""), _texts_st),
    profile=st.one_of(st.just(""), st.from_regex(PROFILE_NAME, fullmatch=True), st.text(max_size=100)),
    being_destroyed=st.booleans(),
    shared_by=st.one_of(st.just(""), st.from_regex(SHARER_ID, fullmatch=True), _texts_st),
    loading=st.builds(Loading, st.integers(0, 10**9), st.integers(0, 10**9)),
)
def test_every_page_of_any_roster_is_valid(
    variant: str,
    users: list[RoomUser],
    newest_first: bool,
    from_cache: bool,
    filter_text: str,
    profile: str,
    being_destroyed: bool,
    shared_by: str,
    loading: Loading,
) -> None:
    """Run plain, as an ephemeral (shareable) answer, and while loading (where `users` is ZIM's first page)."""
    event(f"{page_count(len(users))} pages")
    r = roster(users, room_id="<!channel>&lt;#1", reported_count=len(users) + 1, being_destroyed=being_destroyed)
    shareable = variant == "shareable"
    still_loading = loading if variant == "loading" else None
    messages = all_pages(
        r,
        newest_first=newest_first,
        from_cache=from_cache,
        filter_text=filter_text,
        profile=profile,
        shareable=shareable,
        shared_by=shared_by,
        loading=still_loading,
    )
    pageable = can_carry_profile(profile)  # the room ID is valid, so buttons depend on the profile
    matches = len(filter_users(r.users, filter_text))
    for page, message in enumerate(messages, start=1):
        assert_within_slack_limits(message)
        assert_no_live_markup(message, shared_by=shared_by)
        tools = block_by_id(message, TOOLS_BLOCK_ID)
        if still_loading is not None and filter_text.strip():
            # Filtered while loading: `users` are all the users read so far; their matches are paged.
            assert tools is None
            shown_page = clamp_page(page, matches)
            assert context_of(message).startswith(f"Page {shown_page:,} of {page_count(matches):,} · ")
            assert "loading…" in context_of(message)
            assert "read so far · still loading" in message.text
            has_next = NEXT_ACTION_ID in action_ids(message, PAGING_BLOCK_ID)
            assert has_next == (pageable and shown_page < page_count(matches))
        elif still_loading is not None:
            assert message == messages[0]  # the one page given (`loading.page`, 1 here) while loading
            assert tools is None
            assert context_of(message).startswith(f"Page 1 of {page_count(still_loading.expected):,} · ")
            assert "loading…" in context_of(message)
            has_next = NEXT_ACTION_ID in action_ids(message, PAGING_BLOCK_ID)
            assert has_next == (pageable and still_loading.expected > PAGE_SIZE)
        else:
            assert (tools is not None) == pageable
            if tools is not None:
                assert message.blocks[-1] is tools
                assert (SHARE_ACTION_ID in action_ids(message, TOOLS_BLOCK_ID)) == shareable
                refresh = clicked(message, TOOLS_BLOCK_ID, REFRESH_ACTION_ID)
                assert refresh.page == clamp_page(page, matches)
                assert refresh.newest_first == newest_first


@pytest.mark.parametrize("count", [0, 1, PAGE_SIZE, PAGE_SIZE * 3 + 1])
@pytest.mark.parametrize("page", [1, 2, 99])
def test_a_finished_answer_never_says_loading(count: int, page: int) -> None:
    """Only a message whose room is still being read says "loading"; the issue's contract with the reader."""
    for options in ({}, {"newest_first": True}, {"filter_text": "user"}, {"from_cache": True}, {"shareable": True}):
        message = roster_message(roster(numbered(count)), page=page, now=NOW, **options)
        assert "loading" not in json.dumps(message.to_payload()).lower()
