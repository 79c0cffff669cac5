"""One user of a room, as ZIM lists it."""

from __future__ import annotations

from typing import NamedTuple


class RoomUser(NamedTuple):
    user_id: str
    user_name: str
