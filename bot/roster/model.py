"""A room's roster: its users in join order, packed, with what ZIM reported while it was read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from bot.roster.packed import PackedUsers, ReversedUsers
from bot.roster.user import RoomUser

__all__ = ["IncompleteReason", "RoomUser", "Roster"]

# Why a roster is not the whole room: it changed while it was read, it was destroyed part-way, or ZIM's
# cursors stalled on both paging chains.
IncompleteReason = Literal["changed", "destroyed", "cursor_repeated", "cursor_endless", "deadline"]


@dataclass(frozen=True, slots=True)
class Roster:
    """A snapshot of a room's users, in join order (oldest first), and whether it is the whole room.

    `reported_count` is ZIM's final `Count` (users in the room when the last page was read). `complete` is
    True only when the users read equal that Count and the read saw no sign of change (bot/zim/paging.py);
    otherwise `problem` is the sentence every surface shows ("the room changed while it was read: 9,960 of
    10,000 users") and `incomplete_reason` says which kind. `being_destroyed` is ZIM's 660300008: on the
    first page an empty room in its delayed-destruction window (complete), part-way a read cut short.
    """

    room_id: str
    users: Sequence[RoomUser]  # stored packed (see packed.py), whatever sequence is passed in
    reported_count: int
    fetched_at: float
    pages: int = 0
    being_destroyed: bool = False
    request_ids: tuple[str, ...] = field(default=(), repr=False)
    complete: bool = True
    problem: str = ""  # the sentence when incomplete; "" when complete
    incomplete_reason: IncompleteReason | None = None

    def __post_init__(self) -> None:
        if self.complete != (self.problem == "") or self.complete != (self.incomplete_reason is None):
            raise ValueError("an incomplete roster needs a problem and a reason; a complete one has neither")
        if not isinstance(self.users, PackedUsers):
            object.__setattr__(self, "users", PackedUsers(self.users))

    @property
    def shortfall(self) -> int:
        """Users missing against ZIM's Count (0 when as many or more were read)."""
        return max(0, self.reported_count - len(self.users))

    def ordered(self, *, newest_first: bool = False) -> Sequence[RoomUser]:
        return ReversedUsers(self.users) if newest_first else self.users
