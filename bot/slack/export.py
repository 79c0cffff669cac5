"""A room's roster as a CSV file in Slack: the file name and the upload (files_upload_v2).

The bytes are `bot.slack.csv_file.roster_csv`, the same that `python -m bot query --csv` writes.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.roster.cpu import off_process
from bot.roster.model import RoomUser
from bot.roster.packed import PackedUsers, ReversedUsers
from bot.slack.csv_file import CSV_HEADER, FORMULA_TRIGGERS, matching_csv, roster_csv
from bot.slack.render.escaping import SLACK_USER_ID, clean_untrusted, escape_mrkdwn, quote_code
from bot.slack.render.text import LAST_EPOCH, date_token

__all__ = [
    "CSV_HEADER",
    "FORMULA_TRIGGERS",
    "ExportTarget",
    "Exported",
    "csv_filename",
    "roster_csv",
    "upload_problem",
    "upload_roster_csv",
]

log = logging.getLogger(__name__)

_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_MAX_ROOM_ID_IN_FILENAME = 64
_MAX_TITLE_CHARS = 200


def _utc_stamp(fetched_at: float, pattern: str) -> str | None:
    if not (math.isfinite(fetched_at) and 0 <= fetched_at <= LAST_EPOCH):
        return None
    return time.strftime(pattern, time.gmtime(int(fetched_at)))


def csv_filename(room_id: str, fetched_at: float, *, matching: bool = False, complete: bool = True) -> str:
    """`roomusers-<room-id>-YYYYMMDD-HHMMSSZ.csv` (UTC), e.g. `roomusers-demo-120-20261128-063100Z.csv`,
    `…-matching.csv` for the users matching a filter; an incomplete list's name ends in `-incomplete.csv`, so
    the file never passes for the whole room.

    Every character of the room ID outside ASCII letters, digits, `.`, `_` and `-` becomes `_` (so no path
    separators, spaces or shell metacharacters), and the ID is cut to 64 characters. A timestamp that cannot
    be formatted (NaN, negative, beyond year 9999) is left out.
    """
    safe_id = _UNSAFE_FILENAME_CHARS.sub("_", room_id[:_MAX_ROOM_ID_IN_FILENAME]) or "_"
    stamp = _utc_stamp(fetched_at, "%Y%m%d-%H%M%SZ")
    suffix = ("-matching" if matching else "") + ("" if complete else "-incomplete")
    return f"roomusers-{safe_id}-{stamp}{suffix}.csv" if stamp else f"roomusers-{safe_id}{suffix}.csv"


@dataclass(frozen=True)
class ExportTarget:
    """Where the file goes: `channel_id` (optionally in the thread `thread_ts`), or, when `direct_to_user` is
    set, the bot's direct message with that user instead, so the roster never reaches the channel."""

    channel_id: str
    thread_ts: str | None = None
    direct_to_user: str | None = None


@dataclass(frozen=True)
class Exported:
    """A CSV file that was uploaded: `rows` users (the matches, with a filter)."""

    rows: int


def _initial_comment(
    room_id: str,
    count: int,
    fetched_at: float,
    requested_by: str,
    profile: str,
    filter_text: str = "",
    room_users: int = 0,
    problem: str = "",
) -> str:
    room = quote_code(room_id, 100)
    app = f" (app {quote_code(profile, 50)})" if profile else ""
    users = "1 user" if count == 1 else f"{count:,} users"
    matching = ""
    if filter_text:
        matching = f" matching “{escape_mrkdwn(clean_untrusted(filter_text, 100))}”"
        users = f"{count:,} of {room_users:,} {'user' if room_users == 1 else 'users'}"
    # The requester's ID comes from Slack's own payload; the mention is ours and intended.
    requester = f" — requested by <@{requested_by}>" if SLACK_USER_ID.fullmatch(requested_by) else ""
    incomplete = f" — *incomplete:* {escape_mrkdwn(problem)}" if problem else ""
    return f"Users of room {room}{app}{matching} ({users}, fetched {date_token(fetched_at)}){incomplete}{requester}"


def _title(room_id: str, profile: str) -> str:
    app = f" ({profile})" if profile else ""
    return clean_untrusted(f"Users of room {room_id}{app}", _MAX_TITLE_CHARS)


