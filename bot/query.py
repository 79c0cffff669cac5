"""`python -m bot query`: read one room and print it for a terminal, as plain text untrusted names cannot disturb,
as JSON, or as the Slack export's CSV."""

from __future__ import annotations

import asyncio
import json
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from bot.progress import progress_bar
from bot.roster.model import RoomUser, Roster
from bot.roster.view import filter_users
from bot.runtime import open_zego_app
from bot.settings import load_zego_profiles
from bot.slack.export import roster_csv
from bot.slack.render.escaping import EMOJI_JOINERS
from bot.zim import fetch_roster
from bot.zim.paging import FetchProgress

PROGRESS_EVERY_SECONDS = 0.1
Output = Literal["table", "json", "csv"]


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


def roster_json(roster: Roster, *, newest_first: bool, filter_text: str = "") -> str:
    """`count` is the room's user count; with a filter, `filter` and `matches` say what `users` holds."""
    users = roster.ordered(newest_first=newest_first)
    shown = filter_users(users, filter_text) if filter_text else users
    payload: dict[str, object] = {"room_id": roster.room_id, "count": len(users)}
    if filter_text:
        payload.update(filter=filter_text, matches=len(shown))
    payload["users"] = [{"user_id": user.user_id, "user_name": user.user_name} for user in shown]
    return json.dumps(payload, ensure_ascii=False)


def roster_table(roster: Roster, *, newest_first: bool, filter_text: str = "") -> str:
    users = roster.ordered(newest_first=newest_first)
    order = "most recent first" if newest_first else "in join order"
    shown: Sequence[RoomUser] = users
    if roster.being_destroyed:
        headline = f"Room {printable(roster.room_id)} is empty (it is being destroyed)."
    elif filter_text:
        shown = filter_users(users, filter_text)
        verb = "matches" if len(shown) == 1 else "match"
        headline = (
            f"Room {printable(roster.room_id)}: {len(shown):,} of {len(users):,} users {verb} "
            f"“{printable(filter_text)}”, {order}."
        )
    else:
        headline = f"Room {printable(roster.room_id)}: {len(users):,} users, {order}."
    return "\n".join([headline, *_table(shown)]) if shown else headline


def _table(users: Iterable[RoomUser]) -> list[str]:
    rows = [(str(index), printable(user.user_id), printable(user.user_name)) for index, user in enumerate(users, 1)]
    widths = [max(len(header), *(len(row[column]) for row in rows)) for column, header in enumerate(("#", "user_id"))]
    lines = [f"{'#':>{widths[0]}}  {'user_id':<{widths[1]}}  user_name"]
    lines += [f"{number:>{widths[0]}}  {user_id:<{widths[1]}}  {name}" for number, user_id, name in rows]
    return lines


async def read_room(fetch: asyncio.Task[Roster], progress: FetchProgress, room_id: str) -> Roster:
    """Wait for `fetch`, drawing a progress bar on stderr when it is a terminal."""
    with progress_bar(sys.stderr, f"Reading room {printable(room_id)}") as show:
        while show is not None and not fetch.done():
            show(progress.users_read, progress.count)
            await asyncio.wait({fetch}, timeout=PROGRESS_EVERY_SECONDS)
        roster = await fetch
        if show is not None:
            show(len(roster.users), len(roster.users))
    return roster


async def run_query(request: QueryRequest) -> None:
    """Read the room from the profile's ZEGO app and print it; settings problems raise ConfigError."""
    profiles = load_zego_profiles()
    profile = profiles.resolve(request.profile)
    if profile is None:
        raise profiles.unknown(request.profile)
    async with open_zego_app(profiles.by_name[profile]) as app:
        progress = FetchProgress()
        fetch = asyncio.create_task(fetch_roster(app.client, request.room_id, progress=progress))
        try:
            roster = await read_room(fetch, progress, request.room_id)
        finally:
            fetch.cancel()
    if request.output == "csv":
        ordered = roster.ordered(newest_first=request.newest_first)
        sys.stdout.buffer.write(roster_csv(filter_users(ordered, request.filter_text)))
        sys.stdout.flush()
        return
    render = roster_json if request.output == "json" else roster_table
    print(render(roster, newest_first=request.newest_first, filter_text=request.filter_text))
