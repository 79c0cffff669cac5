"""`python -m bot query`: read one room and print it for a terminal, as plain text untrusted names cannot disturb,
or as JSON."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable

from bot.roster.model import RoomUser, Roster
from bot.runtime import open_zego_app
from bot.settings import load_zego_settings
from bot.slack.render.escaping import EMOJI_JOINERS


def printable(text: str) -> str:
    """Make control and format characters (escapes, bidi overrides, zero-width) visible and inert, so untrusted
    names can't rewrite the screen; tabs become spaces and emoji joiners stay."""
    return "".join(" " if char == "\t" else "\N{REPLACEMENT CHARACTER}" if _unsafe(char) else char for char in text)


def _unsafe(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cf") and char not in EMOJI_JOINERS


def roster_json(roster: Roster, *, newest_first: bool) -> str:
    users = roster.ordered(newest_first=newest_first)
    return json.dumps(
        {
            "room_id": roster.room_id,
            "count": len(users),
            "users": [{"user_id": user.user_id, "user_name": user.user_name} for user in users],
        },
        ensure_ascii=False,
    )


def roster_table(roster: Roster, *, newest_first: bool) -> str:
    users = roster.ordered(newest_first=newest_first)
    order = "most recent first" if newest_first else "in join order"
    if roster.being_destroyed:
        headline = f"Room {printable(roster.room_id)} is empty (it is being destroyed)."
    else:
        headline = f"Room {printable(roster.room_id)}: {len(users):,} users, {order}."
    return "\n".join([headline, *_table(users)]) if users else headline


def _table(users: Iterable[RoomUser]) -> list[str]:
    rows = [(str(index), printable(user.user_id), printable(user.user_name)) for index, user in enumerate(users, 1)]
    widths = [max(len(header), *(len(row[column]) for row in rows)) for column, header in enumerate(("#", "user_id"))]
    lines = [f"{'#':>{widths[0]}}  {'user_id':<{widths[1]}}  user_name"]
    lines += [f"{number:>{widths[0]}}  {user_id:<{widths[1]}}  {name}" for number, user_id, name in rows]
    return lines


async def run_query(room_id: str, *, newest_first: bool, as_json: bool) -> None:
    settings = load_zego_settings()
    async with open_zego_app(settings) as app:
        snapshot = await app.snapshots.get(room_id)
    render = roster_json if as_json else roster_table
    print(render(snapshot.roster, newest_first=newest_first))
