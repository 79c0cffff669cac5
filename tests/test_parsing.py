"""Command and mention text: Slack's escaping and auto-formatting, options, filters and bad input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.roster.view import RoomView
from bot.slack.parsing import HelpRequest, InvalidRequest, parse_command_text, strip_mention
from bot.slack.render.escaping import escape_mrkdwn


@pytest.mark.parametrize("text", ["", "   ", "help", "HELP", " help ", "-h", "--help", "?", "lobby --help", "\n\t"])
def test_help(text: str) -> None:
    assert parse_command_text(text) == HelpRequest()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lobby-1", RoomView("lobby-1")),
        ("  lobby-1  ", RoomView("lobby-1")),
        ("room#1+a&amp;b", RoomView("room#1+a&b")),
        ("&lt;room&gt;", RoomView("<room>")),
        ("a&amp;lt;b", RoomView("a&lt;b")),
        ("!#$%&amp;()+-:;&lt;=.&gt;?@[]^_{}|~", RoomView("!#$%&()+-:;<=.>?@[]^_{}|~")),
        ("lobby --reverse", RoomView("lobby", newest_first=True)),
        ("lobby -r", RoomView("lobby", newest_first=True)),
        ("--reverse lobby", RoomView("lobby", newest_first=True)),
        ("lobby --app staging", RoomView("lobby", profile="staging")),
        ("lobby --app=prod_2", RoomView("lobby", profile="prod_2")),
        ("lobby --app a --app b", RoomView("lobby", profile="b")),
        ("lobby Anna", RoomView("lobby", filter_text="Anna")),
        ("lobby  Ánna   Lée 😀", RoomView("lobby", filter_text="Ánna Lée 😀")),
        ("lobby 张 伟", RoomView("lobby", filter_text="张 伟")),
        ("lobby -x -", RoomView("lobby", filter_text="-x -")),
        ("lobby -- ---", RoomView("lobby", filter_text="-- ---")),
        ("lobby a&amp;b &lt;!channel&gt;", RoomView("lobby", filter_text="a&b <!channel>")),
        (
            "lobby --reverse ann -r --app=staging lee",
            RoomView("lobby", filter_text="ann lee", newest_first=True, profile="staging"),
        ),
        ("lobby\nAnna", RoomView("lobby", filter_text="Anna")),
        ("help me", RoomView("help", filter_text="me")),
        # Slack auto-formatting of the typed text
        ("<mailto:a@b.c|a@b.c>", RoomView("a@b.c")),
        ("<mailto:a@b.c>", RoomView("a@b.c")),
        ("<http://x.io|x.io>", RoomView("x.io")),
        ("<#C123|general>", RoomView("general")),
        ("<#C123|general> <mailto:bob@x.io|bob@x.io>", RoomView("general", filter_text="bob@x.io")),
        ("<http://a.b|a.b&amp;c>", RoomView("a.b&c")),
    ],
)
def test_commands(text: str, expected: RoomView) -> None:
    assert parse_command_text(text) == expected


@pytest.mark.parametrize(
    ("text", "option"), [("lobby --bogus", "--bogus"), ("lobby --rev=1", "--rev=1"), ("--x", "--x")]
)
def test_unknown_options_ask_for_help_with_a_reason(text: str, option: str) -> None:
    result = parse_command_text(text)
    assert isinstance(result, HelpRequest)
    assert result.reason == f"Unknown option `{option}`."


def test_unknown_option_reason_is_escaped_and_short() -> None:
    result = parse_command_text("lobby --x=&lt;!channel&gt;" + "y" * 500)
    assert isinstance(result, HelpRequest)
    assert "<" not in result.reason
    assert "&lt;!channel&gt;" in result.reason
    assert len(result.reason) < 150


def test_options_without_a_room_ask_for_help() -> None:
    assert parse_command_text("--reverse") == HelpRequest(reason="The room ID is missing.")


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("ro/om", ["`ro/om` is not a valid room ID:", "'/'", "&amp;", "&lt;"]),
        ("ÉCOLE", ["`ÉCOLE` is not a valid room ID:", "'É'"]),
        ("x" * 33, ["33 bytes"]),
        ("a*b", ["'*'"]),
        ("lobby\u202e", ["U+202E"]),
        ("<http://x.io/a|x.io/a>", ["`x.io/a` is not a valid room ID", "'/'"]),
        ("lobby --app", ["`--app` needs a profile name"]),
        ("lobby --app --reverse", ["`--app` needs a profile name"]),
        ("lobby --app=", ["`(empty)` is not a valid app profile name"]),
        ("lobby --app bad!", ["`bad!` is not a valid app profile name"]),
        ("lobby --app " + "p" * 33, ["is not a valid app profile name"]),
        ("lobby --app=a&amp;b", ["`a&amp;b` is not a valid app profile name"]),
    ],
)
def test_invalid_requests_name_the_bad_input(text: str, fragments: list[str]) -> None:
    result = parse_command_text(text)
    assert isinstance(result, InvalidRequest)
    for fragment in fragments:
        assert fragment in result.problem


def test_echoed_input_is_escaped_and_truncated() -> None:
    result = parse_command_text("&lt;!channel&gt;/" + "x" * 500)
    assert isinstance(result, InvalidRequest)
    echoed = result.problem.split("` is not")[0]
    assert echoed.startswith("`&lt;!channel&gt;/")
    assert echoed.endswith("…")
    assert "<" not in result.problem
    assert ">" not in result.problem


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_any_text_parses_to_a_result_with_safe_sentences(raw: str) -> None:
    result = parse_command_text(escape_mrkdwn(raw))
    assert isinstance(result, RoomView | HelpRequest | InvalidRequest)
    if isinstance(result, RoomView):
        assert result.room_id
        assert " " not in result.room_id
        assert result.filter_text == result.filter_text.strip()
    sentence = result.problem if isinstance(result, InvalidRequest) else getattr(result, "reason", "")
    assert "<" not in sentence
    assert ">" not in sentence


@pytest.mark.parametrize(
    ("text", "bot", "rest"),
    [
        ("<@UBOT> lobby-1", "UBOT", "lobby-1"),
        ("<@UBOT|roomusers> lobby-1 --reverse", "UBOT", "lobby-1 --reverse"),
        ("  <@UBOT>   lobby-1  ", "UBOT", "lobby-1"),
        ("hey <@UBOT> lobby-1", "UBOT", "hey lobby-1"),
        ("<@UBOT> lobby <@UBOT> ann", "UBOT", "lobby ann"),
        ("<@UBOT> lobby <@UOTHER> a&amp;b", "UBOT", "lobby <@UOTHER> a&amp;b"),
        ("<@UBOT>", "UBOT", ""),
        ("<@UOTHER> lobby", None, "lobby"),
        ("<@W123|x> lobby", None, "lobby"),
        ("lobby <@UOTHER>", None, "lobby <@UOTHER>"),
        ("<@UBOTX> lobby", "UBOT", "<@UBOTX> lobby"),
    ],
)
def test_strip_mention(text: str, bot: str | None, rest: str) -> None:
    assert strip_mention(text, bot) == rest


def test_mention_then_parse() -> None:
    text = strip_mention("<@UBOT> room#1+a&amp;b --reverse <@UBOT>", "UBOT")
    assert parse_command_text(text) == RoomView("room#1+a&b", newest_first=True)
