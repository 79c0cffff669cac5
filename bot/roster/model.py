"""A room's roster: its users in join order, packed, with what ZIM reported while it was read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.roster.packed import PackedUsers, ReversedUsers
from bot.roster.user import RoomUser

__all__ = ["RoomUser", "Roster"]


@dataclass(frozen=True, slots=True)
class Roster:
    """A complete snapshot of a room's users, in join order (oldest first).

    `reported_count` is ZIM's `Count` (users in the room when the last page was read); it can differ from
    `len(users)` because people join and leave while pages are read. `being_destroyed` is ZIM's
    660300008: the room has no users and is in its delayed-destruction window.
    """

    room_id: str
    users: Sequence[RoomUser]  # stored packed (see packed.py), whatever sequence is passed in
    reported_count: int
    fetched_at: float
    pages: int = 0
    being_destroyed: bool = False
    request_ids: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.users, PackedUsers):
            object.__setattr__(self, "users", PackedUsers(self.users))

    def ordered(self, *, newest_first: bool = False) -> Sequence[RoomUser]:
        return ReversedUsers(self.users) if newest_first else self.users
