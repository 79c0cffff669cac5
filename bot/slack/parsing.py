"""Turning `/roomusers` and @-mention text into a request, before any network call.

Grammar (after Slack's markup and `&amp;`/`&lt;`/`&gt;` escaping are undone, and dashes normalised):

    help | -h | --help | ? | (empty)                               -> HelpRequest()
    [options] <room-id> [options] [filter words...] [-- literal words...]

    options:  -r | --reverse          most recent joiners first (anywhere on the line)
              --app NAME | --app=NAME another configured ZEGO app (the name is matched ignoring case later)
              --room ID | --room=ID   the room, taken literally (for a room called `help`, `?`, `-r`, ...);
                                      every plain word is then filter text
              -h | --help             help (anywhere)
              --changes               what changed since the room's last complete read   -> ChangesRequest
              --member ID[,ID...]     which of these users (up to 10; repeatable) are in the room -> MemberRequest
              --                      end of options: every later word is plain (room, then filter text)

Dash normalisation: a word starting with `—` `–` `−` `‒` `―` (what Slack, macOS and iOS make of `--` or `-`)
followed by a letter has that run replaced by `--` before an option word (`—reverse` → `--reverse`) and by `-`
before a single letter (`−r` → `-r`).

A dash word (`-` or `--` then a letter: `-R`, `-x`, `--revers`, `--rev=1`) that is no option is refused as an
unknown option. Words like `-5`, `-`, `---` are not dash words: they stay filter text (and after `--` any word
is filter text: `lobby -- -R`). Sentences in the results are safe mrkdwn: user input in them is cleaned,
shortened, escaped and put in a code span that cannot break.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import ClassVar

from bot.roster.view import FILTER_TOO_LONG, MAX_FILTER_CHARS, RoomView
from bot.settings import PROFILE_NAME
from bot.slack.render.buttons import MAX_FILTER_VALUE_UNITS, filter_value_units
from bot.slack.render.escaping import escape_mrkdwn, quote_code, unescape_slack
from bot.watch.conditions import OPTION_KINDS, TAKES_VALUE, Condition, ConditionProblem, parse_condition
from bot.zim.errors import InvalidUserIds
from bot.zim.members import validate_user_ids
from bot.zim.room_id import room_id_problem

__all__ = [
    "ChangesRequest",
    "HelpRequest",
    "InvalidRequest",
    "MemberRequest",
    "RoomView",
    "WatchRequest",
    "WatchesRequest",
    "normalize_dashes",
    "parse_command_text",
    "strip_mention",
]

ECHO_CHARS = 100  # user input quoted back in a sentence is cut to this many characters

_HELP_WORDS = frozenset({"help", "-h", "--help", "?"})
_LONG_OPTIONS = (
    "--reverse",
    "--app",
    "--room",
    "--help",
    "--changes",
    "--member",
    "--watch",
    "--watches",
    *OPTION_KINDS,
)
_SHORT_OPTIONS = ("-r", "-h")
_DASHES = "\u2014\u2013\u2212\u2012\u2015"  # em dash, en dash, minus sign, figure dash, horizontal bar
_TYPOGRAPHIC_OPTION = re.compile(rf"[{_DASHES}][{_DASHES}-]*(?=[A-Za-z])")
_OPTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
# After normalisation: one or two ASCII dashes, a letter, then option-ish characters, optionally `=value`.
_DASH_WORD = re.compile(r"--?[A-Za-z][A-Za-z0-9_-]*(?:=.*)?", re.DOTALL)
# Slack's own markup (`<url|label>`, `<mailto:…>`, `<#C1|name>`, `<@U1>`): typed `<` arrives as `&lt;`,
# so a raw `<` can only be Slack auto-formatting, e.g. a room ID it mistook for an e-mail address.
_SLACK_MARKUP = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
_LEADING_MENTION = re.compile(r"^<@[^<>|\s]+(?:\|[^<>]*)?>")
# Quotes people put around a room ID; none of them can be part of one, so a quoted valid ID is that ID.
_QUOTE_PAIRS = {"'": "'", '"': '"', "`": "`", "\u2018": "\u2019", "\u201c": "\u201d"}


@dataclass(frozen=True)
class HelpRequest:
    """Show usage; `reason` (safe mrkdwn) says what was wrong when the input was not a plain help request."""

    reason: str = ""


@dataclass(frozen=True)
class InvalidRequest:
    """The input cannot be run; `problem` is a safe mrkdwn sentence naming the bad input."""

    problem: str


@dataclass(frozen=True)
class WatchRequest:
    """`<room> --watch --when-…`: alert this conversation once when `condition` becomes true in the room."""

    view: RoomView  # the room and profile (no filter)
    condition: Condition


@dataclass(frozen=True)
class WatchesRequest:
    """`--watches`: list this conversation's active watches, each with a Stop button."""


