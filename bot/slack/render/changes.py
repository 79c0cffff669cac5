"""Block Kit for `--changes` (who joined and who left since the room's last complete read) and `--member` (which of
the asked users are in the room), and the codec of the buttons that page through a list of changes.

Pure functions of data, like blocks.py, under the same limits: untrusted IDs and names are cleaned and escaped
(they can never ping or link), user lines go through `user_lines`, which fits them into one text object.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from bot.roster.diff import KeptChanges
from bot.roster.view import PAGE_SIZE, can_carry_profile, clamp_page, page_count
from bot.slack.render.blocks import MAX_TEXT_CHARS, Message, clip_escaped, user_lines
from bot.slack.render.buttons import MAX_BUTTON_VALUE, StaleButton
from bot.slack.render.escaping import ELLIPSIS, clean_untrusted, escape_mrkdwn, quote_code, slack_length
from bot.slack.render.text import age_text, date_token
from bot.zim.members import RoomMembers
from bot.zim.room_id import room_id_problem

CHANGES_PREV_ACTION_ID = "roomusers_changes_prev"
CHANGES_NEXT_ACTION_ID = "roomusers_changes_next"
CHANGES_PAGING_BLOCK_ID = "roomusers_changes_paging"
CHANGES_VERSION = 1
_CHANGES_KEYS = frozenset({"v", "c", "r", "p", "a", "n"})
CHANGES_ID = re.compile(r"[0-9a-f]{12}")
ROOM_ECHO_CHARS = 64
MAX_HEADER_CHARS = 150
ID_CHARS = 64
NAME_CHARS = 80


@dataclass(frozen=True)
class ChangesPage:
    """A page of a kept list of changes: what a Prev/Next button under it carries."""

    changes_id: str
    room_id: str
    page: int = 1
    profile: str = ""
    users_now: int | None = None  # the room's size at the fresh read (its footer says so); None: not known


def encode_changes_page(ref: ChangesPage) -> str:
    """Compact versioned JSON (a few dozen characters: the ID, room and profile are short)."""
    if not CHANGES_ID.fullmatch(ref.changes_id) or room_id_problem(ref.room_id) is not None or ref.page < 1:
        raise ValueError("this changes page cannot be put in a button")
    if not can_carry_profile(ref.profile):
        raise ValueError("this profile cannot be put in a button")
    payload: dict[str, Any] = {"v": CHANGES_VERSION, "c": ref.changes_id, "r": ref.room_id, "p": ref.page}
    if ref.profile:
        payload["a"] = ref.profile
    if ref.users_now is not None:
        payload["n"] = ref.users_now
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def decode_changes_page(value: str) -> ChangesPage:
    """The page a changes button names; StaleButton for anything encode_changes_page did not make."""
    if not isinstance(value, str) or slack_length(value) > MAX_BUTTON_VALUE:
        raise StaleButton("button value is not a changes page")
    try:
        payload = json.loads(value)
    except (ValueError, RecursionError) as error:
        raise StaleButton("button value is not JSON") from error
    if not isinstance(payload, dict) or not set(payload) <= _CHANGES_KEYS or payload.get("v") != CHANGES_VERSION:
        raise StaleButton("button value comes from another app version")
    changes_id, room_id, page, profile = payload.get("c"), payload.get("r"), payload.get("p"), payload.get("a", "")
    if not isinstance(changes_id, str) or not CHANGES_ID.fullmatch(changes_id):
        raise StaleButton("button names no list of changes")
    if not isinstance(room_id, str) or room_id_problem(room_id) is not None:
        raise StaleButton("button names an invalid room")
    if type(page) is not int or page < 1:
        raise StaleButton("button names an invalid page")
    if not isinstance(profile, str) or not can_carry_profile(profile):
        raise StaleButton("button names an invalid app profile")
    users_now = payload.get("n")
    if users_now is not None and (type(users_now) is not int or users_now < 0):
        raise StaleButton("button names an invalid room size")
    return ChangesPage(changes_id, room_id, page, profile, users_now)


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(text)]}


def _header(title: str, room_id: str) -> dict[str, Any]:
    """`title` then the room, escaped like every header (blocks.py), the room shortened to fit 150 units."""
    room = _room(room_id)
    while slack_length(text := f"{title} {escape_mrkdwn(room)}") > MAX_HEADER_CHARS:
        room = room[:-2] + ELLIPSIS
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": False}}


def _room(room_id: str) -> str:
    return clean_untrusted(room_id, ROOM_ECHO_CHARS)


def ago(seconds: float) -> str:
    """`18 min ago`: how long before now a read was made."""
    age = age_text(seconds)
    return f"{age} ago" if age else "just now"


def _users(count: int) -> str:
    return f"{count:,} {'user' if count == 1 else 'users'}"


def changes_headline(joined: int, left: int, *, since: float, now: float) -> str:
    """`*+2 joined, −2 left* since <date> (18 min ago)`."""
    what = "*No one joined or left*" if not joined and not left else f"*+{joined:,} joined, −{left:,} left*"
    return f"{what} since {date_token(since)} ({ago(now - since)})"


def changes_message(
    room_id: str,
    changes: KeptChanges,
    *,
    now: float,
    page: int = 1,
    profile: str = "",
    changes_id: str = "",
) -> Message:
    """One page of who joined (new join order) then who left (old join order), PAGE_SIZE lines a page.

    `changes.since` dates the baseline, `changes.read_at` the fresh read; `changes_id` (the diff, kept) lets
    Prev/Next page it: without it there are no paging buttons."""
    joined, left = changes.joined, changes.left
    total = len(joined) + len(left)
    pages = page_count(total)
    page = clamp_page(page, total)
    start, end = (page - 1) * PAGE_SIZE, page * PAGE_SIZE
    headline = changes_headline(len(joined), len(left), since=changes.since, now=now)
    blocks: list[dict[str, Any]] = [_header("Changes in room", room_id), _section(headline)]
    for title, users, offset in (("Joined", joined, 0), ("Left", left, len(joined))):
        shown = users[max(0, start - offset) : max(0, end - offset)]
        if not shown:
            continue
        first = max(0, start - offset) + 1
        blocks.append(_section(f"*{title}* ({len(users):,})"))
        blocks.append(_section(user_lines(shown, first)))
    where = [f"Page {page:,} of {pages:,}"]
    if changes.users_now is not None:
        where.append(f"{_users(changes.users_now)} now")
    where.append(f"read {date_token(changes.read_at)}")
    if profile:
        where.append(f"app {escape_mrkdwn(clean_untrusted(profile, 32))}")
    blocks.append(_context(" · ".join(where)))
    if pages > 1 and changes_id:
        buttons = []
        if page > 1:
            value = encode_changes_page(ChangesPage(changes_id, room_id, page - 1, profile, changes.users_now))
            buttons.append(_button("◀ Prev", CHANGES_PREV_ACTION_ID, value))
        if page < pages:
            value = encode_changes_page(ChangesPage(changes_id, room_id, page + 1, profile, changes.users_now))
            buttons.append(_button("Next ▶", CHANGES_NEXT_ACTION_ID, value))
        blocks.append({"type": "actions", "block_id": CHANGES_PAGING_BLOCK_ID, "elements": buttons})
    room = quote_code(room_id, ROOM_ECHO_CHARS)
    return Message(
        text=f"Room {room}: +{len(joined):,} joined, −{len(left):,} left (page {page:,} of {pages:,}).", blocks=blocks
    )


def _button(label: str, action_id: str, value: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": label, "emoji": False},
        "action_id": action_id,
        "value": value,
    }


def no_baseline_message(room_id: str, *, users_now: int, hours: float, read_at: float, kept: bool = True) -> Message:
    """Nothing to compare with (no earlier complete read is kept); the read is the baseline now, if it was kept."""
    room = quote_code(room_id, ROOM_ECHO_CHARS)
    this_read = f"this read ({_users(users_now)}, {date_token(read_at)})"
    then = (
        f"{this_read} is now the baseline. Run `--changes` again later to see who joined and left."
        if kept
        else f"{this_read} could not be kept as a baseline either, so `--changes` cannot compare with it later."
    )
    text = f"No earlier complete read of room {room} is kept (baselines are kept up to {hours:g} h); {then}"
    return Message(text=text, blocks=[_header("Changes in room", room_id), _section(text)])


def changes_too_soon_message(room_id: str, *, age: float, refresh_min: float) -> Message:
    """A `--changes` sooner than ROOMUSERS_REFRESH_MIN_SECONDS after the last complete read: no new read."""
    room = quote_code(room_id, ROOM_ECHO_CHARS)
    wait = max(1, math.ceil(refresh_min - max(0.0, age)))
    text = (
        f"The last complete read of room {room} was {ago(age)}; try again in {wait} s "
        f"(rooms are read again at most every {refresh_min:g} s)."
    )
    return Message(text=text, blocks=[_header("Changes in room", room_id), _section(text)])


def reading_to_compare_message(room_id: str, *, baseline_at: float) -> Message:
    """While the fresh read of a `--changes` goes on: replaced by the answer."""
    room = quote_code(room_id, ROOM_ECHO_CHARS)
    text = f"Reading room {room} again to compare with the read of {date_token(baseline_at)}…"
    return Message(text=text, blocks=[_header("Changes in room", room_id), _section(text)])


def changed_while_read_message(room_id: str, problem: str, *, baseline_at: float | None) -> Message:
    """A fresh read that came out incomplete: it is never compared as if it were whole."""
    room = quote_code(room_id, ROOM_ECHO_CHARS)
    kept = (
        f"The read of {date_token(baseline_at)} stays the baseline."
        if baseline_at is not None
        else "There is no earlier complete read to compare with either."
    )

    def sentence(why: str) -> str:
        return (
            f"⚠️ Room {room} could not be read completely ({why}), so it is not compared with its last read: an "
            f"incomplete list would show people leaving who did not. {kept} Try `--changes` again shortly."
        )

    # The problem is cut to what fits, never through an escape (as a slice of the escaped text could).
    text = sentence(clip_escaped(problem, MAX_TEXT_CHARS - slack_length(sentence(""))))
    return Message(text=text, blocks=[_header("Changes in room", room_id), _section(text)])


def changes_expired_message(room_id: str) -> Message:
    room = quote_code(room_id, ROOM_ECHO_CHARS)
    text = f"This list of changes for room {room} has expired; run `/roomusers` with the room and `--changes` again."
    return Message(text=text, blocks=[_section(text)])


def _member_line(user_id: str, name: str, name_chars: int) -> str:
    code = quote_code(user_id, ID_CHARS)
    return f"• {code} — {escape_mrkdwn(clean_untrusted(name, name_chars))}" if name else f"• {code}"


def _member_lines(members: RoomMembers, name_chars: int) -> str:
    lines = [f"*In the room ({len(members.present)})*"]
    lines += [_member_line(member.user_id, member.user_name, name_chars) for member in members.present] or ["• none"]
    if members.absent:
        lines.append(f"*Not in the room ({len(members.absent)})*")
        lines += [_member_line(user.user_id, "", name_chars) for user in members.absent]
    return "\n".join(lines)


def members_message(members: RoomMembers, *, profile: str = "") -> Message:
    """`In the room (2): …` then `Not in the room (1): …`, each asked user once, in the order asked."""
    room = quote_code(members.room_id, ROOM_ECHO_CHARS)
    # Ten IDs of 32 bytes always fit; names shrink until the list fits one text object (escaping can quintuple them).
    name_chars = NAME_CHARS
    while slack_length(listed := _member_lines(members, name_chars)) > MAX_TEXT_CHARS and name_chars > 5:
        name_chars //= 2
    where = ["one QueryRoomMembers request"]
    if members.being_destroyed:
        where.insert(0, "the room is being destroyed: nobody is in it")
    if members.room_not_found:
        where.insert(0, "the room does not exist: nobody listed is in it")
    if members.request_id:
        where.append(f"ZIM RequestId {quote_code(members.request_id, 40)}")
    if profile:
        where.append(f"app {escape_mrkdwn(clean_untrusted(profile, 32))}")
    blocks = [_header("Room", members.room_id), _section(listed), _context(" · ".join(where))]
    text = f"Room {room}: {len(members.present)} of {len(members.present) + len(members.absent)} in the room."
    return Message(text=text, blocks=blocks)
