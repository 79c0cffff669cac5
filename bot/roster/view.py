"""A view of a room (`RoomView`), its page arithmetic and user filtering: pure, no Slack and no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from bot.roster.model import RoomUser
from bot.settings import PROFILE_NAME

__all__ = [
    "MAX_FILTER_CHARS",
    "PAGE_SIZE",
    "RoomView",
    "can_carry_profile",
    "clamp_page",
    "filter_users",
    "page_bounds",
    "page_count",
    "page_slice",
]

T = TypeVar("T")

PAGE_SIZE = 20  # users per page; 20 lines keep the list block far below 3,000 chars and the total text budget
# No ZIM user ID (32 bytes) or name (64–256 bytes) needs a longer needle; the cap keeps button values small.
MAX_FILTER_CHARS = 64


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


@dataclass(frozen=True)
class RoomView:
    """One view of a room: which room (in which ZEGO app), in which order, filtered how, at which page.

    A command asks for page 1 of a view; every button carries the view it draws, so a click can land on any
    replica. `fetched_at` is the snapshot the view was drawn from (epoch seconds; 0 when unknown).
    """

    room_id: str
    page: int = 1
    newest_first: bool = False
    fetched_at: float = 0.0
    filter_text: str = ""
    profile: str = ""

    def at_page(self, page: int) -> RoomView:
        return replace(self, page=page)

    def drawn_from(self, fetched_at: float) -> RoomView:
        return replace(self, fetched_at=fetched_at)

    def flipped(self) -> RoomView:
        """The other order, from its first page."""
        return replace(self, page=1, newest_first=not self.newest_first)