@dataclass(frozen=True)
class ChangesRequest:
    """`<room-id> --changes`: read the room fresh and compare it with its last complete read."""

    lookup: ClassVar[str] = "changes"  # the audit line's `lookup`
    room_id: str
    profile: str = ""


@dataclass(frozen=True)
class MemberRequest:
    """`<room-id> --member A,B`: which of these users (1 to 10, checked, duplicates dropped) are in the room."""

    lookup: ClassVar[str] = "member"
    room_id: str
    user_ids: tuple[str, ...]
    profile: str = ""


# A room request answered with one message rather than a paged roster.
LookupRequest = ChangesRequest | MemberRequest
ParsedCommand = RoomView | ChangesRequest | MemberRequest | HelpRequest | InvalidRequest | WatchRequest | WatchesRequest


def _echo(text: str) -> str:
    """User input quoted in a sentence: one line, at most ECHO_CHARS, escaped, as a code span that cannot break."""
    return quote_code(text, ECHO_CHARS)


def _visible_text(match: re.Match[str]) -> str:
    target, label = match.group(1), match.group(2)
    if label:
        return label
    return target.removeprefix("mailto:")


def _unformat(text: str) -> str:
    """Replace Slack's markup with the text the user saw, then undo Slack's escaping."""
    return unescape_slack(_SLACK_MARKUP.sub(_visible_text, text))


def _unquoted(word: str) -> str:
    """`'demo-120'` → `demo-120` when the quotes match and what they hold is a valid room ID."""
    if len(word) > 2 and _QUOTE_PAIRS.get(word[0]) == word[-1] and room_id_problem(word[1:-1]) is None:
        return word[1:-1]
    return word


def normalize_dashes(word: str) -> str:
    """`—reverse` → `--reverse`, `−r` → `-r`; any other word is returned unchanged."""
    match = _TYPOGRAPHIC_OPTION.match(word)
    if match is None:
        return word
    rest = word[match.end() :]
    name = _OPTION_NAME.match(rest)
    single_letter = name is not None and len(name.group(0)) == 1
    return ("-" if single_letter else "--") + rest


def _unknown_option(word: str) -> HelpRequest:
    name = word.partition("=")[0]
    known = (*_LONG_OPTIONS, *_SHORT_OPTIONS)
    hint = ""
    if name.lower() in known and name.lower() != name:
        hint = f" Options are lower case: {quote_code(name.lower(), 20)}."
    elif close := difflib.get_close_matches(name.lower(), _LONG_OPTIONS, n=1, cutoff=0.6):
        hint = f" Did you mean {quote_code(close[0], 20)}?"
    literal = " To filter on text that starts with a dash, put `--` before it."
    return HelpRequest(reason=f"Unknown option {_echo(word)}.{hint}{literal}")


def parse_command_text(text: str) -> ParsedCommand:
    """Parse command (or mention) text exactly as Slack delivers it, still `&<>`-escaped."""
    words = [normalize_dashes(word) for word in _unformat(text).split()]
    if _WATCH_WORD.search(" ".join(words[: words.index("--")] if "--" in words else words)):
        return _parse_watch(words)
    return _parse_words(words)


def _parse_words(words: list[str]) -> ParsedCommand:
    if not words or (len(words) == 1 and words[0].casefold() in _HELP_WORDS):
        return HelpRequest()
    room_id: str | None = None
    newest_first = False
    changes = False
    members: list[str] | None = None
    profile = ""
    plain: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--":  # end of options
            plain.extend(words[index:])
            break
        if not _DASH_WORD.fullmatch(word):
            plain.append(word)
            continue
        name, has_value, value = word.partition("=")
        if name in ("--help", "-h") and not has_value:
            return HelpRequest()
        if name in ("--reverse", "-r") and not has_value:
            newest_first = True
        elif name == "--changes" and not has_value:
            changes = True
        elif name == "--member":
            if not has_value:
                if index >= len(words) or words[index] == "--" or _DASH_WORD.fullmatch(words[index]):
                    return InvalidRequest("`--member` needs user IDs, e.g. `--member U1,U2`.")
                value = words[index]
                index += 1
            members = [*(members or []), *value.split(",")]
        elif name in ("--app", "--room"):
            if not has_value:
                if index >= len(words) or words[index] == "--" or _DASH_WORD.fullmatch(words[index]):
                    if name == "--app":
                        return InvalidRequest("`--app` needs a profile name, e.g. `--app staging`.")
                    return InvalidRequest("`--room` needs a room ID, e.g. `--room help`.")
                value = words[index]
                index += 1
            if name == "--app":
                if not PROFILE_NAME.fullmatch(value):
                    return _bad_profile(value)
                profile = value
            else:
                if room_id is not None and value != room_id:
                    return InvalidRequest("Give `--room` once: one command lists one room.")
                room_id = value
        else:
            return _unknown_option(word)
    if room_id is None:
        if not plain:
            return HelpRequest(reason="The room ID is missing.")
        room_id, plain = plain[0], plain[1:]
    room_id = _unquoted(room_id)
    problem = room_id_problem(room_id)
    if problem is not None:
        problem = problem[:1].lower() + problem[1:]  # "The room ID contains…" continues our sentence
        return InvalidRequest(f"{_echo(room_id)} is not a valid room ID: {escape_mrkdwn(problem)}")
    filter_text = " ".join(plain)
    if len(filter_text) > MAX_FILTER_CHARS:
        return InvalidRequest(FILTER_TOO_LONG.format(length=len(filter_text)))
    if (units := filter_value_units(filter_text)) > MAX_FILTER_VALUE_UNITS:
        return InvalidRequest(
            f"The filter is too long to carry in the answer's buttons: it takes {units:,} of the "
            f"{MAX_FILTER_VALUE_UNITS:,} places there, since ampersands, angle brackets, quotes, "
            "backslashes and invisible characters take up to 6 places each and emoji 2."
        )
    if changes or members is not None:
        return _lookup(room_id, profile, changes=changes, members=members, extra=bool(filter_text) or newest_first)
    return RoomView(room_id, newest_first=newest_first, filter_text=filter_text, profile=profile)


