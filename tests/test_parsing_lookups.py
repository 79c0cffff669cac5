"""Parsing `--changes` and `--member`: where they may stand, what they combine with, and the sentences that refuse
bad input before any network call."""

from __future__ import annotations

import pytest

from bot.slack.parsing import ChangesRequest, HelpRequest, InvalidRequest, MemberRequest, parse_command_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lobby --changes", ChangesRequest("lobby")),
        ("--changes lobby", ChangesRequest("lobby")),
        ("—changes lobby --app EU", ChangesRequest("lobby", "EU")),
        ("--room help --changes", ChangesRequest("help")),
        ("lobby --member u1,u2", MemberRequest("lobby", ("u1", "u2"))),
        ("lobby --member=u1 --member u2,u1,", MemberRequest("lobby", ("u1", "u2"))),
        ("--member u1 lobby", MemberRequest("lobby", ("u1",))),
        ("lobby --member 李娜,a&amp;b", MemberRequest("lobby", ("李娜", "a&b"))),
    ],
)
def test_the_forms_that_parse(text: str, expected: object):
    assert parse_command_text(text) == expected


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("lobby --changes anna", "`--changes` takes no filter text or `--reverse`"),
        ("lobby --changes -r", "`--changes` takes no filter text or `--reverse`"),
        ("lobby --member u1 anna", "`--member` takes no filter text or `--reverse`"),
        ("lobby --changes --member u1", "Use `--changes` or `--member`, not both"),
        ("lobby --member", "`--member` needs user IDs, e.g. `--member U1,U2`."),
        ("lobby --member --changes", "`--member` needs user IDs"),
        ("lobby --member=,", "`--member` needs user IDs"),
        ("lobby --member " + ",".join(f"u{i}" for i in range(11)), "at most 10 user IDs at a time; 11 were given"),
        ("lobby --member " + "é" * 17, "is 34 bytes long; ZIM allows at most 32"),
    ],
)
def test_bad_input_is_one_clear_sentence(text: str, sentence: str):
    parsed = parse_command_text(text)
    assert isinstance(parsed, InvalidRequest)
    assert sentence in parsed.problem


def test_a_misspelt_option_is_suggested():
    parsed = parse_command_text("lobby --chages")
    assert isinstance(parsed, HelpRequest) and "Did you mean `--changes`?" in parsed.reason


def test_ten_distinct_ids_are_allowed_and_duplicates_do_not_count():
    ids = [f"u{i}" for i in range(10)]
    parsed = parse_command_text("lobby --member " + ",".join(ids + ids))
    assert parsed == MemberRequest("lobby", tuple(ids))
