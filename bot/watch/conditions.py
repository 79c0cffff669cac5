"""What a watch waits for, and the rules for writing one: `--when-empty`, `--when-below N`, `--when-above N`,
`--when-leaves USER_ID`, `--when-joins USER_ID`.

Pure: parsing refuses bad input with one sentence (before any network call), and `is_true` decides from a
count and the set of asked users found in the room.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from bot.zim.members import user_id_problem

Kind = Literal["empty", "below", "above", "leaves", "joins"]
OPTION_KINDS: dict[str, Kind] = {
    "--when-empty": "empty",
    "--when-below": "below",
    "--when-above": "above",
    "--when-leaves": "leaves",
    "--when-joins": "joins",
}
TAKES_VALUE = frozenset({"below", "above", "leaves", "joins"})
MAX_COUNT = 10_000_000  # far beyond any room; keeps the number readable in every message
_WHOLE_NUMBER = re.compile(r"[0-9]+")


class ConditionProblem(ValueError):
    """A condition that cannot be watched; the message is one plain sentence (the caller escapes it)."""


@dataclass(frozen=True, slots=True)
class Condition:
    kind: Kind
    number: int = 0  # below / above
    user_id: str = ""  # leaves / joins

    @property
    def needs_members(self) -> bool:
        """True when the condition is about one user (QueryRoomMembers), False for the room's count."""
        return self.kind in ("leaves", "joins")

    def is_true(self, count: int, present: Collection[str]) -> bool:
        """`count`: users in the room now (0 for a room that does not exist or is being destroyed);
        `present`: the asked user IDs that are in it."""
        if self.kind == "empty":
            return count == 0
        if self.kind == "below":
            return count < self.number
        if self.kind == "above":
            return count > self.number
        if self.kind == "leaves":
            return self.user_id not in present
        return self.user_id in present

    def describe(self) -> str:
        """Plain text (the caller escapes it): "the room is empty", "USER joins", ..."""
        if self.kind == "empty":
            return "the room is empty"
        if self.kind == "below":
            return f"fewer than {self.number:,} {_users(self.number)} in the room"
        if self.kind == "above":
            return f"more than {self.number:,} {_users(self.number)} in the room"
        if self.kind == "leaves":
            return f"{self.user_id} is not in the room"
        return f"{self.user_id} is in the room"

    def option(self) -> str:
        """The option that sets it again: `--when-below 5`."""
        flag = next(name for name, kind in OPTION_KINDS.items() if kind == self.kind)
        if self.kind in ("below", "above"):
            return f"{flag} {self.number}"
        if self.needs_members:
            return f"{flag} {self.user_id}"
        return flag

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "number": self.number, "user_id": self.user_id}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Condition:
        kinds: dict[str, Kind] = {kind: kind for kind in OPTION_KINDS.values()}
        kind = kinds.get(str(data["kind"]))
        if kind is None:
            raise ValueError(f"unknown condition kind {data['kind']!r}")
        return cls(kind, int(str(data.get("number", 0))), str(data.get("user_id", "")))


def parse_condition(option: str, value: str | None) -> Condition:
    """The condition an option (`--when-below`) and its value (`"5"`, or None for `--when-empty`) describe."""
    kind = OPTION_KINDS.get(option)
    if kind is None:
        raise ConditionProblem(f"{option} is not a watch condition.")
    if kind not in TAKES_VALUE:
        if value is not None:
            raise ConditionProblem(f"{option} takes no value.")
        return Condition(kind)
    if value is None or not value:
        example = "5" if kind in ("below", "above") else "host-1"
        raise ConditionProblem(f"{option} needs a value, e.g. {option} {example}.")
    if kind in ("below", "above"):
        if not _WHOLE_NUMBER.fullmatch(value):
            raise ConditionProblem(f"{option} needs a whole number of users (0 or more), not {value[:20]}.")
        number = int(value)
        if number > MAX_COUNT:
            raise ConditionProblem(f"{option} takes at most {MAX_COUNT:,} users.")
        return Condition(kind, number=number)
    problem = user_id_problem(value)
    if problem is not None:
        raise ConditionProblem(problem)
    return Condition(kind, user_id=value)


def _users(number: int) -> str:
    return "user is" if number == 1 else "users are"
