"""Wire format of the sandbox's answers: JSON bodies built from pre-encoded pieces.

A 500-user page must cost microseconds, so each user is encoded to JSON once (see `SandboxRoom.encoded`)
and a page is a `b",".join` of a slice of those fragments rather than a `json.dumps` of 500 dicts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from json.encoder import encode_basestring

JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer, plus the key it is counted under in `SandboxStats.by_code`."""

    body: bytes
    stat_key: int | str
    status: int = 200
    content_type: str = JSON_CONTENT_TYPE


def encode_user(user_id: str, user_name: str) -> bytes:
    """One `UserList` entry as JSON bytes; raw UTF-8 like a real server, only quotes/controls escaped."""
    # encode_basestring is the C-accelerated escaper json.dumps uses; it returns the quoted string.
    return f'{{"UserId":{encode_basestring(user_id)},"UserName":{encode_basestring(user_name)}}}'.encode()


def success_reply(request_id: str, count: int, next_flag: str, users: list[bytes]) -> Reply:
    """A successful QueryRoomUserList page, fields in the order ZEGO's documentation shows them."""
    body = b"".join(
        (
            b'{"Code":0,"Message":"success","RequestId":',
            encode_basestring(request_id).encode(),
            b',"Count":',
            str(count).encode(),
            b',"NextFlag":',
            encode_basestring(next_flag).encode(),
            b',"UserList":[',
            b",".join(users),
            b"]}",
        )
    )
    return Reply(body=body, stat_key=0)


def code_reply(code: int, message: str, request_id: str, **extra: object) -> Reply:
    """A ZIM error answer: HTTP 200 with a non-zero Code, as the real gateway sends."""
    payload: dict[str, object] = {"Code": code, "Message": message, "RequestId": request_id, **extra}
    return Reply(body=json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode(), stat_key=code)


def members_reply(
    code: int,
    message: str,
    request_id: str,
    present: list[tuple[str, str]],
    absent: list[tuple[str, int]],
) -> Reply:
    """A QueryRoomMembers answer: `UserList` in snake_case (avatar and extra null, as ZIM may send them) and
    `ErrorList` in PascalCase with each absent user's SubCode, as zim-api.md §5c documents them."""
    payload: dict[str, object] = {
        "Code": code,
        "Message": message,
        "RequestId": request_id,
        "UserList": [
            {"user_id": user_id, "user_name": user_name, "avatar": None, "extra": None}
            for user_id, user_name in present
        ],
        "ErrorList": [{"UserId": user_id, "SubCode": sub_code} for user_id, sub_code in absent],
    }
    return Reply(body=json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode(), stat_key=code)
