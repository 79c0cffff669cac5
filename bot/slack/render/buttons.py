"""The button codec: a button's `value` carries the whole `RoomView` it draws.

A click can land on any replica, so the value holds everything needed to draw the target page: room, page,
order, the snapshot time it was drawn from, the filter and the app profile. The encoding is versioned JSON
(unchanged since version 1, so buttons on messages already posted keep working); anything else (older app
versions, foreign or forged values) is refused with StaleButton.
"""

from __future__ import annotations

import json
import math
from typing import Any

from bot.roster.view import MAX_FILTER_CHARS, RoomView, can_carry_profile
from bot.slack.render.escaping import LONE_SURROGATE, largest_fitting, slack_length
from bot.slack.render.text import LAST_EPOCH
from bot.zim.room_id import room_id_problem

MAX_BUTTON_VALUE = 2000  # Slack's limit for a button's value
# An answer carries up to seven buttons, and Slack's undocumented ceiling on a message counts their values too, so
# a filter may take at most this many UTF-16 units once JSON-escaped: 256 letters or 256 CJK characters fit,
# 256 emoji fit (2 units each); `&`, `<`, `>`, `"` and control characters take 2 to 6 units each.
MAX_FILTER_VALUE_UNITS = 540
VIEW_VERSION = 1
_KEYS = frozenset({"v", "r", "p", "o", "t", "f", "a"})
# `<`, `>` and `&` are escaped inside the JSON so a value never holds text Slack could read as markup.
_JSON_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


class StaleButton(Exception):
    """A button value this app version cannot trust or understand; the user should run the command again."""


def _dump(payload: dict[str, Any] | str) -> str:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in _JSON_UNSAFE.items():
        text = text.replace(char, escaped)
    return text


def filter_value_units(filter_text: str) -> int:
    """How many UTF-16 units `filter_text` takes inside a button value (JSON-escaped, without the quotes)."""
    return slack_length(_dump(LONE_SURROGATE.sub("\ufffd", filter_text))) - 2


def encode_view(ref: RoomView) -> str:
    """Compact versioned JSON, at most MAX_BUTTON_VALUE chars; a filter is shortened to MAX_FILTER_CHARS and
    MAX_FILTER_VALUE_UNITS (parsing refuses longer ones, so only a forged or old value is ever shortened).

    Raises ValueError for a ref decode_view would refuse (invalid room ID, page or profile name), so a
    button can never carry state that fails later, on a click.
    """
    if room_id_problem(ref.room_id) is not None or ref.page < 1 or not can_carry_profile(ref.profile):
        raise ValueError("this page reference cannot be put in a button")
    payload: dict[str, Any] = {"v": VIEW_VERSION, "r": ref.room_id, "p": ref.page}
    if ref.newest_first:
        payload["o"] = 1
    if math.isfinite(ref.fetched_at) and 1 <= ref.fetched_at <= LAST_EPOCH:
        payload["t"] = int(ref.fetched_at)
    if ref.profile:
        payload["a"] = ref.profile
    value = _dump(payload)  # at most ~250 chars: room IDs and profiles are short
    filter_text = LONE_SURROGATE.sub("\ufffd", ref.filter_text[:MAX_FILTER_CHARS])
    if filter_value_units(filter_text) > MAX_FILTER_VALUE_UNITS:
        fits = largest_fitting(
            lambda length: filter_value_units(filter_text[:length]) <= MAX_FILTER_VALUE_UNITS,
            low=0,
            high=len(filter_text),
        )
        filter_text = filter_text[:fits]
    if not filter_text:
        return value

    def with_filter(length: int) -> str:
        return _dump({**payload, "f": filter_text[:length]})

    if slack_length(full := with_filter(len(filter_text))) <= MAX_BUTTON_VALUE:
        return full
    fits = largest_fitting(
        lambda length: slack_length(with_filter(length)) <= MAX_BUTTON_VALUE, low=0, high=len(filter_text)
    )
    return with_filter(fits) if fits else value


def _field(payload: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = payload.get(key, default)
    if type(value) is not kind:  # exact type: rejects True for an int and 1 for a bool-like flag
        raise StaleButton(f"button field {key!r} has the wrong type")
    return value


def decode_view(value: str) -> RoomView:
    """Parse a button value made by encode_view; raise StaleButton for anything else."""
    if not isinstance(value, str) or slack_length(value) > MAX_BUTTON_VALUE:
        raise StaleButton("button value is not a page reference")
    try:
        payload = json.loads(value)
    except (ValueError, RecursionError) as error:
        raise StaleButton("button value is not JSON") from error
    if not isinstance(payload, dict) or not set(payload) <= _KEYS or payload.get("v") != VIEW_VERSION:
        raise StaleButton("button value comes from another app version")
    _field(payload, "v", int, None)
    room_id = _field(payload, "r", str, None)
    if room_id_problem(room_id) is not None:
        raise StaleButton("button names an invalid room")
    page = _field(payload, "p", int, None)
    if page < 1:
        raise StaleButton("button names an invalid page")
    order = _field(payload, "o", int, 0)
    if order not in (0, 1):
        raise StaleButton("button has an unknown order")
    fetched_at = _field(payload, "t", int, 0)
    if not 0 <= fetched_at <= LAST_EPOCH:
        raise StaleButton("button has an invalid time")
    profile = _field(payload, "a", str, "")
    if not can_carry_profile(profile):
        raise StaleButton("button names an invalid app profile")
    filter_text = _field(payload, "f", str, "")
    if len(filter_text) > MAX_FILTER_CHARS:
        raise StaleButton("button carries an over-long filter")
    return RoomView(room_id, page, bool(order), float(fetched_at), filter_text, profile)
