"""Errors raised by the ZIM client. Each one reads as a plain sentence and keeps ZIM's RequestId.

ZimError
├── InvalidRoomId           the room ID breaks ZIM's rule; refused locally, nothing was sent
├── InvalidUserIds          user IDs to look for break ZIM's rule (QueryRoomMembers); refused locally
├── ZimRejected             ZIM answered with a non-zero, non-retryable Code
│   ├── RoomNotFound        660300001
│   ├── RoomUnavailable     660300007 (ZIM could not load the room)
│   ├── ZimInvalidRequest   2, 660000002, ... (a bug on our side or a bad parameter)
│   └── ZimCredentialsRejected  3, 1000000xx signature/AppId codes: a settings problem
├── ZimUnavailable          transient failures outlasted the retry budget
│   └── SendSlotWaitExhausted  the budget went on waiting for our own send slot (ZIM was not asked)
└── ZimIncompleteRoster     kept for callers that name it; a read now returns an incomplete Roster instead
"""

from __future__ import annotations

from typing import Self


class ZimError(Exception):
    """Base of every ZIM client error; `str(error)` is a sentence fit to show a user."""

    def __init__(self, message: str, *, code: int | None = None, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        if self.request_id:
            return f"{self.message} (ZIM RequestId {self.request_id})"
        return self.message

    def naming_settings(self, prefix: str) -> Self:
        """The same error, naming the variables of the profile whose settings were used (ZEGO_STAGING_…)."""
        if prefix == "ZEGO_" or "ZEGO_" not in self.message:
            return self
        renamed = type(self).__new__(type(self))
        renamed.__dict__.update(self.__dict__)
        renamed.message = self.message.replace("ZEGO_", prefix)
        renamed.args = (renamed.message,)
        return renamed


class InvalidRoomId(ZimError, ValueError):
    def __init__(self, message: str, *, room_id: str) -> None:
        super().__init__(message)
        self.room_id = room_id


class InvalidUserIds(ZimError, ValueError):
    """The user IDs given to QueryRoomMembers cannot be sent (none, more than 10, empty, over 32 bytes)."""


class ZimRejected(ZimError):
    """ZIM answered with an error Code that retrying will not fix."""


class RoomNotFound(ZimRejected):
    pass


class RoomUnavailable(ZimRejected):
    pass


class ZimInvalidRequest(ZimRejected):
    pass


class ZimCredentialsRejected(ZimRejected):
    pass


class ZimUnavailable(ZimError):
    """ZIM could not be reached or kept failing transiently until the retry budget ran out."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        request_id: str | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message, code=code, request_id=request_id)
        self.attempts = attempts


class SendSlotWaitExhausted(ZimUnavailable):
    """The retry budget ran out while this process waited for its own pacer slot: ZIM was not asked then, so this
    says nothing about ZIM (a background caller skips its turn instead of counting a failure)."""


class ZimIncompleteRoster(ZimError):
    """The user list could not be read to its end; `users_read` of `users_expected` were seen."""

    def __init__(self, message: str, *, users_read: int, users_expected: int, request_id: str | None = None) -> None:
        super().__init__(message, request_id=request_id)
        self.users_read = users_read
        self.users_expected = users_expected
