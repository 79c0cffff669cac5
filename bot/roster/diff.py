"""What changed in a room between two complete reads: who joined and who left, by user ID.

A user is the same user when the ID is the same; a new name on the same ID is a rename, not a leave and a join.
Joined users come in the new read's join order, left users in the old read's, each ID once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.roster.model import RoomUser, Roster
from bot.roster.packed import PackedUsers


@dataclass(frozen=True, slots=True)
class RosterDiff:
    """`joined`: in the new read, not the old one; `left`: in the old one, not the new one."""

    joined: Sequence[RoomUser]
    left: Sequence[RoomUser]
    renamed: int = 0  # users in both reads whose name changed

    @property
    def unchanged(self) -> bool:
        return not self.joined and not self.left


def diff_users(old: Sequence[RoomUser], new: Sequence[RoomUser]) -> RosterDiff:
    """Set differences by user ID (a duplicate ID in one read counts once, at its first place)."""
    old_names: dict[str, str] = {}
    for user in old:
        old_names.setdefault(user.user_id, user.user_name)
    new_ids: set[str] = set()
    joined: list[RoomUser] = []
    renamed = 0
    for user in new:
        if user.user_id in new_ids:
            continue
        new_ids.add(user.user_id)
        name = old_names.get(user.user_id)
        if name is None:
            joined.append(user)
        elif name != user.user_name:
            renamed += 1
    left: list[RoomUser] = []
    seen_left: set[str] = set()
    for user in old:
        if user.user_id not in new_ids and user.user_id not in seen_left:
            seen_left.add(user.user_id)
            left.append(user)
    return RosterDiff(tuple(joined), tuple(left), renamed)


def diff_rosters(old: Roster, new: Roster) -> RosterDiff:
    """The changes from `old` to `new`; both must be complete, since a partial list would invent leavers."""
    if not (old.complete and new.complete):
        raise ValueError("only two complete reads can be compared")
    return diff_users(old.users, new.users)


@dataclass(frozen=True, slots=True)
class KeptChanges:
    """A list of changes as its pages show it: who joined and left between the read of `since` and the read of
    `read_at`, and how many users the room had at the second. Kept for Prev/Next when it has several pages."""

    joined: Sequence[RoomUser]
    left: Sequence[RoomUser]
    since: float
    read_at: float
    users_now: int | None  # None: not known (a page of a list kept by an older version)
    renamed: int = 0

    @property
    def unchanged(self) -> bool:
        return not self.joined and not self.left


def changes_between(old: Roster, new: Roster) -> KeptChanges:
    """`diff_rosters`, with both lists already packed: one job for the CPU worker, so nothing big is packed on the
    event loop afterwards."""
    diff = diff_rosters(old, new)
    return KeptChanges(
        PackedUsers(diff.joined), PackedUsers(diff.left), old.fetched_at, new.fetched_at, len(new.users), diff.renamed
    )
