"""The sentences users read: what went wrong while answering, and dates; safe to post as mrkdwn."""

from __future__ import annotations

import math
import time

from bot.slack.render.escaping import escape_mrkdwn
from bot.zim.errors import (
    InvalidRoomId,
    RoomNotFound,
    RoomUnavailable,
    ZimCredentialsRejected,
    ZimError,
    ZimIncompleteRoster,
    ZimUnavailable,
)

LAST_EPOCH = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second time.gmtime formats with four digits


def date_token(epoch: float) -> str:
    """Slack's localized date token, with a UTC fallback for clients that cannot render it."""
    if not (math.isfinite(epoch) and 0 < epoch <= LAST_EPOCH):
        return "at an unknown time"
    seconds = int(epoch)
    fallback = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))
    return f"<!date^{seconds}^{{date_short_pretty}} {{time_secs}}|{fallback}>"


def _request_id(error: ZimError) -> str:
    return f" (ZIM RequestId `{escape_mrkdwn(error.request_id)}`)" if error.request_id else ""


def describe_zim_error(error: ZimError, room_id: str) -> str:
    """One sentence (or two) for a ZIM failure, naming the room and keeping ZIM's RequestId for support."""
    room = f"`{escape_mrkdwn(room_id[:100])}`"
    message = escape_mrkdwn(error.message)
    request_id = _request_id(error)
    if isinstance(error, InvalidRoomId):
        return f"{room} is not a valid room ID: {message}"
    if isinstance(error, RoomNotFound):
        return f"Room {room} does not exist in ZIM (or has been destroyed){request_id}."
    if isinstance(error, RoomUnavailable):
        return f"ZIM could not load room {room}; try again later or contact ZEGO support{request_id}."
    if isinstance(error, ZimCredentialsRejected):
        return f"roomusers could not sign in to ZIM: {message} An admin must fix the app's settings{request_id}."
    if isinstance(error, ZimUnavailable):
        return f"Room {room} could not be read: {message} Try again shortly{request_id}."
    if isinstance(error, ZimIncompleteRoster):
        return f"Room {room} could not be read completely: {message}{request_id}"
    return f"ZIM refused to list room {room}: {message}{request_id}"


def incomplete_note(problem: str) -> str:
    """The line every page of an incomplete answer carries (mrkdwn; `problem` is escaped here)."""
    return f"⚠️ *Incomplete:* {escape_mrkdwn(problem)}. ↻ Refresh to read it again."


def age_text(seconds: float) -> str:
    """`18 min`, `2 h 5 min`: how old a read is, for "… ago" and "…, 2 h old" alike ("" when not a valid age)."""
    if not math.isfinite(seconds) or seconds < 0:
        return ""
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    hours, minutes = divmod(int(seconds // 60), 60)
    return f"{hours:,} h {minutes} min" if minutes else f"{hours:,} h"


def unexpected_error_sentence(reference: str) -> str:
    return f"Something went wrong on our side while answering; it has been logged with reference `{reference}`."


def refresh_declined_note(age_seconds: float, minimum: float) -> str:
    """Below the header of a Refresh answered from a snapshot younger than ROOMUSERS_REFRESH_MIN_SECONDS."""
    return f"Read {max(0, int(age_seconds))} s ago — refreshes come at most every {minimum:g} s, so this is that list."


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def queued_sentence(position: int, running: int) -> str:
    """A read waiting for a free reader (ROOMUSERS_MAX_CONCURRENT_READS)."""
    reads = "read of this app is" if running == 1 else "reads of this app are"
    return f"Waiting for a free reader: {_ordinal(position)} in line ({running} {reads} running)."


def rate_limited_sentence(rate: int, retry_in: float) -> str:
    """A person over ROOMUSERS_USER_RATE."""
    return (
        f"You've sent {rate} requests in the last minute; roomusers answers {rate} a minute per person. "
        f"Try again in {max(1, math.ceil(retry_in))} s."
    )


EXTERNAL_REFUSED = (
    "roomusers answers only people of this workspace (or organisation); it isn't available to people from other "
    "organisations in shared channels."
)
