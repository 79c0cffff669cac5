"""Block Kit messages, built by pure functions from data: no I/O, so every layout is unit-testable.

Limits enforced here (Slack rejects or mangles messages beyond them): at most 50 blocks, every text object
≤ 3,000 chars, header ≤ 150, button text ≤ 75 and value ≤ 2,000, and all block text together well under the
undocumented ~12,000-char `msg_blocks_too_long` ceiling. Lengths are measured in UTF-16 units after escaping,
which is never less than what Slack counts.

Untrusted strings (names, user IDs, room IDs, filter text, profile) are cleaned and escaped before they reach
any text object, so they can never become mentions, broadcasts or links. Our own `<!date^…>` token is the only
Slack markup we emit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.roster.model import RoomUser, Roster
from bot.roster.view import (
    PAGE_SIZE,
    RoomView,
    can_carry_profile,
    clamp_page,
    filter_users,
    page_bounds,
    page_count,
    page_slice,
)
from bot.slack.render.buttons import encode_view
from bot.slack.render.escaping import (
    ELLIPSIS,
    SLACK_USER_ID,
    clean_untrusted,
    escape_mrkdwn,
    largest_fitting,
    slack_length,
)
from bot.slack.render.text import age_text, date_token, incomplete_note
from bot.zim.room_id import MAX_ROOM_ID_BYTES, ROOM_ID_SYMBOLS, room_id_problem

__all__ = [
    "EXPORT_ACTION_ID",
    "EXPORT_MATCHES_ACTION_ID",
    "MAX_TEXT_CHARS",
    "NEXT_ACTION_ID",
    "ORDER_ACTION_ID",
    "PAGING_BLOCK_ID",
    "PREV_ACTION_ID",
    "REFRESH_ACTION_ID",
    "SHARE_ACTION_ID",
    "TOOLS_BLOCK_ID",
    "Loading",
    "Message",
    "loading_text",
    "not_read_yet_message",
    "notice_message",
    "problem_message",
    "refreshing_message",
    "roster_message",
    "usage_message",
]

MAX_TEXT_CHARS = 3000  # any text object
MAX_HEADER_CHARS = 150
NAME_CHARS = 80  # a cleaned user name is cut to this many characters, IDs to ID_CHARS
ID_CHARS = 64
FILTER_ECHO_CHARS = 100
PROFILE_ECHO_CHARS = 32
ROOM_ECHO_CHARS = 64

PAGING_BLOCK_ID = "roomusers_paging"
PREV_ACTION_ID = "roomusers_prev"
NEXT_ACTION_ID = "roomusers_next"
TOOLS_BLOCK_ID = "roomusers_tools"
ORDER_ACTION_ID = "roomusers_order"
REFRESH_ACTION_ID = "roomusers_refresh"
EXPORT_ACTION_ID = "roomusers_export"
EXPORT_MATCHES_ACTION_ID = "roomusers_export_matches"
SHARE_ACTION_ID = "roomusers_share"
CHANGES_ACTION_ID = "roomusers_changes"  # "What changed": `--changes` for the answer's room and app

NO_NAME = "_(no name)_"
NO_ID = "_(no ID)_"


@dataclass(frozen=True)
class Loading:
    """A fetch still under way: the message shows one page already read (`page`, in the order asked for)
    and ZIM's count while the rest is read. `changed`: the read already saw the room change under it."""

    users_read: int
    expected: int
    page: int = 1
    changed: bool = False


