"""A view of a room (`RoomView`), its page arithmetic and user filtering: pure, no Slack and no I/O."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from bot.roster.model import RoomUser
from bot.settings import PROFILE_NAME

__all__ = [
    "FILTER_TOO_LONG",
    "MAX_FILTER_CHARS",
    "PAGE_SIZE",
    "RoomView",
    "can_carry_profile",
    "clamp_page",
    "filter_users",
    "match_key",
    "page_bounds",
    "page_count",
    "page_slice",
]

T = TypeVar("T")

PAGE_SIZE = 20  # users per page; 20 lines keep the list block far below 3,000 chars and the total text budget
# ZIM user names are at most 256 bytes and user IDs at most 32 bytes; a UTF-8 byte is at least one character,
# so no name has more than 256 characters and a longer filter can match nothing.
MAX_FILTER_CHARS = 256
FILTER_TOO_LONG = (
    "The filter is {length:,} characters long; it can match nothing, since a ZIM user name has at most "
    "256 bytes (so at most 256 characters) and a user ID at most 32."
)

_QUOTES = str.maketrans(
    {
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u02bc\u02bb\u0060\u00b4\uff07", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb\uff02", '"'),
    }
)
# Letters NFD does not decompose but readers treat as an accented base letter (after casefold, so lower case).
_LETTERS = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ı": "i", "ŧ": "t", "æ": "ae", "œ": "oe"})
_REMOVED_CATEGORIES = frozenset({"Cc", "Cf"})
# Base letters whose combining marks are "accents": Latin, IPA, Greek, Cyrillic (+ supplement), Latin
# Extended Additional and Greek Extended. Marks after anything else are part of the letter and are kept.
_ACCENTED_BASES = re.compile(r"[\u0041-\u052f\u1e00-\u1fff]")


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


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    out: list[str] = []
    strip = False  # whether the marks that follow belong to a Latin/Greek/Cyrillic letter
    for char in decomposed:
        if unicodedata.combining(char):
            if not strip:
                out.append(char)
            continue
        strip = _ACCENTED_BASES.match(char) is not None
        out.append(char)
    return unicodedata.normalize("NFC", "".join(out))


def match_key(text: str) -> str:
    """The form a filter and a user's ID or name are compared in, the way people read names.

    1. NFKC (ｊｏｓｅ → jose, ﬁ → fi); 2. control and format characters removed (zero-width, soft hyphen,
    bidi); 3. curly and other quotes unified (’ → ', “ → "); 4. accents removed from Latin, Greek and
    Cyrillic letters (plus ł ø đ ħ ı ŧ æ œ), marks of other scripts kept (が is not か); 5. casefold.
    """
    if text.isascii() and text.isprintable():  # fast path: most IDs and many names
        return text.lower().replace("`", "'")
    text = unicodedata.normalize("NFKC", text)
    text = "".join(char for char in text if unicodedata.category(char) not in _REMOVED_CATEGORIES)
    text = text.translate(_QUOTES)
    text = _strip_accents(text)
    text = text.casefold().translate(_LETTERS)
    # casefold and the letter table can produce text that NFKC or accent removal would change again
    return unicodedata.normalize("NFKC", text)


def filter_users(users: Iterable[RoomUser], filter_text: str) -> tuple[RoomUser, ...]:
    """Users whose ID or name contains `filter_text`, both compared by match_key; every user for a blank filter.

    A filter that is blank once normalised (only zero-width characters, say) shows everyone, as no filter does.
    """
    needle = " ".join(match_key(filter_text).split())
    users = tuple(users)
    if not needle:
        return users
    return tuple(user for user in users if needle in match_key(user.user_id) or needle in match_key(user.user_name))


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
