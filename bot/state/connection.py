"""Connecting to Redis so that a dead or slow server costs milliseconds, and naming it without its password."""

from __future__ import annotations

import re
from urllib.parse import unquote

from redis.asyncio import Redis
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
    return Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        client_name="roomusers",
    )