@dataclass(frozen=True)
class Message:
    """A Slack message: blocks plus the mrkdwn fallback `text` that notifications and screen readers use."""

    text: str
    blocks: list[dict[str, Any]]

    def to_payload(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": False}


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: Slack must not auto-link URLs or #channel/@name words found in untrusted text.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _clip_escaped(text: str, budget: int) -> str:
    """Escape `text`, cutting it (with "…") so the escaped result is at most `budget` UTF-16 units."""
    escaped = escape_mrkdwn(text)
    if slack_length(escaped) <= budget:
        return escaped
    if budget < 1:
        return ""
    pieces: list[str] = []
    used = slack_length(ELLIPSIS)
    for char in text:
        piece = escape_mrkdwn(char)
        used += slack_length(piece)
        if used > budget:
            break
        pieces.append(piece)
    return "".join(pieces).rstrip() + ELLIPSIS


def clip_escaped(text: str, budget: int) -> str:
    """`_clip_escaped` for other renderers (lists of changes): the cut never splits an escape."""
    return _clip_escaped(text, budget)


def _clip_mrkdwn(text: str, budget: int) -> str:
    """Cut already-safe mrkdwn to `budget` units (a cut can split an entity, never create markup)."""
    if slack_length(text) <= budget:
        return text
    while slack_length(text) > budget - 1:
        text = text[: -max(1, slack_length(text) - budget + 1)]
    return text + ELLIPSIS


def _room_code(room_id: str) -> str:
    return f"`{_clip_escaped(clean_untrusted(room_id, ROOM_ECHO_CHARS), 5 * ROOM_ECHO_CHARS)}`"


def _users_word(count: int) -> str:
    return "user" if count == 1 else "users"


def _summary(roster: Roster, total: int, matches: int | None, filter_text: str, loading: Loading | None) -> str:
    if loading is not None and matches is not None:
        echo = _clip_escaped(clean_untrusted(filter_text, FILTER_ECHO_CHARS), 5 * FILTER_ECHO_CHARS)
        text = (
            f"*{matches:,} {'match' if matches == 1 else 'matches'}* for “{echo}” in the {loading.users_read:,} of "
            f"{loading.expected:,} users read so far · still loading; the next click shows more"
        )
        return text + " · the room is changing, so the list may still change" if loading.changed else text
    if loading is not None:
        text = (
            f"*{loading.expected:,} {_users_word(loading.expected)}* in this room · still loading: "
            f"{loading.users_read:,} of {loading.expected:,} read"
        )
        return text + " · the room is changing, so the list may still change" if loading.changed else text
    if total == 0:
        text = "This room is empty"
        if roster.being_destroyed:
            text += " (it is being destroyed)"
    elif matches is not None:
        verb = "matches" if matches == 1 else "match"
        echo = _clip_escaped(clean_untrusted(filter_text, FILTER_ECHO_CHARS), 5 * FILTER_ECHO_CHARS)
        text = f"*{matches:,} of {total:,} {_users_word(total)}* {verb} “{echo}”"
    else:
        text = f"*{total:,} {_users_word(total)}* in this room"
    if roster.reported_count != total and roster.complete:  # an incomplete one's note gives both numbers
        text += f" (ZIM reports {roster.reported_count:,})"
    return text


def _user_lines(users: Sequence[RoomUser], first_position: int) -> str:
    """One line per user, shrinking long names and IDs evenly until the block fits in MAX_TEXT_CHARS."""
    names = [clean_untrusted(user.user_name, NAME_CHARS) for user in users]
    # a backtick would end the ID's code span early; ˋ (U+02CB) looks the same and cannot
    ids = [clean_untrusted(user.user_id, ID_CHARS).replace("`", "\u02cb") for user in users]

    def render(cap: int) -> str:
        lines = []
        for position, name, user_id in zip(range(first_position, first_position + len(users)), names, ids, strict=True):
            name_part = _clip_escaped(name, cap) if name else NO_NAME
            id_part = f"`{_clip_escaped(user_id, cap)}`" if user_id else NO_ID
            lines.append(f"{position:,}. {name_part} · {id_part}")
        return "\n".join(lines)

    uncut = 2 * 5 * max(NAME_CHARS, ID_CHARS)  # UTF-16 pairs and `&amp;` at most double and quintuple a char
    text = render(uncut)
    if slack_length(text) <= MAX_TEXT_CHARS:
        return text
    fits = largest_fitting(lambda cap: slack_length(render(cap)) <= MAX_TEXT_CHARS, low=1, high=uncut)
    return _clip_mrkdwn(render(fits), MAX_TEXT_CHARS)


def user_lines(users: Sequence[RoomUser], first_position: int) -> str:
    """Numbered `name · ID` lines, escaped and shrunk to fit one text object (roster pages, lists of changes)."""
    return _user_lines(users, first_position)


def _age(seconds: float) -> str:
    age = age_text(seconds)
    return f", {age} old" if age else ""


def _paging_button(label: str, action_id: str, ref: RoomView) -> dict[str, Any]:
    return {"type": "button", "text": _plain(label), "action_id": action_id, "value": encode_view(ref)}


def roster_message(
    roster: Roster,
    *,
    page: int,
    newest_first: bool = False,
    from_cache: bool = False,
    now: float,
    filter_text: str = "",
    profile: str = "",
    loading: Loading | None = None,
    shareable: bool = False,
    shared_by: str = "",
    what_changed: bool = False,
) -> Message:
    """One page of a room's users: header, summary, the page's users, where/when, paging and tool buttons.

    `filter_text` (case-insensitive substring of ID or name) is applied here, so paging and counts agree;
    `page` is clamped into range; `now` dates a cached snapshot. With `loading`, `roster` holds only the users
    of page `loading.page` (join order; `newest_first` shows them reversed) out of `loading.expected`; with
    a filter too, `roster` holds every user read so far (the matches are paged as usual).
    `shareable` (an ephemeral answer) adds "Share in channel"; `shared_by` (a Slack user ID) credits whoever
    shared it. `what_changed` (the room has a baseline) adds "What changed".
    """
    filter_text = filter_text.strip()
    ordered = roster.ordered(newest_first=newest_first)
    shown = filter_users(ordered, filter_text) if filter_text else ordered
    listed = loading.expected if loading is not None and not filter_text else len(shown)
    pages = page_count(listed)
    if loading is not None and not filter_text:
        page = clamp_page(loading.page, listed)
        page_users: Sequence[RoomUser] = shown[:PAGE_SIZE]
    else:
        page = clamp_page(page, len(shown))
        page_users = page_slice(shown, page)
    first, last = page_bounds(page, listed)

    room = clean_untrusted(roster.room_id, ROOM_ECHO_CHARS)
    header = "Room " + _clip_escaped(room, MAX_HEADER_CHARS - len("Room "))
    summary = _summary(roster, len(ordered), len(shown) if filter_text else None, filter_text, loading)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": _plain(header)}, _section(summary)]
    if not roster.complete:  # on every page, filtered or not: an incomplete list never passes as whole
        note = _clip_mrkdwn(incomplete_note(roster.problem), MAX_TEXT_CHARS)
        blocks.append({"type": "context", "elements": [_mrkdwn(note)]})
    if page_users:
        blocks.append({"type": "section", "text": _mrkdwn(_user_lines(page_users, first))})

    where = [f"Page {page:,} of {pages:,}"]
    if page_users:
        where.append(f"users {first:,}–{last:,}")
    where.append("most recent first" if newest_first else "join order")
    if loading is None:
        where.append(f"fetched {date_token(roster.fetched_at)}")
        where.append(f"from cache{_age(now - roster.fetched_at)}" if from_cache else "fresh")
    else:
        where.append("loading…")
    if profile:
        where.append(f"app {_clip_escaped(clean_untrusted(profile, PROFILE_ECHO_CHARS), 5 * PROFILE_ECHO_CHARS)}")
    if SLACK_USER_ID.fullmatch(shared_by):
        where.append(f"requested by <@{shared_by}>")  # our own mention of the sharer, from Slack's payload
    blocks.append({"type": "context", "elements": [_mrkdwn(" · ".join(where))]})

    # A room ID or profile that did not come through parsing cannot ride in a button: show the page unpaged.
    pageable = room_id_problem(roster.room_id) is None and can_carry_profile(profile)
    if pages > 1 and pageable:
        buttons = []
        if page > 1:
            ref = RoomView(roster.room_id, page - 1, newest_first, roster.fetched_at, filter_text, profile)
            buttons.append(_paging_button("◀ Prev", PREV_ACTION_ID, ref))
        if page < pages:
            ref = RoomView(roster.room_id, page + 1, newest_first, roster.fetched_at, filter_text, profile)
            buttons.append(_paging_button("Next ▶", NEXT_ACTION_ID, ref))
        blocks.append({"type": "actions", "block_id": PAGING_BLOCK_ID, "elements": buttons})
    if pageable and loading is None:
        here = RoomView(roster.room_id, page, newest_first, roster.fetched_at, filter_text, profile)
        matches = len(shown) if filter_text else 0
        tools = _tools(here, users=len(ordered), matches=matches, shareable=shareable)
        if what_changed:  # the whole room's changes: no filter or order in its value
            whole = RoomView(roster.room_id, 1, False, roster.fetched_at, "", profile)
            tools["elements"].append(_paging_button("🕘 What changed", CHANGES_ACTION_ID, whole))
        blocks.append(tools)

    fallback = f"Room {_room_code(roster.room_id)}: {summary} (page {page:,} of {pages:,})."
    if not roster.complete:
        fallback = f"Incomplete list: {escape_mrkdwn(roster.problem)}. {fallback}"
    return Message(text=fallback, blocks=blocks)


def _tools(here: RoomView, *, users: int, matches: int = 0, shareable: bool) -> dict[str, Any]:
    """Order toggle and CSV export (when there is something to order or export), the filtered view's export,
    refresh, and sharing for answers only the requester sees."""
    buttons = []
    if users > 1:
        flipped = RoomView(here.room_id, 1, not here.newest_first, here.fetched_at, here.filter_text, here.profile)
        order_label = "⇅ Oldest first" if here.newest_first else "⇅ Newest first"
        buttons.append(_paging_button(order_label, ORDER_ACTION_ID, flipped))
    buttons.append(_paging_button("↻ Refresh", REFRESH_ACTION_ID, here))
    if users:
        buttons.append(_paging_button("⬇ Export CSV", EXPORT_ACTION_ID, here))
    if here.filter_text and matches:
        buttons.append(_paging_button(f"⬇ Export {matches:,} matches", EXPORT_MATCHES_ACTION_ID, here))
    if shareable:
        buttons.append(_paging_button("📣 Share in channel", SHARE_ACTION_ID, here))
    return {"type": "actions", "block_id": TOOLS_BLOCK_ID, "elements": buttons}


def usage_message(reason: str = "") -> Message:
    """Every form of the command with an example; `reason` (safe mrkdwn) says what was wrong with the input."""
    room, text, profile = (escape_mrkdwn(word) for word in ("<room-id>", "<text>", "<profile>"))
    lines = [
        "*How to use roomusers*",
        f"• `/roomusers {room}` lists the users in a room, {PAGE_SIZE} per page, in join order.",
        f"• `/roomusers {room} {text}` lists only users whose ID or name contains the text (ignoring case, "
        "accents, curly quotes and invisible characters), e.g. `/roomusers lobby-1 anna`.",
        f"• `/roomusers {room} --reverse` (or `-r`, before or after the room ID) lists the most recent joiners first.",
        f"• `/roomusers {room} --app {profile}` reads the room from another configured ZIM app (any case), "
        "e.g. `--app staging`.",
        f"• `/roomusers {room} --changes` reads the room again and shows who joined and who left since its "
        "last complete read.",
        f"• `/roomusers {room} --member U1,U2` says which of these users (up to 10) are in the room now.",
        "• `/roomusers --room help` lists a room whose ID is a word roomusers uses itself (`help`, `?`).",
        "• Put `--` before filter text that starts with a dash: `/roomusers lobby -- -5`.",
        f"• `/roomusers {room} --watch --when-empty` posts one alert here when the room empties; also "
        "`--when-below N`, `--when-above N`, `--when-leaves USER_ID`, `--when-joins USER_ID`.",
        "• `/roomusers --watches` lists this conversation's watches, each with a Stop button.",
        f"• `@roomusers {room}` does the same in a channel or thread the bot is in; it answers in the thread.",
        "Buttons under an answer page through it, switch the order, refresh it, export it as CSV, share an "
        "answer only you can see with the channel, or show what changed since.",
        "Options combine: `/roomusers lobby-1 --reverse anna`.",
        f"Room IDs have no spaces and at most {MAX_ROOM_ID_BYTES} characters: letters, digits and "
        f"`{escape_mrkdwn(ROOM_ID_SYMBOLS)}`",
    ]
    blocks = [_section("\n".join(lines))]
    fallback = f"Usage: /roomusers {room} [{text}] [--reverse] [--app {profile}]"
    if reason:
        reason = _clip_mrkdwn(reason, MAX_TEXT_CHARS - 3)
        blocks.insert(0, _section(f":warning: {reason}"))
        fallback = f"{reason} {fallback}"
    return Message(text=fallback, blocks=blocks)


def problem_message(sentence: str, *, title: str = "Can't list that room") -> Message:
    """A short warning; `sentence` is safe mrkdwn made by our code, the title is escaped here."""
    heading = f":warning: *{escape_mrkdwn(title)}*\n"
    body = _clip_mrkdwn(sentence, MAX_TEXT_CHARS - slack_length(heading))
    return Message(text=f"{escape_mrkdwn(title)}: {body}", blocks=[_section(heading + body)])


def notice_message(sentence: str, *, title: str) -> Message:
    """A short notice that something worked (no warning sign); `sentence` is our own safe mrkdwn."""
    heading = f":white_check_mark: *{escape_mrkdwn(title)}*\n"
    body = _clip_mrkdwn(sentence, MAX_TEXT_CHARS - slack_length(heading))
    return Message(text=f"{escape_mrkdwn(title)}: {body}", blocks=[_section(heading + body)])


def not_read_yet_message(room_id: str, page: int, users_read: int, expected: int) -> Message:
    """A click on a page of a big room that has not arrived yet: it comes as soon as it is read."""
    text = (
        f"Room {_room_code(room_id)}: page {page:,} is still loading: {users_read:,} of {expected:,} users "
        "read so far. It will appear here as soon as it is read…"
    )
    return Message(text=text, blocks=[_section(text)])


def with_note(message: Message, note: str) -> Message:
    """Insert a context note (our own mrkdwn) right below the header."""
    note_block = {"type": "context", "elements": [_mrkdwn(note)]}
    return Message(text=message.text, blocks=[*message.blocks[:1], note_block, *message.blocks[1:]])


def refreshing_message(message: Message, *, started: float) -> Message:
    """`message` (the page shown) marked as being refreshed, without its buttons: the new read replaces it."""
    kept = Message(text=f"Refreshing… {message.text}", blocks=[b for b in message.blocks if b.get("type") != "actions"])
    return with_note(kept, f"↻ Refreshing… started {date_token(started)}")


def reading_again_message(room_id: str, *, started: float) -> Message:
    """A Refresh of a room whose list is no longer cached: nothing to show but that it is being read again."""
    text = f"Reading room {_room_code(room_id)} again…"
    return with_note(
        Message(text=f"Refreshing… {text}", blocks=[_section(text)]), f"↻ Refreshing… started {date_token(started)}"
    )


def loading_text(room_id: str) -> str:
    """The immediate acknowledgement while the room is read (mrkdwn, escaped)."""
    return f"Fetching users of room {_room_code(room_id)}…"
