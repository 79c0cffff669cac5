"""Turning `/roomusers` and @-mention text into a request, before any network call.

Grammar (after Slack's `&amp;`/`&lt;`/`&gt;` escaping is undone):

    help | -h | --help | ? | (empty)                        -> HelpRequest()
    <room-id> [--reverse|-r] [--app NAME|--app=NAME] [filter words...]

The first word that is not a `--option` is the room ID (room IDs never contain spaces); `-r` counts as an
option only after it. Any other `--word` is an unknown option and earns help with a reason; everything else,
even words starting with a single `-`, is filter text joined by single spaces. Sentences in the results are
safe mrkdwn: user input in them is cleaned, shortened and escaped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.roster.view import MAX_FILTER_CHARS, RoomView
from bot.settings import PROFILE_NAME
from bot.slack.render.escaping import clean_untrusted, escape_mrkdwn, unescape_slack
from bot.zim.room_id import room_id_problem

__all__ = [
    "HelpRequest",
    "InvalidRequest",
    "RoomView",
    "parse_command_text",
    "strip_mention",
]

ECHO_CHARS = 100  # user input quoted back in a sentence is cut to this many characters

_HELP_WORDS = frozenset({"help", "-h", "--help", "?"})
_OPTION = re.compile(r"--[A-Za-z][A-Za-z0-9_-]*(?:=.*)?", re.DOTALL)
# Slack's own markup (`<url|label>`, `<mailto:…>`, `<#C1|name>`, `<@U1>`): typed `<` arrives as `&lt;`,
# so a raw `<` can only be Slack auto-formatting, e.g. a room ID it mistook for an e-mail address.
_SLACK_MARKUP = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
_LEADING_MENTION = re.compile(r"^<@[^<>|\s]+(?:\|[^<>]*)?>")


@dataclass(frozen=True)
class HelpRequest:
    """Show usage; `reason` (safe mrkdwn) says what was wrong when the input was not a plain help request."""

    reason: str = ""


@dataclass(frozen=True)
class InvalidRequest:
    """The input cannot be run; `problem` is a safe mrkdwn sentence naming the bad input."""

    problem: str


ParsedCommand = RoomView | HelpRequest | InvalidRequest


def _echo(text: str) -> str:
    """User input quoted in a sentence: one line, at most ECHO_CHARS characters, escaped, in a code span."""
    return f"`{escape_mrkdwn(clean_untrusted(text, ECHO_CHARS))}`"


def _visible_text(match: re.Match[str]) -> str:
    target, label = match.group(1), match.group(2)
    if label:
        return label
    return target.removeprefix("mailto:")


def _unformat(text: str) -> str:
    """Replace Slack's markup with the text the user saw, then undo Slack's escaping."""
    return unescape_slack(_SLACK_MARKUP.sub(_visible_text, text))


def parse_command_text(text: str) -> ParsedCommand:
    """Parse command (or mention) text exactly as Slack delivers it, still `&<>`-escaped."""
    words = _unformat(text).split()
    if not words or (len(words) == 1 and words[0].casefold() in _HELP_WORDS):
        return HelpRequest()
    room_id: str | None = None
    newest_first = False
    profile = ""
    filter_words: list[str] = []
    pending_app = False
    for word in words:
        if pending_app:
            if _OPTION.fullmatch(word):
                break
            profile, pending_app = word, False
            if not PROFILE_NAME.fullmatch(profile):
                return _bad_profile(profile)
        elif _OPTION.fullmatch(word):
            name, has_value, value = word.partition("=")
            if name == "--help" and not has_value:
                return HelpRequest()
            if name == "--reverse" and not has_value:
                newest_first = True
            elif name == "--app" and has_value:
                profile = value
                if not PROFILE_NAME.fullmatch(profile):
                    return _bad_profile(profile)
            elif name == "--app":
                pending_app = True
            else:
                return HelpRequest(reason=f"Unknown option {_echo(word)}.")
        elif room_id is None:
            room_id = word
        elif word == "-r":
            newest_first = True
        else:
            filter_words.append(word)
    if pending_app:
        return InvalidRequest("`--app` needs a profile name, e.g. `--app staging`.")
    if room_id is None:
        return HelpRequest(reason="The room ID is missing.")
    problem = room_id_problem(room_id)
    if problem is not None:
        problem = problem[:1].lower() + problem[1:]  # "The room ID contains…" continues our sentence
        return InvalidRequest(f"{_echo(room_id)} is not a valid room ID: {escape_mrkdwn(problem)}")
    filter_text = " ".join(filter_words)
    if len(filter_text) > MAX_FILTER_CHARS:
        return InvalidRequest(
            f"The filter text is {len(filter_text):,} characters long; at most {MAX_FILTER_CHARS} are useful, "
            "since no user ID or name is longer."
        )
    return RoomView(room_id, newest_first=newest_first, filter_text=filter_text, profile=profile)


def _bad_profile(profile: str) -> InvalidRequest:
    return InvalidRequest(
        f"{_echo(profile or '(empty)')} is not a valid app profile name: use 1 to 32 letters, digits, `-` or `_`."
    )


def strip_mention(text: str, bot_user_id: str | None) -> str:
    """Remove the bot's @-mentions (the leading one and any others) from app_mention text.

    With `bot_user_id` unknown, only a leading user mention is removed. The rest stays Slack-escaped,
    for parse_command_text.
    """
    if bot_user_id is None:
        return _LEADING_MENTION.sub("", text.strip(), count=1).strip()
    mention = re.compile(rf"\s*<@{re.escape(bot_user_id)}(?:\|[^<>]*)?>\s*")
    return mention.sub(" ", text).strip()
