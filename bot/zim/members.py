"""Sans-IO QueryRoomMembers (zim-api.md §5c): which of up to 10 given users are in a room, in one round trip.

What to send (`validate_user_ids`, `members_query`) and what an answer means (`decode_members`), with no I/O;
`ZimClient.query_members` signs, paces, sends and retries. The answer's two lists:

* `UserList: [{user_id, user_name, avatar, extra}]` (snake_case; avatar and extra may be null): those in;
* `ErrorList: [{UserId, SubCode}]`: those not in, SubCode 660300012 (not in the room) or 660200001 (not
  registered, or logged out).

Code 0 with an empty ErrorList means every asked user is in; a non-empty ErrorList is a normal answer
whatever the Code (ZIM sends Code != 0 when none is in); Code != 0 with an empty ErrorList is an error.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bot.zim import codes
from bot.zim.errors import InvalidUserIds, ZimInvalidRequest, ZimRejected
from bot.zim.signing import encode_query
from bot.zim.wire import BODY_EXCERPT, TransientAnswer, error_for_code, raise_if_unusable_or_busy

MEMBERS_ACTION = "QueryRoomMembers"
MAX_MEMBERS_PER_CALL = 10
MAX_USER_ID_BYTES = 32
USER_ID_KEY = "UserId[]"

# Codes of QueryRoomMembers' ErrorList entries (and of its Code when none is in).
NOT_IN_ROOM = 660300012
NOT_LOGGED_IN = 660200001
TOO_MANY_USERS = 660000011
USER_ID_TOO_LONG = 660000012


class Absence(enum.StrEnum):
    """Why an asked user is not in the room."""

    NOT_IN_ROOM = "not_in_room"  # SubCode 660300012
    NOT_LOGGED_IN = "not_registered_or_logged_out"  # SubCode 660200001
    ROOM_BEING_DESTROYED = "room_being_destroyed"  # Code 660300008: the room has no users
    ROOM_NOT_FOUND = "room_not_found"  # Code 660300001: no such room, so no users (counted like 660300008)
    UNKNOWN = "unknown"  # an unknown SubCode, or the user was in neither list


_ABSENCE_BY_SUB_CODE = {
    NOT_IN_ROOM: Absence.NOT_IN_ROOM,
    codes.USER_NOT_IN_ROOM: Absence.NOT_IN_ROOM,
    NOT_LOGGED_IN: Absence.NOT_LOGGED_IN,
}


@dataclass(frozen=True, slots=True)
class RoomMember:
    """An asked user who is in the room, as ZIM describes them."""

    user_id: str
    user_name: str
    avatar: str | None = None
    extra: str | None = None


@dataclass(frozen=True, slots=True)
class AbsentUser:
    """An asked user who is not in the room, and why (`sub_code` is ZIM's, when it gave one)."""

    user_id: str
    reason: Absence
    sub_code: int | None = None


@dataclass(frozen=True, slots=True)
class RoomMembers:
    """The answer for one room: every asked user is in exactly one of `present` / `absent`, in asked order."""

    room_id: str
    present: tuple[RoomMember, ...]
    absent: tuple[AbsentUser, ...]
    request_id: str
    being_destroyed: bool = False  # ZIM's 660300008: no users, room in its delayed-destruction window
    room_not_found: bool = False  # ZIM's 660300001: there is no such room, so none of the asked users is in it

    @classmethod
    def of_missing_room(cls, room_id: str, user_ids: Iterable[str], request_id: str = "") -> RoomMembers:
        """The answer for a room that does not exist: 0 users, like a room being destroyed (issue 12)."""
        absent = tuple(AbsentUser(user_id, Absence.ROOM_NOT_FOUND) for user_id in user_ids)
        return cls(room_id, (), absent, request_id, room_not_found=True)

    def is_in(self, user_id: str) -> bool:
        return any(member.user_id == user_id for member in self.present)


def _describe(char: str) -> str:
    return f"the character U+{ord(char):04X}"


def user_id_problem(user_id: str) -> str | None:
    """A sentence saying what is wrong with one user ID, or None if it may be sent.

    ZIM documents only the length (at most 32 bytes); control characters cannot be part of a real ID and
    would garble logs and answers, so they are refused too.
    """
    if not user_id:
        return "A user ID is empty."
    for char in user_id:
        if ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0:
            return f"The user ID {user_id!r} contains {_describe(char)}, which a ZIM user ID cannot hold."
    size = len(user_id.encode("utf-8"))
    if size > MAX_USER_ID_BYTES:
        return f"The user ID {user_id[:40]!r} is {size} bytes long; ZIM allows at most {MAX_USER_ID_BYTES}."
    return None


def validate_user_ids(user_ids: Iterable[str]) -> tuple[str, ...]:
    """The IDs to ask about, duplicates dropped (first kept), or InvalidUserIds with one clear sentence."""
    if isinstance(user_ids, str):  # would be asked character by character
        raise TypeError("user_ids must be a collection of user IDs, not one string")
    asked = tuple(dict.fromkeys(user_ids))
    if not asked:
        raise InvalidUserIds("Give at least one user ID to look for.")
    if len(asked) > MAX_MEMBERS_PER_CALL:
        raise InvalidUserIds(f"ZIM checks at most {MAX_MEMBERS_PER_CALL} user IDs at a time; {len(asked)} were given.")
    for user_id in asked:
        problem = user_id_problem(user_id)
        if problem is not None:
            raise InvalidUserIds(problem)
    return asked


def members_query(common: dict[str, str], room_id: str, user_ids: tuple[str, ...]) -> str:
    """The query string: signed common parameters, `RoomId`, then `UserId[]` once per user (all percent-encoded)."""
    arrays = "".join(f"&{quote(USER_ID_KEY, safe='')}={quote(user_id, safe='')}" for user_id in user_ids)
    return f"{encode_query({**common, 'RoomId': room_id})}{arrays}"


def _excerpt(body: bytes) -> str:
    text = body[:BODY_EXCERPT].decode("utf-8", errors="replace").strip()
    return text + ("…" if len(body) > BODY_EXCERPT else "")


def _int(value: Any, *, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def decode_members(status: int, body: bytes, *, room_id: str, asked: tuple[str, ...]) -> RoomMembers:
    """Turn one HTTP answer into RoomMembers for `asked`, or raise TransientAnswer / a ZimRejected subclass."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        description = f"ZIM answered HTTP {status} with a body that is not JSON: {_excerpt(body)!r}"
        if status >= 500 or status in (200, 408, 429):
            raise TransientAnswer(description)
        raise ZimRejected(f"{description}; check ZEGO_API_BASE_URL")
    code = _int(payload.get("Code"), default=-1)
    request_id = str(payload.get("RequestId") or "") or None
    message = str(payload.get("Message") or "")
    ok_status = 200 <= status < 300
    errors = payload.get("ErrorList")
    if errors is not None and not isinstance(errors, list):
        raise TransientAnswer("ZIM answered with an ErrorList that is not a list", request_id=request_id)
    if ok_status and code != -1 and (code == codes.SUCCESS or errors):
        return _members(payload, errors or [], room_id=room_id, asked=asked, request_id=request_id or "")
    if ok_status and code == codes.ROOM_EMPTY:
        absent = tuple(AbsentUser(user_id, Absence.ROOM_BEING_DESTROYED) for user_id in asked)
        return RoomMembers(room_id, (), absent, request_id or "", being_destroyed=True)
    raise_if_unusable_or_busy(code, status, message, request_id)
    if code == TOO_MANY_USERS:
        raise ZimInvalidRequest(
            f"ZIM refused to check more than {MAX_MEMBERS_PER_CALL} users at once (code {code}).",
            code=code,
            request_id=request_id,
        )
    if code == USER_ID_TOO_LONG:
        raise ZimInvalidRequest(
            f"ZIM refused a user ID longer than {MAX_USER_ID_BYTES} bytes (code {code}).",
            code=code,
            request_id=request_id,
        )
    raise error_for_code(code, message, request_id)


def _members(
    payload: dict[str, Any], errors: list[Any], *, room_id: str, asked: tuple[str, ...], request_id: str
) -> RoomMembers:
    raw_users = payload.get("UserList") or []
    if not isinstance(raw_users, list):
        raise TransientAnswer("ZIM answered with a UserList that is not a list", request_id=request_id)
    wanted = set(asked)
    found: dict[str, RoomMember] = {}
    for item in raw_users:
        if not isinstance(item, dict):
            continue
        user_id = str(item.get("user_id") or "")
        if user_id in wanted and user_id not in found:  # anything else was not asked about: ignored
            found[user_id] = RoomMember(
                user_id,
                str(item.get("user_name") or ""),
                avatar=_optional_text(item.get("avatar")),
                extra=_optional_text(item.get("extra")),
            )
    missing: dict[str, AbsentUser] = {}
    for item in errors:
        if not isinstance(item, dict):
            continue
        user_id = str(item.get("UserId") or "")
        if user_id in wanted and user_id not in found and user_id not in missing:
            sub_code = _int(item.get("SubCode"), default=-1)
            reason = _ABSENCE_BY_SUB_CODE.get(sub_code, Absence.UNKNOWN)
            missing[user_id] = AbsentUser(user_id, reason, sub_code if sub_code != -1 else None)
    present: list[RoomMember] = []
    absent: list[AbsentUser] = []
    for user_id in asked:
        if user_id in found:
            present.append(found[user_id])
        elif user_id in missing:
            absent.append(missing[user_id])
        elif not errors:
            # Code 0 with an empty ErrorList: ZIM says every asked user is in, even one it sent no entry for.
            present.append(RoomMember(user_id, ""))
        else:
            absent.append(AbsentUser(user_id, Absence.UNKNOWN))
    return RoomMembers(room_id, tuple(present), tuple(absent), request_id)
