"""Sans-IO encoding and decoding of QueryRoomUserList: what to send, and what an answer means."""

from __future__ import annotations

import json
from typing import Any

from bot.roster.model import RoomUser
from bot.zim import codes
from bot.zim.errors import (
    RoomNotFound,
    RoomUnavailable,
    ZimCredentialsRejected,
    ZimError,
    ZimInvalidRequest,
    ZimRejected,
)
from bot.zim.models import Page

ACTION = "QueryRoomUserList"
MAX_LIMIT = 500
FIRST_CURSOR = "0"
DONE_CURSORS = frozenset({"", "0"})
BODY_EXCERPT = 200


class TransientAnswer(Exception):
    """An answer worth retrying (busy, rate limited, 5xx, garbage). Internal to the client."""

    def __init__(self, description: str, *, code: int | None = None, request_id: str | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.code = code
        self.request_id = request_id

    @property
    def rate_limited(self) -> bool:
        return self.code in codes.RATE_LIMITED


def page_params(room_id: str, *, mode: int, cursor: str, limit: int = MAX_LIMIT) -> dict[str, str]:
    return {"RoomId": room_id, "Mode": str(mode), "NextFlag": cursor, "Limit": str(limit)}


def _excerpt(body: bytes) -> str:
    text = body[:BODY_EXCERPT].decode("utf-8", errors="replace").strip()
    return text + ("…" if len(body) > BODY_EXCERPT else "")


def decode_page(status: int, body: bytes) -> Page:
    """Turn one HTTP answer into a Page, or raise TransientAnswer / a ZimRejected subclass."""
    payload = _json_object(body)
    if payload is None:
        description = f"ZIM answered HTTP {status} with a body that is not JSON: {_excerpt(body)!r}"
        if status >= 500 or status in (200, 408, 429):
            raise TransientAnswer(description)
        raise ZimRejected(f"{description}; check ZEGO_API_BASE_URL")
    code = _int(payload.get("Code"), default=-1)
    request_id = str(payload.get("RequestId") or "") or None
    message = str(payload.get("Message") or "")
    if code == codes.SUCCESS and 200 <= status < 300:
        return _page(payload, request_id or "")
    if code == codes.ROOM_EMPTY:
        return Page(users=(), count=0, next_flag=None, request_id=request_id or "", being_destroyed=True)
    raise_if_unusable_or_busy(code, status, message, request_id)
    raise error_for_code(code, message, request_id)


def raise_if_unusable_or_busy(code: int, status: int, message: str, request_id: str | None) -> None:
    """The answers every ZIM action treats alike: no usable Code (retried on 5xx/429), or a retryable one."""
    if code == codes.SUCCESS or code == -1:
        description = f"ZIM answered HTTP {status} without a usable Code"
        if status >= 500 or status == 429:
            raise TransientAnswer(description, request_id=request_id)
        raise ZimRejected(description, request_id=request_id)
    if code in codes.RETRYABLE:
        said = f" ZIM said: {message}" if message else ""
        raise TransientAnswer(f"ZIM is busy (code {code}).{said}", code=code, request_id=request_id)


def error_for_code(code: int, message: str, request_id: str | None) -> ZimError:
    """The typed error for a non-zero, non-retryable ZIM Code."""
    said = f" ZIM said: {message}" if message else ""
    if code == codes.ROOM_NOT_FOUND:
        return RoomNotFound("That room does not exist (or has been destroyed).", code=code, request_id=request_id)
    if code == codes.ROOM_UNAVAILABLE:
        return RoomUnavailable(
            "ZIM failed to load that room; try again later or contact ZEGO support.",
            code=code,
            request_id=request_id,
        )
    if code in codes.CREDENTIAL_HINTS:
        return ZimCredentialsRejected(f"{codes.CREDENTIAL_HINTS[code]}.", code=code, request_id=request_id)
    if code in codes.INVALID_PARAMETER:
        return ZimInvalidRequest(
            f"ZIM rejected the request as invalid (code {code}).{said}", code=code, request_id=request_id
        )
    return ZimRejected(f"ZIM answered with error code {code}.{said}", code=code, request_id=request_id)


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _int(value: Any, *, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _page(payload: dict[str, Any], request_id: str) -> Page:
    raw_users = payload.get("UserList") or []
    if not isinstance(raw_users, list):
        raise TransientAnswer("ZIM answered with a UserList that is not a list", request_id=request_id)
    users = tuple(
        RoomUser(str(item.get("UserId", "")), str(item.get("UserName") or ""))
        for item in raw_users
        if isinstance(item, dict) and item.get("UserId")
    )
    raw_flag = payload.get("NextFlag")
    next_flag = None if raw_flag is None or str(raw_flag) in DONE_CURSORS else str(raw_flag)
    count = max(_int(payload.get("Count"), default=len(users)), 0)
    return Page(users=users, count=count, next_flag=next_flag, request_id=request_id)
