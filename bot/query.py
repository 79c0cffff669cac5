"""`python -m bot query`: read one room and print it for a terminal, as plain text untrusted names cannot disturb,
or as JSON.

An incomplete roster is printed (it is what could be read) but always says so: `"complete": false` and
`"problem"` in JSON, an `Incomplete: …` line in the table and on stderr; `bot/cli.py` then exits with 3.
The JSON is streamed: a 1,000,000-user room is written a few thousand users at a time, never built as one
string.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Iterable
from typing import TextIO

from bot.progress import progress_bar
from bot.roster.model import RoomUser, Roster
from bot.roster.service import RoomRead
from bot.runtime import open_zego_app
from bot.settings import load_zego_settings
from bot.slack.render.escaping import EMOJI_JOINERS
from bot.zim.paging import NEWEST_FIRST, OLDEST_FIRST, FetchProgress

_WRITE_CHARS = 64 * 1024  # the JSON writer buffers this much per write


def printable(text: str) -> str:
    """Make control and format characters (escapes, bidi overrides, zero-width) visible and inert, so untrusted
    names can't rewrite the screen; tabs become spaces and emoji joiners stay."""
    return "".join(" " if char == "\t" else "\N{REPLACEMENT CHARACTER}" if _unsafe(char) else char for char in text)


def _unsafe(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cf") and char not in EMOJI_JOINERS


def _json_head(roster: Roster) -> dict[str, object]:
    head: dict[str, object] = {
        "room_id": roster.room_id,
        "complete": roster.complete,
        "reported_count": roster.reported_count,
        "count": len(roster.users),
    }
    if not roster.complete:
        head["problem"] = roster.problem
    return head


def write_roster_json(roster: Roster, out: TextIO, *, newest_first: bool) -> None:
    """One JSON object, streamed: `room_id, complete, reported_count, count, problem?` (only when incomplete),
    then `users` written in chunks. `count` is the number of users listed; `reported_count` is ZIM's Count."""
    head = json.dumps(_json_head(roster), ensure_ascii=False)
    out.write(head[:-1] + ', "users": [')
    chunk: list[str] = []
    size = 0
    for index, user in enumerate(roster.ordered(newest_first=newest_first)):
        item = json.dumps({"user_id": user.user_id, "user_name": user.user_name}, ensure_ascii=False)
        chunk.append(item if index == 0 else ", " + item)
        size += len(item) + 2
        if size >= _WRITE_CHARS:
            out.write("".join(chunk))
            chunk, size = [], 0
    chunk.append("]}\n")
    out.write("".join(chunk))


def roster_json(roster: Roster, *, newest_first: bool) -> str:
    """The same object as write_roster_json, as one string (small rosters, tests)."""
    return json.dumps(
        {
            **_json_head(roster),
            "users": [
                {"user_id": user.user_id, "user_name": user.user_name}
                for user in roster.ordered(newest_first=newest_first)
            ],
        },
        ensure_ascii=False,
    )


def roster_table(roster: Roster, *, newest_first: bool) -> str:
    users = roster.ordered(newest_first=newest_first)
    order = "most recent first" if newest_first else "in join order"
    if roster.being_destroyed and not users:
        headline = f"Room {printable(roster.room_id)} is empty (it is being destroyed)."
    else:
        headline = f"Room {printable(roster.room_id)}: {len(users):,} users, {order}."
    if not roster.complete:
        headline += f"\nIncomplete: {printable(roster.problem)}"
    return "\n".join([headline, *_table(users)]) if users else headline


def _table(users: Iterable[RoomUser]) -> list[str]:
    rows = [(str(index), printable(user.user_id), printable(user.user_name)) for index, user in enumerate(users, 1)]
    widths = [max(len(header), *(len(row[column]) for row in rows)) for column, header in enumerate(("#", "user_id"))]
    lines = [f"{'#':>{widths[0]}}  {'user_id':<{widths[1]}}  user_name"]
    lines += [f"{number:>{widths[0]}}  {user_id:<{widths[1]}}  {name}" for number, user_id, name in rows]
    return lines


async def read_room(room_id: str, *, newest_first: bool) -> Roster:
    """Read one room with the settings from the environment, with a progress bar when stderr is a terminal.

    `--reverse` starts the read from the newest end (zim-api.md §5: Mode=1's first page is the newest users).
    """
    settings = load_zego_settings()
    with progress_bar(unit="users") as update:

        def on_change(progress: FetchProgress) -> None:
            update(progress.users_read, progress.count)

        async with open_zego_app(settings) as app:
            first_mode = NEWEST_FIRST if newest_first else OLDEST_FIRST
            begun = await app.snapshots.begin(room_id, first_mode=first_mode, on_change=on_change)
            return await begun.roster() if isinstance(begun, RoomRead) else begun.roster


def print_roster(roster: Roster, *, newest_first: bool, as_json: bool, out: TextIO | None = None) -> None:
    """Print the roster (streamed JSON, or the table); an incomplete one also says so on stderr."""
    stream = sys.stdout if out is None else out
    if as_json:
        write_roster_json(roster, stream, newest_first=newest_first)
    else:
        stream.write(roster_table(roster, newest_first=newest_first) + "\n")
    stream.flush()
    if not roster.complete:
        print(f"roomusers: incomplete: {roster.problem}", file=sys.stderr)


async def run_query(room_id: str, *, newest_first: bool, as_json: bool) -> Roster:
    """Read and print one room; the roster, so the caller can choose the exit status (bot/cli.py)."""
    roster = await read_room(room_id, newest_first=newest_first)
    print_roster(roster, newest_first=newest_first, as_json=as_json)
    return roster
