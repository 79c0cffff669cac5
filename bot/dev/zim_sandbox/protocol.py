"""Request validation as the ZIM gateway, QueryRoomUserList and QueryRoomMembers perform it, as pure functions.

The order of the checks decides which Code a request with several problems gets, so it lives here in one
place: common parameters first (Action, AppId, nonce, Timestamp, SignatureVersion, Signature), then, after
the sandbox's QPS checks, the business parameters (RoomId, Mode, Limit, NextFlag; or RoomId, UserId[]).
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from multidict import MultiMapping

from bot.dev.zim_sandbox.cursor import CursorCodec
from bot.zim.codes import SIGNATURE_EXPIRED, SIGNATURE_INVALID
from bot.zim.room_id import room_id_problem
from bot.zim.signing import SIGNATURE_VERSION, signature

ACTION = "QueryRoomUserList"
MEMBERS_ACTION = "QueryRoomMembers"
ACTIONS = frozenset({ACTION, MEMBERS_ACTION})
ACTION_EMPTY = 100000006
ACTION_UNSUPPORTED = 100000007
APP_ID_INVALID = 100000001
APP_ID_UNKNOWN = 100000010
NONCE_EMPTY = 100000008
TIMESTAMP_EMPTY = 100000002
TIMESTAMP_NOT_INT = 100000003
SIGNATURE_VERSION_EMPTY = 100000013
SIGNATURE_VERSION_UNSUPPORTED = 100000014
SIGNATURE_EMPTY = 100000009
INVALID_PARAMETER = 660000002
TOO_MANY_USERS = 660000011
USER_ID_TOO_LONG = 660000012
MAX_MEMBERS = 10
MAX_USER_ID_BYTES = 32
USER_ID_KEY = "UserId[]"

TIMESTAMP_SKEW_S = 600
MAX_LIMIT = 500
UINT32_MAX = 2**32 - 1
# [0-9], not \d: \d also matches non-ASCII digits, which int() would happily accept.
_UINT = re.compile(r"[0-9]{1,10}")
_INT = re.compile(r"-?[0-9]{1,19}")  # int64
_DIGITS = re.compile(r"[0-9]+")
_START_FLAGS = frozenset({"", "0"})  # both documented as "first page"


@dataclass(frozen=True, slots=True)
class Rejection:
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class SignedRequest:
    nonce: str


@dataclass(frozen=True, slots=True)
class ListParams:
    room_id: str
    mode: int
    limit: int
    offset: int
    next_flag: str

    @property
    def from_start(self) -> bool:
        return self.next_flag in _START_FLAGS


@dataclass(frozen=True, slots=True)
class MembersParams:
    room_id: str
    user_ids: tuple[str, ...]


def check_signed(
    query: MultiMapping[str], *, app_id: int, secret: str, now: float, actions: frozenset[str] = frozenset({ACTION})
) -> Rejection | SignedRequest:
    """The gateway's common-parameter checks, in the order that decides the Code."""
    action = query.get("Action", "")
    if not action:
        return Rejection(ACTION_EMPTY, "Action is empty")
    if action not in actions:
        return Rejection(ACTION_UNSUPPORTED, f"Action {action} is not supported")
    raw_app_id = query.get("AppId", "")
    if not _UINT.fullmatch(raw_app_id) or int(raw_app_id) > UINT32_MAX:
        return Rejection(APP_ID_INVALID, "AppId is invalid")
    if int(raw_app_id) != app_id:
        return Rejection(APP_ID_UNKNOWN, "failed to get ServerSecret for this AppId")
    nonce = query.get("SignatureNonce", "")
    if not nonce:
        return Rejection(NONCE_EMPTY, "SignatureNonce is empty")
    timestamp = _check_timestamp(query.get("Timestamp", ""), now)
    if isinstance(timestamp, Rejection):
        return timestamp
    version = query.get("SignatureVersion", "")
    if not version:
        return Rejection(SIGNATURE_VERSION_EMPTY, "SignatureVersion is empty")
    if version != SIGNATURE_VERSION:
        return Rejection(SIGNATURE_VERSION_UNSUPPORTED, f"SignatureVersion must be {SIGNATURE_VERSION}")
    sent = query.get("Signature", "")
    if not sent:
        return Rejection(SIGNATURE_EMPTY, "Signature is empty")
    expected = signature(app_id, nonce, secret, timestamp)
    # Compare bytes: compare_digest refuses non-ASCII str, and a client may send anything.
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        return Rejection(SIGNATURE_INVALID, "invalid signature")
    return SignedRequest(nonce=nonce)


def _check_timestamp(raw: str, now: float) -> int | Rejection:
    if not raw:
        return Rejection(TIMESTAMP_EMPTY, "Timestamp is empty")
    if not _INT.fullmatch(raw):
        return Rejection(TIMESTAMP_NOT_INT, "Timestamp is not an integer")
    timestamp = int(raw)
    if abs(timestamp - now) > TIMESTAMP_SKEW_S:
        return Rejection(SIGNATURE_EXPIRED, "signature expired")
    return timestamp


