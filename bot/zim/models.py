"""Value objects returned by the ZIM client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class RoomUser(NamedTuple):
    user_id: str
    user_name: str


@dataclass(frozen=True, slots=True)
class Page:
    """One decoded QueryRoomUserList answer."""

    users: tuple[RoomUser, ...]
    count: int
    next_flag: str | None  # None when ZIM says the list is done
    request_id: str
    being_destroyed: bool = False  # ZIM's 660300008: no users, room in its delayed-destruction window


@dataclass(frozen=True, slots=True)
class Roster:
    """A complete snapshot of a room's users, in join order (oldest first).

    `reported_count` is ZIM's `Count` (users in the room when the last page was read); it can differ from
    `len(users)` because people join and leave while pages are read. `being_destroyed` is ZIM's
    660300008: the room has no users and is in its delayed-destruction window.
    """

    room_id: str
    users: tuple[RoomUser, ...]
    reported_count: int
    fetched_at: float
    pages: int = 0
    being_destroyed: bool = False
    request_ids: tuple[str, ...] = field(default=(), repr=False)

    def ordered(self, *, newest_first: bool = False) -> tuple[RoomUser, ...]:
        return tuple(reversed(self.users)) if newest_first else self.users
