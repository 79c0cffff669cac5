"""Connecting to Redis so that a dead or slow server costs milliseconds, and naming it without its password."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from urllib.parse import unquote

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

REDIS_URL_SETTING = "REDIS_URL"
DEFAULT_PREFIX = "roomusers:"  # every key this app writes starts with it
SOCKET_TIMEOUT = 0.5
CONNECT_TIMEOUT = 0.5

_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&#]*")
_MASK = r"\1***"


class SharedStateUnavailable(Exception):
    """Redis is configured but unusable at start-up; the message names REDIS_URL and never its password."""


def redact_url(url: str) -> str:
    """`url` with any password (and a lone userinfo, which may be one) replaced by `***`.

    Works on the raw string, not `urlsplit`: a password with an unescaped `/`, `?` or `#` would make
    urlsplit end the host part early and print the rest of the password as a path.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "***"  # not a URL at all: nothing tells where a secret could be, so show none of it
    userinfo, at, tail = rest.rpartition("@")
    if at:
        user, colon, _password = userinfo.partition(":")
        rest = f"{user}:***@{tail}" if colon else f"***@{tail}"
    return f"{scheme}://{_QUERY_PASSWORD.sub(_MASK, rest)}"


def scrub(text: str, url: str) -> str:
    """`text` with every password that `url` carries (raw or percent-decoded) replaced by `***`."""
    _scheme, sep, rest = url.partition("://")
    userinfo, at, _tail = rest.rpartition("@")
    secrets = [userinfo.partition(":")[2] or userinfo] if sep and at else []
    secrets += [match.group(0).partition("=")[2] for match in _QUERY_PASSWORD.finditer(rest)]
    for secret in filter(None, secrets):
        for form in {secret, unquote(secret)}:
            text = text.replace(form, "***")
    return text


def connect(url: str, *, socket_timeout: float = SOCKET_TIMEOUT, connect_timeout: float = CONNECT_TIMEOUT) -> Redis:
    """A client (bytes replies) whose every call gives up within about a second when Redis is gone.

    redis-py's default retries ten times with backoff, which turns one outage into seconds of waiting per
    call. One immediate retry on a connection error is kept: after Redis restarts, the first command on each
    pooled connection fails with "connection closed" and the retry reconnects. Timeouts are not retried:
    the command may have run, and waiting twice doubles the stall. Raises ValueError for a malformed URL.
    """
    client = Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        client_name="roomusers",
    )
    pool = client.connection_pool  # no connection is made before the first command
    pool.connection_class = keeping_cancellation(pool.connection_class)
    return client


def keeping_cancellation(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    """`connection_class` (plain, TLS or Unix socket, as the URL chose) whose writes never swallow a cancel.

    With a socket timeout, redis-py writes through `asyncio.wait_for`, and Python 3.11's wait_for *returns*
    when the write finishes in the same loop turn as a cancel: the cancel is lost and the caller carries on.
    A renewal loop cancelled that way renewed its claim for ever, and the poll awaiting it never ended.
    """

    class KeepsCancellation(connection_class):  # type: ignore[valid-type,misc]
        async def send_packed_command(self, command: bytes | str | Iterable[bytes], check_health: bool = True) -> None:
            task = asyncio.current_task()
            cancels = task.cancelling() if task is not None else 0
            await super().send_packed_command(command, check_health)
            if task is not None and task.cancelling() > cancels:
                await self.disconnect(nowait=True)  # the command's reply will never be read
                raise asyncio.CancelledError

    KeepsCancellation.__name__ = KeepsCancellation.__qualname__ = f"{connection_class.__name__}KeepingCancellation"
    return KeepsCancellation
