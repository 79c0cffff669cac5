"""Value objects returned by the ZIM client."""

from __future__ import annotations

from dataclasses import dataclass

from bot.roster.user import RoomUser

__all__ = ["Page"]


@dataclass(frozen=True, slots=True)
class Page:
    """One decoded QueryRoomUserList answer."""

    users: tuple[RoomUser, ...]
    count: int
    next_flag: str | None  # None when ZIM says the list is done
    request_id: str
    being_destroyed: bool = False  # ZIM's 660300008: no users, room in its delayed-destruction window