def parse_list_params(query: MultiMapping[str], cursors: CursorCodec) -> Rejection | ListParams:
    """QueryRoomUserList's parameters; any problem is 660000002, as the API documents."""
    room_id = _single(query, "RoomId")
    if "RoomId[]" in query or room_id is None or room_id_problem(room_id) is not None:
        return Rejection(INVALID_PARAMETER, "invalid parameter: RoomId")
    mode_text = _single(query, "Mode", default="0") or "0"
    if mode_text not in ("0", "1"):
        return Rejection(INVALID_PARAMETER, "invalid parameter: Mode must be 0 or 1")
    limit = _parse_limit(_single(query, "Limit", default=""))
    if limit is None:
        return Rejection(INVALID_PARAMETER, "invalid parameter: Limit")
    mode = int(mode_text)
    next_flag = _single(query, "NextFlag", default="")
    if next_flag is None:
        return Rejection(INVALID_PARAMETER, "invalid parameter: NextFlag")
    offset = 0
    if next_flag not in _START_FLAGS:
        cursor = cursors.decode(next_flag)
        if cursor is None or cursor.room_id != room_id or cursor.mode != mode:
            return Rejection(INVALID_PARAMETER, "invalid parameter: NextFlag")
        offset = cursor.offset
    return ListParams(room_id=room_id, mode=mode, limit=limit, offset=offset, next_flag=next_flag)


def parse_members_params(query: MultiMapping[str]) -> Rejection | MembersParams:
    """QueryRoomMembers' parameters (zim-api.md §5c). Where the docs are silent the harsher reading is taken,
    so a client that passes here relies on nothing undocumented:

    * only the documented array form `UserId[]` is accepted; a bare `UserId` is 660000002;
    * a repeated user ID is 660000002 (ZIM does not say it merges them);
    * more than 10 IDs is 660000011, before any ID is looked at; an empty ID is 660000002 and one over
      32 bytes 660000012 (the codes ZIM's table gives for those).
    """
    room_id = _single(query, "RoomId")
    if "RoomId[]" in query or room_id is None or room_id_problem(room_id) is not None:
        return Rejection(INVALID_PARAMETER, "invalid parameter: RoomId")
    if "UserId" in query:
        return Rejection(INVALID_PARAMETER, "invalid parameter: UserId must be sent as UserId[]")
    user_ids = tuple(query.getall(USER_ID_KEY, []))
    if not user_ids:
        return Rejection(INVALID_PARAMETER, "invalid parameter: UserId[] is missing")
    if len(user_ids) > MAX_MEMBERS:
        return Rejection(TOO_MANY_USERS, f"too many users in input (at most {MAX_MEMBERS})")
    if any(not user_id for user_id in user_ids):
        return Rejection(INVALID_PARAMETER, "invalid parameter: UserId[] is empty")
    if any(len(user_id.encode("utf-8")) > MAX_USER_ID_BYTES for user_id in user_ids):
        return Rejection(USER_ID_TOO_LONG, f"UserId is longer than {MAX_USER_ID_BYTES} bytes")
    if len(set(user_ids)) != len(user_ids):
        return Rejection(INVALID_PARAMETER, "invalid parameter: UserId[] repeats a user")
    return MembersParams(room_id=room_id, user_ids=user_ids)


def members_room_key(query: MultiMapping[str]) -> str | None:
    """The room whose QueryRoomMembers window a request counts in: its RoomId if it names exactly one."""
    values = query.getall("RoomId", [])
    return values[0] if len(values) == 1 and values[0] else None


def _single(query: MultiMapping[str], key: str, default: str | None = None) -> str | None:
    """The key's only value, `default` if absent, None if repeated (a repeated scalar is ambiguous)."""
    values = query.getall(key, [])
    if not values:
        return default
    return values[0] if len(values) == 1 else None


def _parse_limit(raw: str | None) -> int | None:
    """Limit per the docs: empty or above 500 means 500; 0, negative or non-numeric is invalid."""
    if raw is None:
        return None
    if raw == "":
        return MAX_LIMIT
    if not _DIGITS.fullmatch(raw):  # also refuses negatives
        return None
    digits = raw.lstrip("0")
    if not digits:
        return None
    # Any number of digits means "more than 500"; avoid int() on a megabyte of them.
    return MAX_LIMIT if len(digits) > 3 else min(int(digits), MAX_LIMIT)


def request_mode(query: MultiMapping[str]) -> int | None:
    """The Mode a request asks for, for fault filters (None if unreadable)."""
    mode = query.get("Mode", "0") or "0"
    return int(mode) if mode in ("0", "1") else None
