"""Block Kit for watches: the confirmation, the alert (with Show users), the notices and the `--watches` list.

Pure functions of data. Room IDs, watched user IDs and ZIM user names are untrusted: each is cleaned, escaped
and put in a code span or plain escaped text, so nothing in them can ping or link. The setter is shown as
`<@U…>` (a real Slack user ID, checked), the only mention these messages carry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from bot.roster.view import RoomView
from bot.slack.render.blocks import Message
from bot.slack.render.buttons import encode_view
from bot.slack.render.escaping import SLACK_USER_ID, clean_untrusted, escape_mrkdwn, quote_code
from bot.slack.render.text import date_token
from bot.watch.model import FirstCheck, Watch

SHOW_USERS_ACTION_ID = "roomusers_watch_show"
STOP_ACTION_ID = "roomusers_watch_stop"
WATCHES_BLOCK_ID = "roomusers_watches"
NAME_CHARS = 80
MAX_LISTED = 48  # Slack's 50 blocks, less the heading and the note a Stop adds

_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,20}")


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _who(user_id: str) -> str:
    return f"<@{user_id}>" if SLACK_USER_ID.fullmatch(user_id) else quote_code(user_id, 40)


def room_label(watch: Watch, app_label: str = "") -> str:
    room = f"room {quote_code(watch.room_id, 64)}"
    return f"{room} (app {quote_code(app_label, 32)})" if app_label else room


def condition_text(watch: Watch) -> str:
    """The condition in mrkdwn, with a watched user ID shown as code."""
    condition = watch.condition
    if condition.kind == "leaves":
        return f"{quote_code(condition.user_id, 40)} is not in the room"
    if condition.kind == "joins":
        return f"{quote_code(condition.user_id, 40)} is in the room"
    return escape_mrkdwn(condition.describe())


def _interval(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def invite_hint(bot_name: str | None) -> str:
    """How to let the bot post in a conversation; `bot_name`: the bot user's name as installed, if known."""
    if bot_name:
        return f"Invite the bot there with `/invite @{clean_untrusted(bot_name, 80)}` so its alerts land there."
    return "Invite the app's bot user there with `/invite` so its alerts land there."


def confirmation_message(
    watch: Watch,
    *,
    where: str,
    state: FirstCheck | Literal["store_down"],
    interval: float,
    app_label: str = "",
    alert: str | None = None,
) -> Message:
    """What the person who set the watch is told. `where`: "in this channel", "in this thread", ... (true for
    this conversation, checked at set time). `alert`: where a fire-at-once alert really went, or why it didn't."""
    room = room_label(watch, app_label)
    if state == "fired":
        text = (
            f"The condition is already true: {condition_text(watch)} in {room}. "
            f"{alert or f'The alert is posted {where}.'} The watch has ended."
        )
        return Message(text=text, blocks=[_section(f":bell: *Watch fired at once*\n{text}")])
    if state == "ended":
        text = (
            f"The watch on {room} has already ended: it fired (see its alert) or was stopped before this confirmation."
        )
        return Message(text=text, blocks=[_section(f":bell: *Watch already ended*\n{text}")])
    text = (
        f"Watching {room}: an alert will be posted {where} once {condition_text(watch)}, "
        f"until {date_token(watch.until)}. Checked every {_interval(interval)}."
    )
    if state == "failed":
        text += " ZIM could not be checked just now; the watch keeps trying."
    if state == "store_down":
        text += (
            " The first check could not be made: roomusers cannot reach its shared store (Redis) just now; "
            "the watch is checked once it is back."
        )
    return Message(text=text, blocks=[_section(f":eyes: *Watch set*\n{text}")])


