"""Local validation of ZIM room IDs, so a bad ID is refused before any network call."""

from __future__ import annotations

import string

from bot.zim.errors import InvalidRoomId

MAX_ROOM_ID_BYTES = 32
# The character set documented for QueryRoomUserList's RoomId: ASCII letters, digits and these symbols.
ROOM_ID_SYMBOLS = "!#$%&()+-:;<=.>?@[]^_{}|~"
ROOM_ID_ALPHABET = frozenset(string.ascii_letters + string.digits + ROOM_ID_SYMBOLS)


_NAMED = {
    " ": "a space",
    "'": "an apostrophe (U+0027)",
    '"': "a double quote (U+0022)",
    "`": "a backtick (U+0060)",
}


def _describe(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    if char.isprintable():
        return f"\u201c{char}\u201d (U+{ord(char):04X})"
    return f"the invisible character U+{ord(char):04X}"


def room_id_problem(room_id: str) -> str | None:
    """Return a sentence saying what is wrong with `room_id`, or None when ZIM would accept it."""
    if not room_id:
        return "The room ID is empty."
    for char in room_id:
        if char not in ROOM_ID_ALPHABET:
            return (
                f"The room ID contains {_describe(char)}, which ZIM does not allow; room IDs use letters, "
                f"digits and {ROOM_ID_SYMBOLS}"
            )
    size = len(room_id.encode("utf-8"))
    if size > MAX_ROOM_ID_BYTES:
        return f"The room ID is {size} bytes long; ZIM allows at most {MAX_ROOM_ID_BYTES}."
    return None


def validate_room_id(room_id: str) -> str:
    """Return `room_id` unchanged if valid, else raise InvalidRoomId with a specific sentence."""
    problem = room_id_problem(room_id)
    if problem is not None:
        raise InvalidRoomId(problem, room_id=room_id)
    return room_id
