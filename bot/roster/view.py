"""Page arithmetic, user filtering and the state carried by Prev/Next buttons.

A click can land on any replica, so a button's `value` carries everything needed to draw the target page:
room, page, order, the snapshot time it was drawn from, the filter and the app profile. The encoding is
versioned JSON; anything else (older app versions, foreign or forged values) is refused with StaleButton.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from bot.roster.model import RoomUser
from bot.slack.parsing import MAX_FILTER_CHARS, PROFILE_NAME
from bot.slack.render.escaping import slack_length
from bot.zim.room_id import room_id_problem

__all__ = [
    "LAST_EPOCH",
    "MAX_BUTTON_VALUE",
    "PAGE_REF_VERSION",
    "PAGE_SIZE",
    "PageRef",
    "StaleButton",
    "can_carry_profile",
    "clamp_page",
    "decode_page_ref",
    "encode_page_ref",
    "filter_users",
    "page_bounds",
    "page_count",
    "page_slice",
]

T = TypeVar("T")

PAGE_SIZE = 20  # users per page; 20 lines keep the list block far below 3,000 chars and the total text budget
MAX_BUTTON_VALUE = 2000  # Slack's limit for a button's value
PAGE_REF_VERSION = 1
LAST_EPOCH = 253_402_300_799  # 9999-12-31T23:59:59Z; later (or non-finite) snapshot times are treated as unknown
_KEYS = frozenset({"v", "r", "p", "o", "t", "f", "a"})
# `<`, `>` and `&` are escaped inside the JSON so a value never holds text Slack could read as markup.
_JSON_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def page_count(total_users: int, page_size: int = PAGE_SIZE) -> int:
    """Number of pages; at least 1 so an empty room still has a page to show."""
    return max(1, -(-total_users // page_size))


def clamp_page(page: int, total_users: int, page_size: int = PAGE_SIZE) -> int:
    """Bring a requested page into range (a stale button may point past a roster that shrank)."""
    return min(max(page, 1), page_count(total_users, page_size))


def page_bounds(page: int, total_users: int, page_size: int = PAGE_SIZE) -> tuple[int, int]:
    """1-based first and last positions shown on `page` (first > last when the page is empty)."""
    first = (page - 1) * page_size + 1
    return first, min(page * page_size, total_users)


def page_slice(users: Sequence[T], page: int, page_size: int = PAGE_SIZE) -> Sequence[T]:
    """The users on 1-based `page`; empty when the page is out of range."""
    if page < 1:
        return users[:0]
    start = (page - 1) * page_size
    return users[start : start + page_size]


def filter_users(users: Iterable[RoomUser], filter_text: str) -> tuple[RoomUser, ...]:
    """Users whose ID or name contains `filter_text`, ignoring case (casefold); all users for a blank filter."""
    needle = filter_text.strip().casefold()
    if not needle:
        return tuple(users)
    return tuple(user for user in users if needle in user.user_id.casefold() or needle in user.user_name.casefold())


def can_carry_profile(profile: str) -> bool:
    """Whether a button can carry this app profile ("" is the default app)."""
    return not profile or PROFILE_NAME.fullmatch(profile) is not None


class StaleButton(Exception):
    """A button value this app version cannot trust or understand; the user should run the command again."""


@dataclass(frozen=True)
class PageRef:
    """Everything a paging click needs to draw its page on any replica."""

    room_id: str
    page: int
    newest_first: bool = False
    fetched_at: float = 0.0  # epoch seconds of the snapshot the button was drawn from; 0 when unknown
    filter_text: str = ""
    profile: str = ""


def _dump(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in _JSON_UNSAFE.items():
        text = text.replace(char, escaped)
    return text


def encode_page_ref(ref: PageRef) -> str:
    """Compact versioned JSON, at most MAX_BUTTON_VALUE chars; a long filter is shortened to fit.

    Raises ValueError for a ref decode_page_ref would refuse (invalid room ID, page or profile name), so a
    button can never carry state that fails later, on a click.
    """
    if room_id_problem(ref.room_id) is not None or ref.page < 1 or not can_carry_profile(ref.profile):
        raise ValueError("this page reference cannot be put in a button")
    payload: dict[str, Any] = {"v": PAGE_REF_VERSION, "r": ref.room_id, "p": ref.page}
    if ref.newest_first:
        payload["o"] = 1
    if math.isfinite(ref.fetched_at) and 1 <= ref.fetched_at <= LAST_EPOCH:
        payload["t"] = int(ref.fetched_at)
    if ref.profile:
        payload["a"] = ref.profile
    value = _dump(payload)  # at most ~250 chars: room IDs and profiles are short
    filter_text = _LONE_SURROGATE.sub("\ufffd", ref.filter_text[:MAX_FILTER_CHARS])
    if not filter_text:
        return value

    def with_filter(length: int) -> str:
        return _dump({**payload, "f": filter_text[:length]})

    if slack_length(full := with_filter(len(filter_text))) <= MAX_BUTTON_VALUE:
        return full
    fits, too_long = 0, len(filter_text)  # binary search for the longest prefix that fits
    while too_long - fits > 1:
        middle = (fits + too_long) // 2
        if slack_length(with_filter(middle)) <= MAX_BUTTON_VALUE:
            fits = middle
        else:
            too_long = middle
    return with_filter(fits) if fits else value


def _field(payload: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = payload.get(key, default)
    if type(value) is not kind:  # exact type: rejects True for an int and 1 for a bool-like flag
        raise StaleButton(f"button field {key!r} has the wrong type")
    return value


def decode_page_ref(value: str) -> PageRef:
    """Parse a button value made by encode_page_ref; raise StaleButton for anything else."""
    if not isinstance(value, str) or slack_length(value) > MAX_BUTTON_VALUE:
        raise StaleButton("button value is not a page reference")
    try:
        payload = json.loads(value)
    except (ValueError, RecursionError) as error:
        raise StaleButton("button value is not JSON") from error
    if not isinstance(payload, dict) or not set(payload) <= _KEYS or payload.get("v") != PAGE_REF_VERSION:
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
    return PageRef(room_id, page, bool(order), float(fetched_at), filter_text, profile)
