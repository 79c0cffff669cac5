"""A read's progress shared through Redis, so a replica waiting for another replica's read can answer early.

The replica that reads a room (the lease holder) publishes, once ZIM's first page is in and then about every
second, `{prefix}progress:{key}` = `RUP1` + zlib(a length-prefixed JSON header `{"count", "read", "mode",
"at"}` + the first page's users in `PackedUsers.to_bytes` form), with `PX 30000`, and deletes it when the
read ends. A follower polls it while it waits for the snapshot and answers from it the way the leader does
(ZIM's count and first page). A new key with its own tag: older replicas never read it.

Best effort: a Redis error here is logged and ignored; the follower then simply waits for the snapshot.
For the same reason the key keeps its TTL, so under memory pressure Redis may evict it like a snapshot: that
only makes a follower answer when the snapshot lands instead of early.
"""

from __future__ import annotations

import json
import logging
import struct
import zlib
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from bot.roster.packed import PackedUsers
from bot.state.health import REDIS_UNAVAILABLE

log = logging.getLogger(__name__)

PROGRESS_TTL_MS = 30_000
_TAG = b"RUP1"
_HEADER_SIZE = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class SharedProgress:
    count: int  # ZIM's latest Count
    users_read: int
    first_mode: int  # the order of `first_users`: 0 oldest first, 1 newest first
    first_users: PackedUsers  # ZIM's first page
    at: float


def encode_progress(progress: SharedProgress) -> bytes:
    header = json.dumps(
        {"count": progress.count, "read": progress.users_read, "mode": progress.first_mode, "at": progress.at}
    ).encode()
    return _TAG + zlib.compress(_HEADER_SIZE.pack(len(header)) + header + progress.first_users.to_bytes(), 1)


def decode_progress(value: bytes) -> SharedProgress | None:
    """The progress in `value`, or None for anything this module did not write."""
    if not value.startswith(_TAG):
        return None
    try:
        body = zlib.decompress(value[len(_TAG) :])
        (size,) = _HEADER_SIZE.unpack_from(body)
        header = json.loads(body[_HEADER_SIZE.size : _HEADER_SIZE.size + size])
        users = PackedUsers.from_bytes(body[_HEADER_SIZE.size + size :])
        count, read, mode, at = header["count"], header["read"], header["mode"], header["at"]
        if not (isinstance(count, int) and isinstance(read, int) and mode in (0, 1) and isinstance(at, int | float)):
            return None
        return SharedProgress(count, read, mode, users, float(at))
    except (zlib.error, struct.error, ValueError, KeyError, TypeError):
        return None


class ProgressBoard(Protocol):
    async def publish(self, key: str, progress: SharedProgress) -> None: ...

    async def read(self, key: str) -> SharedProgress | None: ...

    async def clear(self, key: str) -> None: ...


class RedisProgressBoard:
    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}progress:"

    def redis_key(self, key: str) -> str:
        return self._prefix + key

    async def publish(self, key: str, progress: SharedProgress) -> None:
        try:
            await self._redis.set(self.redis_key(key), encode_progress(progress), px=PROGRESS_TTL_MS)
        except REDIS_UNAVAILABLE as error:
            log.debug("progress of %r not shared: %s", key, type(error).__name__)

    async def read(self, key: str) -> SharedProgress | None:
        try:
            value = await self._redis.get(self.redis_key(key))
        except REDIS_UNAVAILABLE as error:
            log.debug("progress of %r not read: %s", key, type(error).__name__)
            return None
        return decode_progress(value) if isinstance(value, bytes) else None

    async def clear(self, key: str) -> None:
        try:
            await self._redis.delete(self.redis_key(key))
        except REDIS_UNAVAILABLE as error:
            log.debug("progress of %r not cleared: %s", key, type(error).__name__)
