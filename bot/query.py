"""`python -m bot query`: read one room and print it for a terminal, as plain text untrusted names cannot disturb,
as JSON, or as the Slack export's CSV.

An incomplete roster is printed (it is what could be read) but always says so: `"complete": false` and
`"problem"` in JSON, an `Incomplete: …` line in the table, and one sentence on stderr whatever the output;
`bot/cli.py` then exits with 3. The JSON is streamed: a 1,000,000-user room is written a few thousand users at
a time, never built as one string.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, TextIO

from bot.heap import freeze_heap
from bot.progress import progress_bar
from bot.roster.model import RoomUser, Roster
from bot.roster.view import filter_users
from bot.runtime import open_zego_app
from bot.settings import load_zego_profiles
from bot.slack.csv_file import roster_csv
from bot.slack.render.escaping import EMOJI_JOINERS
from bot.zim import fetch_roster
from bot.zim.errors import RoomNotFound
from bot.zim.members import RoomMembers
from bot.zim.paging import NEWEST_FIRST, OLDEST_FIRST, FetchProgress

Output = Literal["table", "json", "csv"]
_WRITE_CHARS = 64 * 1024  # the JSON writer buffers this much per write


@dataclass(frozen=True)
class QueryRequest:
    """One `query` command line, checked: the room, the filter (as in Slack), order, app profile, output."""

    room_id: str
    filter_text: str = ""
    newest_first: bool = False
    profile: str = ""  # "" is the default profile; any case
    output: Output = "table"


def printable(text: str) -> str:
    """Make control and format characters (escapes, bidi overrides, zero-width) visible and inert, so untrusted
    names can't rewrite the screen; tabs become spaces and emoji joiners stay."""
    return "".join(" " if char == "\t" else "\N{REPLACEMENT CHARACTER}" if _unsafe(char) else char for char in text)