def upload_problem(error: BaseException) -> str:
    """A plain sentence for the person who asked for the file, for an error raised while uploading it."""
    if isinstance(error, SlackApiError):
        code = str(error.response.get("error") or "unknown_error")
        if code in ("not_in_channel", "channel_not_found"):
            return "I can't post files in this channel; invite @roomusers and try again."
        if code == "missing_scope":
            return "The app lacks the files:write (and im:write) scope; an admin must reinstall it from manifest.yml."
        if code in ("ratelimited", "rate_limited") or error.response.status_code == 429:
            retry_after = error.response.headers.get("Retry-After", "") if error.response.headers else ""
            wait = f"in {retry_after} seconds" if str(retry_after).isdigit() else "in a minute"
            return f"Slack is limiting how fast files can be uploaded right now; try again {wait}."
        if code in ("file_uploads_disabled", "file_uploads_except_images_disabled"):
            return "File uploads are disabled in this workspace, so I can't send the CSV file."
        return f"Slack refused the CSV upload (error `{escape_mrkdwn(code[:80])}`); try again or ask an admin."
    if isinstance(error, aiohttp.ClientError | TimeoutError):
        return "I couldn't reach Slack to upload the CSV file; try again in a moment."
    if isinstance(error, SlackClientError):
        return "Slack didn't accept the CSV file's contents; try again in a moment."
    return "Something went wrong while uploading the CSV file; try again in a moment."


def _error_code(error: BaseException) -> str:
    if isinstance(error, SlackApiError):
        return str(error.response.get("error") or f"http_{error.response.status_code}")
    return type(error).__name__


async def _dm_channel(client: AsyncWebClient, user_id: str) -> str:
    opened = await client.conversations_open(users=user_id)
    channel = opened.get("channel")
    channel_id = channel.get("id") if isinstance(channel, dict) else None
    if not isinstance(channel_id, str) or not channel_id:
        raise SlackClientError("conversations.open returned no channel id")
    return channel_id


async def upload_roster_csv(
    client: AsyncWebClient,
    *,
    room_id: str,
    users: Sequence[RoomUser],
    fetched_at: float,
    target: ExportTarget,
    requested_by: str,
    profile: str = "",
    filter_text: str = "",
    problem: str = "",
) -> Exported | str:
    """Upload the roster as a CSV file to `target`: what was sent, or one sentence saying why it could not.

    `problem` is an incomplete roster's sentence: the comment says so and the file name ends `-incomplete.csv`.

    A DM target opens (or reuses) the bot's direct message with the user and uploads there, never in the
    channel (a thread_ts then does not apply). No exception escapes, except cancellation; failures are logged
    with Slack's error code only. With `filter_text`, the file has only the users matching it, in order.
    """
    # Filtering and encoding a 100k-user room must hold neither the loop nor the GIL the loop needs: both run
    # in the worker process, and what goes there is packed (a tuple of 100k users pickles ~150x slower).
    packed = users if isinstance(users, PackedUsers | ReversedUsers) else PackedUsers(users)
    try:
        if target.direct_to_user:
            channel, thread_ts = await _dm_channel(client, target.direct_to_user), None
        else:
            channel, thread_ts = target.channel_id, target.thread_ts
        rows, content = await off_process(len(packed), matching_csv, packed, filter_text)
        await client.files_upload_v2(
            content=content,
            filename=csv_filename(room_id, fetched_at, matching=bool(filter_text), complete=not problem),
            title=_title(room_id, profile),
            channel=channel,
            thread_ts=thread_ts,
            initial_comment=_initial_comment(
                room_id, rows, fetched_at, requested_by, profile, filter_text, len(packed), problem
            ),
        )
    except (SlackClientError, aiohttp.ClientError, TimeoutError) as error:
        log.warning("CSV export of room %r for %s failed: %s", room_id[:100], requested_by[:20], _error_code(error))
        return upload_problem(error)
    except Exception as error:
        log.exception("CSV export of room %r for %s failed unexpectedly", room_id[:100], requested_by[:20])
        return upload_problem(error)
    return Exported(rows)
