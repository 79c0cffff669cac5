"""The ZIM server API client: signing, pacing, retries, paging, QueryRoomMembers and typed errors."""

from bot.zim.client import RetryPolicy, ZimClient, new_http_client
from bot.zim.errors import (
    InvalidRoomId,
    InvalidUserIds,
    RoomNotFound,
    RoomUnavailable,
    ZimCredentialsRejected,
    ZimError,
    ZimIncompleteRoster,
    ZimInvalidRequest,
    ZimRejected,
    ZimUnavailable,
)
from bot.zim.members import Absence, AbsentUser, RoomMember, RoomMembers, user_id_problem, validate_user_ids
from bot.zim.models import Page
from bot.zim.pacing import Pacer, Priority
from bot.zim.paging import fetch_roster
from bot.zim.room_id import room_id_problem, validate_room_id

__all__ = [
    "Absence",
    "AbsentUser",
    "InvalidRoomId",
    "InvalidUserIds",
    "Pacer",
    "Page",
    "Priority",
    "RetryPolicy",
    "RoomMember",
    "RoomMembers",
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
    "user_id_problem",
    "validate_room_id",
    "validate_user_ids",
]
