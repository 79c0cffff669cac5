"""Block Kit output: escaping, layout, Slack's limits and slack_sdk validation for arbitrary rosters."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bot.slack.blocks import (
    NEXT_ACTION_ID,
    PAGING_BLOCK_ID,
    PREV_ACTION_ID,
    Message,
    loading_text,
    problem_message,
    roster_message,
    usage_message,
)
from bot.slack.escaping import clean_untrusted, escape_mrkdwn, slack_length, unescape_slack
from bot.slack.paging import PAGE_SIZE, decode_page_ref, page_count
from bot.slack.parsing import PROFILE_NAME
from bot.zim.models import RoomUser, Roster

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
    for block in message.blocks:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()
        assert parsed.to_dict() == block  # nothing we send is unknown to slack_sdk
        if block["type"] == "header":
            assert slack_length(block["text"]["text"]) <= 150
        if block["type"] == "actions":
            assert 1 <= len(block["elements"]) <= 25
            for button in block["elements"]:
                assert slack_length(button["text"]["text"]) <= 75
                assert slack_length(button["value"]) <= 2000
    texts = _texts(message.blocks)
    assert all(1 <= slack_length(text) <= 3000 for text in texts)
    assert sum(slack_length(text) for text in texts) <= 10_000


def assert_no_live_markup(message: Message) -> None:
    """No mention, broadcast or link syntax anywhere except our own date token."""
    dumped = json.dumps(message.to_payload(), ensure_ascii=False)
    without_dates = re.sub(r"<!date\^\d+\^\{date_short_pretty\} \{time_secs\}\|[^<>]*>", "", dumped)
    assert "<" not in without_dates
    assert ">" not in without_dates
    for raw in ("<!", "<@", "<#", "<http", "&&"):
        assert raw not in without_dates
    # every & starts one of the three entities Slack decodes
    plain = json.loads(json.dumps(message.to_payload()))
    for text in [plain["text"], *_texts(plain["blocks"])]:
        assert re.fullmatch(r"(?:[^&]|&amp;|&lt;|&gt;)*", re.sub(r"<!date[^>]*>", "", text), re.DOTALL), text


def all_pages(r: Roster, **kwargs: Any) -> list[Message]:
    total = len(r.users)
    return [roster_message(r, page=page, now=NOW, **kwargs) for page in range(1, page_count(total) + 1)]


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
    assert types == ["header", "section", "section", "context", "actions"]
    header, summary, users, context, actions = message.blocks
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
    assert "45 users" in message.text
    assert_within_slack_limits(message)


def test_newest_first_cache_and_profile() -> None:
    message = roster_message(
        roster(numbered(3)), page=1, now=FETCHED + 125, newest_first=True, from_cache=True, profile="staging"
    )
    lines = message.blocks[2]["text"]["text"].split("\n")
    assert lines == ["1. User 3 · `u3`", "2. User 2 · `u2`", "3. User 1 · `u1`"]
    context_text = (
        message.blocks[3]["text"] if "text" in message.blocks[3] else message.blocks[3]["elements"][0]["text"]
    )
    assert "most recent first" in context_text
    assert "from cache, 2 min old" in context_text
    assert context_text.endswith(" · app staging")
    assert [block["type"] for block in message.blocks][-1] == "context"  # one page: no actions block


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


def test_empty_room_has_no_user_list_and_no_buttons() -> None:
    message = roster_message(roster([]), page=1, now=NOW)
    assert [block["type"] for block in message.blocks] == ["header", "section", "context"]
    assert message.blocks[2]["elements"][0]["text"].startswith("Page 1 of 1 · join order")


def test_filtered_summary_and_positions() -> None:
    users = [RoomUser("u1", "Anna"), RoomUser("u2", "Bob"), RoomUser("ANN-3", "Carl"), RoomUser("u4", "joANNe")]
    message = roster_message(roster(users), page=1, now=NOW, filter_text="ann")
    assert message.blocks[1]["text"]["text"] == "*3 of 4 users* match “ann”"
    assert message.blocks[2]["text"]["text"].split("\n") == ["1. Anna · `u1`", "2. Carl · `ANN-3`", "3. joANNe · `u4`"]
    one = roster_message(roster(users), page=1, now=NOW, filter_text="bob")
    assert one.blocks[1]["text"]["text"] == "*1 of 4 users* matches “bob”"
    none = roster_message(roster(users), page=1, now=NOW, filter_text="<zed&>")
    assert none.blocks[1]["text"]["text"] == "*0 of 4 users* match “&lt;zed&amp;&gt;”"
    assert [block["type"] for block in none.blocks] == ["header", "section", "context"]


def test_missing_names_and_ids_get_placeholders() -> None:
    message = roster_message(roster([RoomUser("", "\u200b\n"), RoomUser("u2", "")]), page=1, now=NOW)
    assert message.blocks[2]["text"]["text"] == "1. _(no name)_ · _(no ID)_\n2. _(no name)_ · `u2`"


def test_out_of_range_page_is_clamped() -> None:
    message = roster_message(roster(numbered(45)), page=99, now=NOW)
    assert message.blocks[3]["elements"][0]["text"].startswith("Page 3 of 3 · users 41–45")
    assert [b["action_id"] for b in message.blocks[4]["elements"]] == [PREV_ACTION_ID]


@pytest.mark.parametrize("fetched_at", [0.0, -5.0, float("nan"), float("inf"), 1e20])
def test_odd_fetch_times_do_not_break_rendering(fetched_at: float) -> None:
    message = roster_message(roster(numbered(30), fetched_at=fetched_at), page=1, now=NOW, from_cache=True)
    assert "fetched at an unknown time" in message.blocks[3]["elements"][0]["text"]
    assert_within_slack_limits(message)
    assert decode_page_ref(message.blocks[4]["elements"][0]["value"]).fetched_at == 0.0


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_text_is_never_live(hostile: str) -> None:
    users = [RoomUser(hostile, hostile) for _ in range(25)]
    r = roster(users, room_id="<!channel>&x")
    messages = all_pages(r) + all_pages(r, filter_text=hostile, profile=hostile)
    messages += [loading_text_message(hostile), problem_message(escape_mrkdwn(hostile), title=hostile)]
    for message in messages:
        assert_no_live_markup(message)
        assert_within_slack_limits(message)


def loading_text_message(room_id: str) -> Message:
    return Message(text=loading_text(room_id), blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}])


def test_unpageable_room_or_profile_shows_the_page_without_buttons() -> None:
    for room_id, profile in (("bad room", ""), ("lobby", "no spaces allowed"), ("x" * 40, "")):
        message = roster_message(roster(numbered(45), room_id=room_id), page=2, now=NOW, profile=profile)
        assert [block["type"] for block in message.blocks] == ["header", "section", "section", "context"]
        assert message.blocks[3]["elements"][0]["text"].startswith("Page 2 of 3 · users 21–40")


def test_worst_case_names_still_fit() -> None:
    """Names and IDs that expand 5x when escaped, or are astral (2 UTF-16 units), at 20 per page."""
    for char in ("&", "<", "😀", "a", "\u202e"):
        users = [RoomUser(char * 10_000, char * 10_000) for _ in range(PAGE_SIZE * 3)]
        for message in all_pages(roster(users, room_id="&" * 32), filter_text=char * 5000, profile=char * 5000):
            assert_within_slack_limits(message)
            assert_no_live_markup(message)
    filters = ["&" * 5000, "<" * 1999, "😀" * 3000, "\x00" * 2000]
    for filter_text in filters:  # the longest button values: the filter is shortened to fit in 2,000 chars
        users = [RoomUser(filter_text, "x") for _ in range(PAGE_SIZE * 3)]
        messages = all_pages(roster(users, room_id="&" * 32), filter_text=filter_text, profile="p" * 32)
        assert [len(message.blocks) for message in messages] == [5, 5, 5]
        for message in messages:
            assert_within_slack_limits(message)
            assert_no_live_markup(message)
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


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    users=_users_st,
    newest_first=st.booleans(),
    from_cache=st.booleans(),
    filter_text=st.one_of(st.just(""), _texts_st),
    profile=st.one_of(st.just(""), st.from_regex(PROFILE_NAME, fullmatch=True), st.text(max_size=100)),
    being_destroyed=st.booleans(),
)
def test_every_page_of_any_roster_is_valid(
    users: list[RoomUser], newest_first: bool, from_cache: bool, filter_text: str, profile: str, being_destroyed: bool
) -> None:
    event(f"{page_count(len(users))} pages")
    r = roster(users, room_id="<!channel>&lt;#1", reported_count=len(users) + 1, being_destroyed=being_destroyed)
    for message in all_pages(
        r, newest_first=newest_first, from_cache=from_cache, filter_text=filter_text, profile=profile
    ):
        assert_within_slack_limits(message)
        assert_no_live_markup(message)