_WATCH_WORD = re.compile(r"(?:^| )--(?:watch|watches|when-[a-z-]*)(?:[ =]|$)")


def _parse_watch(words: list[str]) -> ParsedCommand:
    """`--watch` with one `--when-…` condition, or `--watches`; the rest is parsed as a room request."""
    rest: list[str] = []
    watch = watches = False
    found: list[tuple[str, str | None]] = []
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--":
            rest.extend(words[index - 1 :])
            break
        name, has_value, value = word.partition("=")
        if name in ("--watch", "--watches") and not has_value:
            watch, watches = watch or name == "--watch", watches or name == "--watches"
        elif name in OPTION_KINDS:
            given: str | None = value if has_value else None
            if given is None and OPTION_KINDS[name] in TAKES_VALUE and index < len(words) and words[index] != "--":
                given = words[index]
                index += 1
            found.append((name, given))
        else:
            rest.append(word)
    if watches:
        if watch or found or rest:
            return InvalidRequest("`--watches` lists this conversation's watches and takes nothing else.")
        return WatchesRequest()
    conditions = ", ".join(f"`{name}`" for name in OPTION_KINDS)
    if not watch:
        return InvalidRequest(f"{quote_code(found[0][0], 20)} is a watch condition: add `--watch`.")
    if len(found) != 1:
        many = "one condition" if found else "a condition"
        return InvalidRequest(f"`--watch` needs {many}: {conditions}, e.g. `/roomusers lobby --watch --when-empty`.")
    try:
        condition = parse_condition(*found[0])
    except ConditionProblem as problem:
        return InvalidRequest(escape_mrkdwn(str(problem)))
    parsed = _parse_words(rest)
    if isinstance(parsed, HelpRequest) and not parsed.reason:
        return InvalidRequest("`--watch` needs the room ID, e.g. `/roomusers lobby --watch --when-empty`.")
    if isinstance(parsed, HelpRequest):
        return InvalidRequest(parsed.reason)
    if isinstance(parsed, ChangesRequest | MemberRequest):
        return InvalidRequest("A watch can't be combined with `--changes` or `--member`: each is its own request.")
    if not isinstance(parsed, RoomView):
        return parsed
    if parsed.filter_text:
        return InvalidRequest(f"A watch takes no filter text; {_echo(parsed.filter_text)} is not an option here.")
    return WatchRequest(RoomView(parsed.room_id, profile=parsed.profile), condition)


def _lookup(
    room_id: str, profile: str, *, changes: bool, members: list[str] | None, extra: bool
) -> LookupRequest | InvalidRequest:
    """`--changes` or `--member`: whole-room answers, so filter text and `--reverse` are refused with them."""
    if changes and members is not None:
        return InvalidRequest("Use `--changes` or `--member`, not both: each is its own answer.")
    option = "--changes" if changes else "--member"
    if extra:
        return InvalidRequest(f"`{option}` takes no filter text or `--reverse`: it answers for the whole room.")
    if members is None:
        return ChangesRequest(room_id, profile)
    if not any(members):
        return InvalidRequest("`--member` needs user IDs, e.g. `--member U1,U2`.")
    try:  # the client's own check (count, each ID), so both say the same
        asked = validate_user_ids(user_id for user_id in members if user_id)
    except InvalidUserIds as error:
        return InvalidRequest(escape_mrkdwn(str(error)))
    return MemberRequest(room_id, asked, profile)


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