def alert_message(watch: Watch, *, count: int | None, user_name: str | None = None, app_label: str = "") -> Message:
    """The one visible message when the condition came true, with Show users (answers the clicker privately)."""
    room = room_label(watch, app_label)
    condition = watch.condition
    lines = [f":rotating_light: *Watch: {condition_text(watch)}* in {room}."]
    if condition.needs_members:
        who = quote_code(condition.user_id, 40)
        if user_name is not None:
            who += f" ({escape_mrkdwn(clean_untrusted(user_name, NAME_CHARS)) or '_(no name)_'})"
        lines.append(f"{who} {'is in' if condition.kind == 'joins' else 'is not in'} the room now.")
    if count is not None:
        lines.append(f"*{count:,} {'user' if count == 1 else 'users'}* in the room now.")
    lines.append(f"Watch set by {_who(watch.creator)} {date_token(watch.created_at)}; it has ended.")
    text = "\n".join(lines)
    button = {
        "type": "button",
        "action_id": SHOW_USERS_ACTION_ID,
        "text": {"type": "plain_text", "text": "Show users", "emoji": False},
        "value": encode_view(RoomView(watch.room_id, profile=watch.profile)),
    }
    fallback = f"Watch: {condition_text(watch)} in {room}."
    return Message(text=fallback, blocks=[_section(text), {"type": "actions", "elements": [button]}])


def failing_message(watch: Watch, problem: str, *, failures: int, app_label: str = "") -> Message:
    text = (
        f":warning: The watch on {room_label(watch, app_label)} ({condition_text(watch)}) could not be checked "
        f"{failures} times in a row: {escape_mrkdwn(clean_untrusted(problem, 300))} It keeps trying; "
        "one more message follows when checking works again."
    )
    return Message(text=text, blocks=[_section(text)])


def recovered_message(watch: Watch, *, app_label: str = "") -> Message:
    text = (
        f":white_check_mark: The watch on {room_label(watch, app_label)} ({condition_text(watch)}) can be checked "
        "again; it goes on."
    )
    return Message(text=text, blocks=[_section(text)])


def expired_message(watch: Watch, *, app_label: str = "") -> Message:
    hours = round((watch.until - watch.created_at) / 3600, 2)  # this watch's own span, whatever the setting is now
    text = (
        f":hourglass: The watch on {room_label(watch, app_label)} ({condition_text(watch)}), set by "
        f"{_who(watch.creator)}, ended after {hours:g} hours without the condition coming true."
    )
    return Message(text=text, blocks=[_section(text)])


def not_posted_note(channel_id: str, bot_name: str | None = None) -> str:
    if channel_id.startswith("D"):
        return "roomusers could not post this in the direct message where the watch was set: it is not part of it."
    where = f"<#{channel_id}>" if _CHANNEL_ID.fullmatch(channel_id) else "the conversation"
    return f"roomusers could not post this in {where}, where the watch was set. {invite_hint(bot_name)}"


def watches_message(
    watches: Sequence[Watch], *, intervals: Mapping[str, float], app_labels: Mapping[str, str] | None = None
) -> Message:
    """This conversation's active watches, each with a Stop button; `intervals`: the real interval per profile."""
    labels = app_labels or {}
    if not watches:
        text = "No active watches in this conversation. Set one with `/roomusers <room-id> --watch --when-empty`."
        text = text.replace("<room-id>", "&lt;room-id&gt;")
        return Message(text=text, blocks=[_section(text)])
    heading = f"{len(watches)} active {'watch' if len(watches) == 1 else 'watches'}"
    shown = watches[:MAX_LISTED]
    title = f"*{heading}*"
    if len(shown) < len(watches):  # never cut silently: say how many, and how to reach the rest
        title += f"\nShowing the first {len(shown)} of {len(watches)}; stop some to see the others."
    blocks: list[dict[str, Any]] = [_section(title)]
    for index, watch in enumerate(shown):
        interval = intervals.get(watch.profile)
        every = f" · checked every {_interval(interval)}" if interval is not None else ""
        line = (
            f"{room_label(watch, labels.get(watch.profile, ''))}: {condition_text(watch)}\n"
            f"set by {_who(watch.creator)} {date_token(watch.created_at)} · until {date_token(watch.until)}{every}"
        )
        block = _section(line)
        block["accessory"] = {
            "type": "button",
            "action_id": f"{STOP_ACTION_ID}_{index}",  # unique, so each Stop can be told apart
            "text": {"type": "plain_text", "text": "Stop", "emoji": False},
            "value": watch.id,
            "style": "danger",
        }
        blocks.append(block)
    return Message(text=f"{heading} in this conversation", blocks=blocks)