def _unsafe(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cf") and char not in EMOJI_JOINERS


def _json_head(
    roster: Roster, users: Sequence[RoomUser], shown: Sequence[RoomUser], filter_text: str
) -> dict[str, object]:
    """`count` is the number of users read; `reported_count` is ZIM's Count; with a filter, `filter` and
    `matches` say what `users` holds."""
    head: dict[str, object] = {
        "room_id": roster.room_id,
        "complete": roster.complete,
        "reported_count": roster.reported_count,
        "count": len(users),
    }
    if not roster.complete:
        head["problem"] = roster.problem
    if filter_text:
        head.update(filter=filter_text, matches=len(shown))
    return head


def _shown(roster: Roster, newest_first: bool, filter_text: str) -> tuple[Sequence[RoomUser], Sequence[RoomUser]]:
    users = roster.ordered(newest_first=newest_first)
    return users, (filter_users(users, filter_text) if filter_text else users)


def write_roster_json(roster: Roster, out: TextIO, *, newest_first: bool, filter_text: str = "") -> None:
    """One JSON object, streamed: `room_id, complete, reported_count, count, problem?` (only when incomplete),
    `filter, matches` (only with a filter), then `users` written in chunks."""
    users, shown = _shown(roster, newest_first, filter_text)
    head = json.dumps(_json_head(roster, users, shown, filter_text), ensure_ascii=False)
    out.write(head[:-1] + ', "users": [')
    chunk: list[str] = []
    size = 0
    for index, user in enumerate(shown):
        item = json.dumps({"user_id": user.user_id, "user_name": user.user_name}, ensure_ascii=False)
        chunk.append(item if index == 0 else ", " + item)
        size += len(item) + 2
        if size >= _WRITE_CHARS:
            out.write("".join(chunk))
            chunk, size = [], 0
    chunk.append("]}\n")
    out.write("".join(chunk))


def roster_json(roster: Roster, *, newest_first: bool, filter_text: str = "") -> str:
    """The same object as write_roster_json, as one string (small rosters, tests)."""
    users, shown = _shown(roster, newest_first, filter_text)
    return json.dumps(
        {
            **_json_head(roster, users, shown, filter_text),
            "users": [{"user_id": user.user_id, "user_name": user.user_name} for user in shown],
        },
        ensure_ascii=False,
    )


def roster_table(roster: Roster, *, newest_first: bool, filter_text: str = "") -> str:
    users, shown = _shown(roster, newest_first, filter_text)
    order = "most recent first" if newest_first else "in join order"
    if roster.being_destroyed and not users:
        headline = f"Room {printable(roster.room_id)} is empty (it is being destroyed)."
    elif filter_text:
        verb = "matches" if len(shown) == 1 else "match"
        headline = (
            f"Room {printable(roster.room_id)}: {len(shown):,} of {len(users):,} users {verb} "
            f"“{printable(filter_text)}”, {order}."
        )
    else:
        headline = f"Room {printable(roster.room_id)}: {len(users):,} users, {order}."
    if not roster.complete:
        headline += f"\nIncomplete: {printable(roster.problem)}"
    return "\n".join([headline, *_table(shown)]) if shown else headline


def _table(users: Iterable[RoomUser]) -> list[str]:
    rows = [(str(index), printable(user.user_id), printable(user.user_name)) for index, user in enumerate(users, 1)]
    widths = [max(len(header), *(len(row[column]) for row in rows)) for column, header in enumerate(("#", "user_id"))]
    lines = [f"{'#':>{widths[0]}}  {'user_id':<{widths[1]}}  user_name"]
    lines += [f"{number:>{widths[0]}}  {user_id:<{widths[1]}}  {name}" for number, user_id, name in rows]
    return lines


async def read_room(request: QueryRequest) -> Roster:
    """Read the room from the profile's ZEGO app, with a progress bar on stderr when it is a terminal.

    `--reverse` starts the read from the newest end (zim-api.md §5: Mode=1's first page is the newest users).
    Settings problems raise ConfigError; ZIM failures a ZimError.
    """
    profiles = load_zego_profiles()
    profile = profiles.resolve(request.profile)
    if profile is None:
        raise profiles.unknown(request.profile)
    with progress_bar(f"Reading room {printable(request.room_id)}") as update:
        progress = FetchProgress(on_change=lambda read: update(read.users_read, read.count))
        first_mode = NEWEST_FIRST if request.newest_first else OLDEST_FIRST
        async with open_zego_app(profiles.by_name[profile]) as app:
            freeze_heap()  # as `serve` does: no long collector pause between a send slot and the wire
            roster = await fetch_roster(app.client, request.room_id, progress=progress, first_mode=first_mode)
        update(len(roster.users), len(roster.users))
    return roster


def print_roster(roster: Roster, request: QueryRequest, out: TextIO | None = None) -> None:
    """Print the roster as the request asks (table, streamed JSON or CSV); an incomplete one also says so on
    stderr, in one sentence."""
    stream = sys.stdout if out is None else out
    if request.output == "csv":
        _, shown = _shown(roster, request.newest_first, request.filter_text)
        data = roster_csv(shown)
        binary = getattr(stream, "buffer", None)
        stream.flush()
        if binary is not None:
            binary.write(data)
            binary.flush()
        else:
            stream.write(data.decode("utf-8"))
    elif request.output == "json":
        write_roster_json(roster, stream, newest_first=request.newest_first, filter_text=request.filter_text)
    else:
        text = roster_table(roster, newest_first=request.newest_first, filter_text=request.filter_text)
        stream.write(text + "\n")
    stream.flush()
    if not roster.complete:
        print(f"roomusers: incomplete: {roster.problem}", file=sys.stderr)


async def run_query(request: QueryRequest) -> Roster:
    """Read and print one room; the roster, so the caller can choose the exit status (bot/cli.py exit_for)."""
    roster = await read_room(request)
    print_roster(roster, request)
    return roster


@dataclass(frozen=True)
class MemberQuery:
    """`query ROOM --member A,B [--json]`: which of these users (checked, 1 to 10) are in the room."""

    room_id: str
    user_ids: tuple[str, ...]
    profile: str = ""
    json: bool = False


def members_json(members: RoomMembers) -> str:
    """`{"room_id", "in": [{"user_id", "user_name"}], "not_in": [user_id, ...]}`, in the order asked."""
    return json.dumps(
        {
            "room_id": members.room_id,
            "in": [{"user_id": member.user_id, "user_name": member.user_name} for member in members.present],
            "not_in": [user.user_id for user in members.absent],
        },
        ensure_ascii=False,
    )


def members_table(members: RoomMembers) -> str:
    asked = len(members.present) + len(members.absent)
    headline = f"Room {printable(members.room_id)}: {len(members.present)} of {asked} asked users are in the room."
    if members.being_destroyed:
        headline += " (The room is being destroyed: nobody is in it.)"
    if members.room_not_found:
        headline += " (The room does not exist: nobody is in it.)"
    rows = [("in", printable(member.user_id), printable(member.user_name)) for member in members.present]
    rows += [("not in", printable(user.user_id), "") for user in members.absent]
    width = max(len("user_id"), *(len(row[1]) for row in rows))
    lines = [f"{'':<6}  {'user_id':<{width}}  user_name"]
    lines += [f"{where:<6}  {user_id:<{width}}  {name}".rstrip() for where, user_id, name in rows]
    return "\n".join([headline, *lines])


async def run_member_query(request: MemberQuery, out: TextIO | None = None) -> RoomMembers:
    """One QueryRoomMembers round trip (whatever the room's size), printed as a table or JSON.

    Settings problems raise ConfigError; ZIM failures a ZimError. A room that does not exist is answered as
    empty (everyone in `not_in`), with a note on stderr."""
    profiles = load_zego_profiles()
    profile = profiles.resolve(request.profile)
    if profile is None:
        raise profiles.unknown(request.profile)
    async with open_zego_app(profiles.by_name[profile]) as app:
        try:
            members = await app.client.query_members(request.room_id, request.user_ids, priority="interactive")
        except RoomNotFound as error:
            # Counted as 0 users, like a room being destroyed: nobody asked about is in it (exit 0, a note).
            where = f" (ZIM RequestId {printable(error.request_id)})" if error.request_id else ""
            note = f"room {printable(request.room_id)} does not exist in ZIM{where}, so none of these users is in it"
            print(f"roomusers: {note}.", file=sys.stderr)
            members = RoomMembers.of_missing_room(request.room_id, request.user_ids, error.request_id or "")
    stream = sys.stdout if out is None else out
    stream.write((members_json(members) if request.json else members_table(members)) + "\n")
    stream.flush()
    return members
