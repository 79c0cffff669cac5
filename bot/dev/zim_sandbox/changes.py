"""Changes to a room between pages, applied at a page the sandbox answers, not at a moment in time.

A `ScheduledChange(room_id, after_mode, after_page, ops)` waits until the sandbox has answered the
`after_page`-th successful page of `after_mode` for that room (a request from the start of the list counts
as page 1 again); right after building that reply, before any later request is handled, its ops are
applied in order. The page just built is unaffected; every later request sees the changed room. Tests
therefore say *where* in a read a change lands, with no sleeps (zim-api.md §5b describes how it moves).

Ops (JSON objects, as the control API takes them):
  {"op": "leave", "user_id": "u000001"} | {"op": "leave", "index": 0}     index in login order, -1 = newest
  {"op": "join", "user_id": "x1", "user_name": "X"} | {"op": "join", "count": 40}    generated users
  {"op": "reconnect", "user_id": "u000001"} | {"op": "reconnect", "index": 0}        to the newest end
  {"op": "destroy", "state": "destroying" | "gone"}                                   660300008 / 660300001
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast

from bot.dev.zim_sandbox.rooms import SandboxRoom

OpKind = Literal["leave", "join", "reconnect", "destroy"]
OP_KINDS: tuple[OpKind, ...] = ("leave", "join", "reconnect", "destroy")
MAX_JOIN_COUNT = 100_000
_joined = itertools.count(1)


@dataclass(frozen=True, slots=True)
class ChangeOp:
    op: OpKind
    user_id: str | None = None
    user_name: str = ""
    index: int | None = None
    count: int = 1
    state: Literal["destroying", "gone"] = "destroying"

    @classmethod
    def from_json(cls, data: object) -> ChangeOp:
        """Raises ValueError for anything but a well-formed op."""
        if not isinstance(data, Mapping):
            raise ValueError("an op must be a JSON object")
        allowed = {"op", "user_id", "user_name", "index", "count", "state"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"unknown op field(s): {', '.join(unknown)}")
        op = data.get("op")
        if op not in OP_KINDS:
            raise ValueError(f"op must be one of {', '.join(OP_KINDS)}")
        user_id, index = data.get("user_id"), data.get("index")
        if user_id is not None and (not isinstance(user_id, str) or not user_id):
            raise ValueError("user_id must be a non-empty string")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
            raise ValueError("index must be an integer")
        name = data.get("user_name", "")
        if not isinstance(name, str):
            raise ValueError("user_name must be a string")
        count = data.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_JOIN_COUNT:
            raise ValueError(f"count must be an integer from 1 to {MAX_JOIN_COUNT}")
        state = data.get("state", "destroying")
        if state not in ("destroying", "gone"):
            raise ValueError("state must be destroying or gone")
        if op in ("leave", "reconnect") and (user_id is None) == (index is None):
            raise ValueError(f"{op} needs exactly one of user_id and index")
        if op == "join" and index is not None:
            raise ValueError("join takes user_id (and user_name) or count, not index")
        return cls(
            op=cast(OpKind, op),
            user_id=user_id,
            user_name=name,
            index=index,
            count=count,
            state=cast(Literal["destroying", "gone"], state),
        )

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"op": self.op}
        if self.op == "destroy":
            data["state"] = self.state
        elif self.user_id is not None:
            data["user_id"] = self.user_id
            if self.op == "join":
                data["user_name"] = self.user_name
        elif self.index is not None:
            data["index"] = self.index
        else:
            data["count"] = self.count
        return data

    def check(self, room: SandboxRoom) -> None:
        """Raises ValueError if the op names a user or index the room does not have now."""
        if self.op in ("leave", "reconnect"):
            if self.index is not None and not -len(room) <= self.index < len(room):
                raise ValueError(f"index {self.index} is outside the room ({len(room)} users)")
            if self.user_id is not None and all(uid != self.user_id for uid, _ in room.users):
                raise ValueError(f"{self.user_id!r} is not in the room")
        elif self.op == "join" and self.user_id is not None and any(uid == self.user_id for uid, _ in room.users):
            raise ValueError(f"{self.user_id!r} is already in the room")

    def apply(self, room: SandboxRoom) -> list[str]:
        """Change the room; the IDs affected (none when the user is no longer there)."""
        if self.op == "destroy":
            room.destroy(self.state)
            return []
        if self.op == "join":
            if self.user_id is not None:
                return [self.user_id] if room.join(self.user_id, self.user_name) else []
            joined: list[str] = []
            for _ in range(self.count):
                user_id = f"joined-{next(_joined)}"
                if room.join(user_id, f"Joiner {user_id[7:]}"):
                    joined.append(user_id)
            return joined
        target: str | int = self.user_id if self.user_id is not None else cast(int, self.index)
        done = room.leave(target) if self.op == "leave" else room.reconnect(target)
        return [] if done is None else [done]


@dataclass(slots=True)
class ScheduledChange:
    room_id: str
    after_mode: int | None  # None: applied at once
    after_page: int
    ops: tuple[ChangeOp, ...]

    def to_json(self) -> dict[str, object]:
        after: object = "now" if self.after_mode is None else {"mode": self.after_mode, "page": self.after_page}
        return {"after": after, "ops": [op.to_json() for op in self.ops]}


def parse_after(value: object) -> tuple[int, int] | None:
    """`"now"` → None; `{"mode": 0|1, "page": k ≥ 0}` → (mode, page). Raises ValueError otherwise."""
    if value == "now":
        return None
    if not isinstance(value, dict) or set(value) != {"mode", "page"}:
        raise ValueError('after must be "now" or {"mode": 0|1, "page": k}')
    mode, page = value["mode"], value["page"]
    if mode not in (0, 1) or isinstance(mode, bool):
        raise ValueError("after.mode must be 0 or 1")
    if isinstance(page, bool) or not isinstance(page, int) or page < 0:
        raise ValueError("after.page must be an integer >= 0")
    return mode, page
