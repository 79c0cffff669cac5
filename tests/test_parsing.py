"""Command and mention text: Slack's escaping and auto-formatting, options, filters and bad input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.roster.view import RoomView
from bot.slack.parsing import HelpRequest, InvalidRequest, normalize_dashes, parse_command_text, strip_mention
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
        ("lobby -5 - ---", RoomView("lobby", filter_text="-5 - ---")),
        ("lobby -- ---", RoomView("lobby", filter_text="---")),
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
    ("text", "option"),
    [("lobby --bogus", "--bogus"), ("lobby --rev=1", "--rev=1"), ("--x", "--x"), ("lobby -x -", "-x")],
)
def test_unknown_options_ask_for_help_with_a_reason(text: str, option: str) -> None:
    result = parse_command_text(text)
    assert isinstance(result, HelpRequest)
    assert result.reason.startswith(f"Unknown option `{option}`.")
    assert "put `--` before it" in result.reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("demo-120 \u2014reverse", RoomView("demo-120", newest_first=True)),
        ("\u2014reverse demo-120", RoomView("demo-120", newest_first=True)),
        ("-r demo-120", RoomView("demo-120", newest_first=True)),
        ("demo-120 \u2212r", RoomView("demo-120", newest_first=True)),
        ("demo-120 \u2012reverse", RoomView("demo-120", newest_first=True)),
        ("demo-120 \u2013\u2013reverse", RoomView("demo-120", newest_first=True)),
        ("lobby \u2013app EU ann", RoomView("lobby", filter_text="ann", profile="EU")),
        ("\u2014app=staging lobby", RoomView("lobby", profile="staging")),
        ("demo-120 -- -R", RoomView("demo-120", filter_text="-R")),
        ("--room help", RoomView("help")),
        ("--room ?", RoomView("?")),
        ("--room=-r anna", RoomView("-r", filter_text="anna")),
        ("ann --room lobby lee", RoomView("lobby", filter_text="ann lee")),
        ("--room lobby -r", RoomView("lobby", newest_first=True)),
        ("help me", RoomView("help", filter_text="me")),
        ("lobby \u2014 x", RoomView("lobby", filter_text="\u2014 x")),  # a dash alone is text
    ],
)
def test_typographic_dashes_reverse_anywhere_and_explicit_rooms(text: str, expected: RoomView) -> None:
    assert parse_command_text(text) == expected


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("demo-120 -R", "Options are lower case: `-r`."),
        ("demo-120 \u2014R", "Options are lower case: `-r`."),
        ("demo-120 --REVERSE", "Options are lower case: `--reverse`."),
        ("demo-120 --revers", "Did you mean `--reverse`?"),
        ("demo-120 -reverse", "Did you mean `--reverse`?"),
        ("demo-120 --rev=1", "Did you mean `--reverse`?"),
        ("demo-120 -X", ""),
        ("lobby -x", ""),
    ],
)
def test_dash_words_that_are_no_option_are_refused(text: str, hint: str) -> None:
    result = parse_command_text(text)
    assert isinstance(result, HelpRequest)
    assert result.reason.startswith("Unknown option `")
    assert hint in result.reason


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("lobby --room a --room b", "Give `--room` once: one command lists one room."),
        ("lobby --room", "`--room` needs a room ID, e.g. `--room help`."),
        ("--room -r", "`--room` needs a room ID, e.g. `--room help`."),
    ],
)
def test_room_option_problems(text: str, problem: str) -> None:
    assert parse_command_text(text) == InvalidRequest(problem)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("'demo-120", "an apostrophe (U+0027)"),
        ("a`b", "a backtick (U+0060)"),
        ('"x', "a double quote (U+0022)"),
        ("'a/b'", "an apostrophe (U+0027)"),  # quotes around an invalid ID are not taken off
        ("a\u200bb", "the invisible character U+200B"),
    ],
)
def test_quoting_in_room_id_sentences_never_breaks(text: str, fragment: str) -> None:
    result = parse_command_text(text)
    assert isinstance(result, InvalidRequest)
    assert fragment in result.problem
    assert result.problem.count("`") % 2 == 0
    assert "'" * 3 not in result.problem
    assert "``" not in result.problem


_ROOMS = st.from_regex(r"[A-Za-z0-9_.:]{1,32}", fullmatch=True).filter(lambda r: r.casefold() != "help")
_WORDS = st.lists(st.from_regex(r"[a-z]{1,8}", fullmatch=True), max_size=4)


@settings(max_examples=150, deadline=None)
@given(_ROOMS, _WORDS, st.integers(min_value=0, max_value=5), st.sampled_from(["-r", "--reverse", "\u2014reverse"]))
def test_reverse_counts_anywhere_on_the_line(room: str, words: list[str], where: int, option: str) -> None:
    line = [room, *words]
    line.insert(min(where, len(line)), option)
    result = parse_command_text(" ".join(line))
    assert result == RoomView(room, newest_first=True, filter_text=" ".join(words))


@settings(max_examples=100, deadline=None)
@given(st.from_regex(r"[\u2014\u2013\u2212]{1,2}reverse", fullmatch=True))
def test_typographic_dashes_before_an_option_word_mean_two_dashes(word: str) -> None:
    assert normalize_dashes(word) == "--reverse"


_OPTIONS = {"-r", "-h", "--reverse", "--help", "--app", "--room"}


@settings(max_examples=150, deadline=None)
@given(st.from_regex(r"-{1,2}[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True).filter(lambda w: w not in _OPTIONS))
def test_a_dash_word_that_is_no_option_is_never_filter_text(word: str) -> None:
    result = parse_command_text(f"lobby {word}")
    assert isinstance(result, HelpRequest)
    assert result.reason.startswith("Unknown option")


def test_unknown_option_reason_is_escaped_and_short() -> None:
    result = parse_command_text("lobby --x=&lt;!channel&gt;" + "y" * 500)
    assert isinstance(result, HelpRequest)
    assert "<" not in result.reason
    assert "&lt;!channel&gt;" in result.reason
    assert len(result.reason) < 200  # the echo is cut to 100 characters


def test_options_without_a_room_ask_for_help() -> None:
    assert parse_command_text("--reverse") == HelpRequest(reason="The room ID is missing.")


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("ro/om", ["`ro/om` is not a valid room ID:", "“/” (U+002F)", "&amp;", "&lt;"]),
        ("ÉCOLE", ["`ÉCOLE` is not a valid room ID:", "“É” (U+00C9)"]),
        ("x" * 33, ["33 bytes"]),
        ("a*b", ["“*”"]),
        ("lobby\u202e", ["U+202E"]),
        ("<http://x.io/a|x.io/a>", ["`x.io/a` is not a valid room ID", "“/”"]),
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
    assert sentence.count("`") % 2 == 0  # every code span is closed, so Slack's formatting never breaks


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


@pytest.mark.parametrize(
    "text", ["'demo-120'", '"demo-120"', "`demo-120`", "‘demo-120’", "“demo-120”", "--room 'demo-120'"]
)
def test_a_quoted_room_id_is_that_room(text: str) -> None:
    assert parse_command_text(text + " ann") == RoomView("demo-120", filter_text="ann")
