"""The ZIM server API client: signing, pacing, retries, paging and typed errors."""

from bot.zim.client import RetryPolicy, ZimClient, new_http_client
from bot.zim.errors import (
    InvalidRoomId,
    RoomNotFound,
    RoomUnavailable,
    ZimCredentialsRejected,
    ZimError,
    ZimIncompleteRoster,
    ZimInvalidRequest,
    ZimRejected,
    ZimUnavailable,
)
from bot.zim.models import Page
from bot.zim.pacing import Pacer
from bot.zim.paging import fetch_roster
from bot.zim.room_id import room_id_problem, validate_room_id

__all__ = [
    "InvalidRoomId",
    "Pacer",
    "Page",
    "RetryPolicy",
    "RoomNotFound",
    "RoomUnavailable",
    "ZimClient",
    "ZimCredentialsRejected",
    "ZimError",
    "ZimIncompleteRoster",
    "ZimInvalidRequest",
    "ZimRejected",
    "ZimUnavailable",
    "fetch_roster",
    "new_http_client",
    "room_id_problem",
    "validate_room_id",
]
