"""Hostile input, generated: room IDs of any text or bytes, command text of any characters, and user names of
any script, length and markup, fed through the validators, the parser, the ZIM client and the whole app.

Each property keeps its example count bounded (the end-to-end ones start a fresh loopback stack per example).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.dev.local_stack import local_stack
from bot.dev.slack_standin import StoredMessage
from bot.dev.zim_sandbox import ZimSandbox
from bot.roster.view import MAX_FILTER_CHARS, RoomView
from bot.slack.parsing import HelpRequest, InvalidRequest, parse_command_text
from bot.slack.render.escaping import escape_mrkdwn
from bot.state.pacer import SmoothPacer
from bot.zim import InvalidRoomId, ZimClient, fetch_roster, room_id_problem, validate_room_id

from .conftest import FAST_RETRY
from .slack_helpers import action_ids, all_text, answer_to, tool_ids

# -- the documented RoomId rule, written out independently of bot/zim/room_id.py ----------------------------

# zim-api.md §5: "≤ 32 bytes; letters, digits and !#$%&()+-:;<=.>?@[]^_{}|~".
DOCUMENTED_SYMBOLS = "!#$%&()+-:;<=.>?@[]^_{}|~"


def documented_rule(room_id: str) -> bool:
    """The oracle: ASCII letters and digits (not Unicode ones) and the 25 symbols, 1 to 32 bytes of UTF-8."""

    def allowed(char: str) -> bool:
        return "a" <= char <= "z" or "A" <= char <= "Z" or "0" <= char <= "9" or char in DOCUMENTED_SYMBOLS

    return all(allowed(char) for char in room_id) and 1 <= len(room_id.encode("utf-8")) <= 32


# Characters that look allowed or nearly so: Unicode letters and digits, fullwidth forms, the Kelvin sign
# (which casefolds to k), whitespace of every kind, quotes, slashes and the symbols ZIM does not list.
NEAR_MISSES = " \t\n\r\x00\x7f\u00a0\u2028\u202e\u200b/\\*,'\"`é٣Ａ０ＫKıß€§"
ALLOWED = "abcxyzABCXYZ0189" + DOCUMENTED_SYMBOLS
room_ids = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=ALLOWED + NEAR_MISSES, max_size=40),
    st.text(alphabet=ALLOWED, min_size=28, max_size=36),  # around the 32-byte limit
    st.text(alphabet=ALLOWED, max_size=31).map(lambda s: s + "é"),  # 1 disallowed char that is 2 bytes
    st.binary(max_size=40).map(lambda raw: raw.decode("utf-8", "surrogateescape")),
    st.binary(max_size=40).map(lambda raw: raw.decode("latin-1")),
)


@settings(max_examples=200, deadline=None)
@given(room_ids)
def test_room_ids_are_accepted_exactly_when_the_documented_rule_allows(room_id: str) -> None:
    valid = documented_rule(room_id)
    problem = room_id_problem(room_id)
    assert (problem is None) == valid, (room_id, problem)
    if valid:
        assert validate_room_id(room_id) == room_id
        return
    assert problem is not None
    assert problem.isprintable()  # what's wrong is named without echoing control or invisible characters
    with pytest.raises(InvalidRoomId):
        validate_room_id(room_id)


@pytest.mark.parametrize(
    ("room_id", "valid"),
    [
        (DOCUMENTED_SYMBOLS, True),
        ("x" * 32, True),
        ("x" * 33, False),
        ("", False),
        ("a b", False),
        ("٣", False),  # a Unicode digit
        ("Ｋ", False),  # fullwidth letter
        ("\u212a", False),  # Kelvin sign
        ("a/b", False),
        ("a\udc80", False),  # a byte that is not UTF-8, decoded with surrogateescape
    ],
)
def test_the_oracle_itself(room_id: str, valid: bool) -> None:
    assert documented_rule(room_id) is valid
    assert (room_id_problem(room_id) is None) is valid


special_room_ids = st.one_of(
    st.text(alphabet=DOCUMENTED_SYMBOLS, min_size=1, max_size=32),
    st.text(alphabet=DOCUMENTED_SYMBOLS + "aZ09", min_size=1, max_size=32),
)


@settings(max_examples=25, deadline=None)
@given(st.lists(special_room_ids, min_size=1, max_size=8, unique=True))
async def test_the_sandbox_answers_the_same_room_for_any_valid_id_of_special_characters(room_ids: list[str]) -> None:
    """`# % & + = ?` and friends survive percent-encoding both ways: each ID reaches its own room."""
    async with ZimSandbox(qps=100_000) as sandbox, httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as http:
        client = ZimClient(
            app_id=sandbox.app_id,
            server_secret=sandbox.secret,
            base_url=sandbox.base_url,
            pacer=SmoothPacer(100_000),
            http=http,
            retry=FAST_RETRY,
        )
        # Different sizes make every room's users different; the first needs cursors from both ends.
        sizes = {room_id: 1001 if n == 0 else n + 2 for n, room_id in enumerate(room_ids)}
        for room_id, size in sizes.items():
            sandbox.add_room(room_id, size)
        for room_id, size in sizes.items():
            roster = await fetch_roster(client, room_id)
            assert roster.room_id == room_id
            assert roster.reported_count == size
            assert [(user.user_id, user.user_name) for user in roster.users] == sandbox.rooms[room_id].users
        assert set(sandbox.stats.per_room) == set(room_ids)  # the sandbox decoded exactly these IDs


# -- command text --------------------------------------------------------------------------------------------

TOKENS = [
    "help",
    "--help",
    "?",
    "--reverse",
    "-r",
    "--app",
    "--app=",
    "--app=staging",
    "--app=<!channel>",
    "--app=" + "x" * 40,
    "--bogus",
    "--",
    "-",
    "<!channel>",
    "<!here|here>",
    "<@U0ALICE>",
    "<@UROOMUSERS|roomusers>",
    "<#C0OPS|ops>",
    "<https://evil.example|click me>",
    "<mailto:a@b.c|a@b.c>",
    "&amp;",
    "&lt;",
    "&gt;",
    "&amp;lt;",
    "&",
    "<",
    ">",
    "demo-12",
    "room#1+a&b",
    "no-such-room",
    "x" * 33,
    "\x00",
    "\u202e",
    "\u200b",
    "\n",
    "\t",
    "🙂",
    "*bold*",
    "`code`",
]
command_texts = st.one_of(
    st.text(),
    st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=10)), max_size=12).map(" ".join),
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Co"]), max_size=30),
    st.builds(lambda chunk, n: (chunk * n)[:5000], st.text(min_size=1, max_size=20), st.integers(1, 5000)),
    st.builds(lambda junk: f"demo-12 --app {junk}", st.text(max_size=50)),
)
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def assert_safe_sentence(sentence: str) -> None:
    assert "<" not in sentence
    assert ">" not in sentence
    assert not [char for char in sentence if unicodedata.category(char) == "Cc" or char in BIDI_CONTROLS]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(command_texts)
def test_any_command_text_parses_to_one_of_three_results(text: str) -> None:
    for delivered in (text, escape_mrkdwn(text)):  # raw, and escaped the way Slack delivers it
        result = parse_command_text(delivered)
        assert isinstance(result, RoomView | HelpRequest | InvalidRequest)
        if isinstance(result, RoomView):
            assert documented_rule(result.room_id)
            assert len(result.filter_text) <= MAX_FILTER_CHARS
            assert result.profile == "" or re.fullmatch(r"[A-Za-z0-9_-]{1,32}", result.profile)
        elif isinstance(result, HelpRequest):
            assert_safe_sentence(result.reason)
        else:
            assert_safe_sentence(result.problem)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(command_texts)
async def test_any_command_text_gets_exactly_one_answer_and_no_server_error(text: str) -> None:
    async with ZimSandbox() as sandbox, local_stack(sandbox=sandbox, retry=FAST_RETRY) as local:
        response = await local.slack.send_command(text)
        assert response.status == 200
        assert response.acked_in_time
        ack = await local.slack.next_message()
        assert ack.origin == "ack"
        parsed = parse_command_text(escape_mrkdwn(text))
        # A profile this app doesn't have is refused in the ack; only the default one exists here.
        if isinstance(parsed, RoomView) and parsed.profile.casefold() in ("", "default"):
            answer = await local.slack.next_message()
            assert answer.origin == "response_url"
            assert answer.ephemeral
        await local.until_idle()
        assert local.slack.unread() == []
        assert local.slack.warnings == []


# -- user names ----------------------------------------------------------------------------------------------

HOSTILE_NAMES = [
    "",
    " ",
    "<!channel>",
    "<!here>",
    "<!here|here>",
    "<!everyone>",
    "<!subteam^S0ONCALL|@oncall>",
    "<@U0ALICE>",
    "<@UROOMUSERS|roomusers>",
    "<#C0OPS|ops>",
    "<https://evil.example|click me>",
    "<http://evil.example>",
    "<mailto:a@b.c|a@b.c>",
    "<!date^1^{date}|x>",
    "&lt;!channel&gt;",
    "&amp;",
    "&",
    "@channel",
    "@here",
    "#general",
    "https://evil.example",
    "*bold* _it_ ~strike~ `code` ```block```",
    "> quoted",
    "\u202eevil\u202c",
    "\u2066isolate",
    "zero\u200bwidth",
    "line\nbreak\r\n",
    "tab\there",
    "\x1b[2Jansi",
    ":smile:",
    "👩🏽‍💻",
    "مرحبا",
    "佐藤 花子",
    "Zoë Ångström",
]
name_pieces = st.one_of(st.sampled_from(HOSTILE_NAMES), st.text(max_size=12))
names = st.one_of(
    st.text(max_size=64),
    st.lists(name_pieces, max_size=8).map("".join),
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "So"]), max_size=40),
    st.builds(lambda chunk, n: (chunk * n)[:10_000], name_pieces.filter(bool), st.integers(1, 10_000)),
)
user_ids = st.sampled_from(["u", "<!here>", "<@U1>", "&amp;", "*x*", "`", "\u202e", "#"])
# Our own markup, the only `<…>` allowed in a message: the localized date and the sharer's credit.
DATE_TOKEN = re.compile(r"<!date\^\d+\^\{date_short_pretty\} \{time_secs\}\|[^<>|]*>")
SHARER_CREDIT = "requested by <@U0ALICE>"


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def assert_inert(message: StoredMessage, *, shared: bool) -> None:
    for text in strings_in({"text": message.text, "blocks": message.blocks}):
        text = DATE_TOKEN.sub("", text)
        if shared:
            text = text.replace(SHARER_CREDIT, "")
        for live in ("<!channel", "<!here", "<!everyone", "<!subteam", "<@", "<#", "<http", "<mailto"):
            assert live not in text, (live, text[:200])
        assert "<" not in text, text[:200]
        assert ">" not in text, text[:200]
        assert not re.search(r"&(?!amp;|lt;|gt;)", text), text[:200]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(st.tuples(user_ids, names), min_size=1, max_size=25))
async def test_hostile_names_render_inert_in_every_message(users: list[tuple[str, str]]) -> None:
    room = [(f"{prefix}{n}", name) for n, (prefix, name) in enumerate(users)]
    async with ZimSandbox() as sandbox, local_stack(sandbox=sandbox, retry=FAST_RETRY) as local:
        sandbox.add_room("hostile", room)
        answer = await answer_to(local, "hostile")
        assert f"*{len(room)} user" in all_text(answer)
        if "roomusers_next" in action_ids(answer):
            await local.slack.click(answer, "roomusers_next")
            answer = await local.slack.next_message()
        assert "roomusers_share" in tool_ids(answer)
        await local.slack.click(answer, "roomusers_share")
        shared = await local.slack.next_message()
        assert not shared.ephemeral
        assert SHARER_CREDIT in all_text(shared)
        await local.slack.mention("hostile")
        mentioned = await local.slack.next_message()
        assert not mentioned.ephemeral
        ours = [m for m in local.slack.visible_to("U0ALICE", "C0OPS") if m.origin != "user"]
        assert len(ours) == 4  # ack, the (paged) answer, the shared page, the mention's answer
        for message in ours:
            assert_inert(message, shared=message.ts == shared.ts)
        assert local.slack.warnings == []  # every message within Slack's Block Kit limits
