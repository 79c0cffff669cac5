"""The replica's link to Slack: the bot token checked at start-up, the Socket Mode connection opened and watched.

A token Slack rejects (`invalid_auth`, `not_authed`, `account_inactive`, `token_revoked`) stops start-up with one
sentence naming the variable. Slack merely unreachable does not: the link retries with backoff and reports
"unreachable" to readiness until Slack answers. Only Slack's error code is ever logged, never a token.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Literal

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app, send_async_response
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.observability.metrics import SLACK_CONNECTED, timed_ack
from bot.settings import StartupError
from bot.slack.access import Installation

log = logging.getLogger(__name__)

FATAL_TOKEN_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"})
FIRST_ATTEMPT_SECONDS = 10.0  # the foreground attempt at start-up; after that, retries in the background
SOCKET_CONNECT_SECONDS = 15.0  # one WebSocket connect with a fresh URL (the SDK's own loop would retry forever)

_HINTS = {
    "SLACK_BOT_TOKEN": "copy the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page",
    "SLACK_APP_TOKEN": (
        "generate an app-level token with connections:write under Basic Information → App-Level Tokens"
    ),
}


class SlackTokenRejected(StartupError):
    """Slack rejected a token for good: retrying can't help."""


class SlackUnreachable(Exception):
    """Slack could not be asked (or answered with something retrying may fix); `reason` has no secrets."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def rejected(setting: str, method: str, code: str) -> SlackTokenRejected:
    return SlackTokenRejected(f"Slack rejected {setting} ({method}: {code}); {_HINTS[setting]}.")


async def classified(call: Callable[[], Awaitable[Any]], *, setting: str, method: str) -> dict[str, Any]:
    """The response data; SlackTokenRejected for a rejected token; SlackUnreachable for anything transient."""
    try:
        response = await call()
    except SlackApiError as error:
        code = str(error.response.get("error") or f"http_{error.response.status_code}")
        if code in FATAL_TOKEN_ERRORS:
            raise rejected(setting, method, code) from None
        raise SlackUnreachable(f"{method}: {code}") from None
    except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as error:
        raise SlackUnreachable(f"{method}: {type(error).__name__}") from None
    data = response.data if hasattr(response, "data") else response
    return dict(data) if isinstance(data, dict) else {}


def backoff(
    first: float = 1.0, cap: float = 30.0, jitter: float = 0.2, rng: random.Random | None = None
) -> Iterator[float]:
    """Delays 1, 2, 4, … capped at 30 s, each ± 20 %."""
    rng = rng or random.Random()
    delay = first
    while True:
        yield delay * rng.uniform(1 - jitter, 1 + jitter)
        delay = min(cap, delay * 2)


State = Literal["verifying", "unreachable", "connecting", "connected", "down"]


class SlackLink:
    """What this replica knows about its connection to Slack, for readiness, liveness and the access rules."""

    def __init__(
        self,
        mode: Literal["http", "socket"],
        *,
        clock: Callable[[], float] = time.monotonic,
        retry_first: float = 1.0,
        retry_cap: float = 30.0,
    ) -> None:
        self.mode = mode
        self.state: State = "verifying"
        self.identity: Installation | None = None
        self.last_error = ""
        self.connected_once = False
        self.down_since: float | None = None
        self._clock = clock
        self._retry_first = retry_first
        self._retry_cap = retry_cap
        self._fatal: asyncio.Future[StartupError] | None = None
        SLACK_CONNECTED.set(0)

    # -- what the health endpoints read ----------------------------------------------------------------

    def ready(self) -> bool:
        return self.state == "connected"

    def describe(self) -> str:
        if self.state == "unreachable":
            return f"unreachable ({self.last_error}), retrying"
        if self.state == "down":
            down = self.down_for() or 0.0
            return f"down {down:.0f} s, reconnecting"
        return self.state

    def down_for(self) -> float | None:
        """Seconds the Socket Mode connection has been down after having been up; None otherwise."""
        if self.down_since is None:
            return None
        return self._clock() - self.down_since

    @property
    def fatal(self) -> asyncio.Future[StartupError]:
        """Resolved when a background retry meets a token Slack rejects: the process must stop."""
        if self._fatal is None:
            self._fatal = asyncio.get_running_loop().create_future()
        return self._fatal

    # -- the bot token -----------------------------------------------------------------------------------

    async def verify_bot_token(self, client: AsyncWebClient) -> bool:
        """One auth.test now: True if Slack accepted the token, False if Slack is unreachable (retry later).

        Raises SlackTokenRejected naming SLACK_BOT_TOKEN if Slack rejects it."""
        try:
            async with asyncio.timeout(FIRST_ATTEMPT_SECONDS):
                data = await classified(client.auth_test, setting="SLACK_BOT_TOKEN", method="auth.test")
        except (SlackUnreachable, TimeoutError) as error:
            self._unreachable(error.reason if isinstance(error, SlackUnreachable) else "auth.test: timeout")
            return False
        self.identity = Installation(
            str(data.get("team_id") or "") or None, str(data.get("enterprise_id") or "") or None
        )
        log.info(
            "Slack accepted SLACK_BOT_TOKEN (team %s%s)",
            self.identity.team_id,
            f", enterprise {self.identity.enterprise_id}" if self.identity.enterprise_id else "",
        )
        if self.mode == "http":
            self._connected()
        return True

    async def keep_verifying(self, client: AsyncWebClient) -> None:
        """auth.test with backoff until Slack answers; a rejection then resolves `fatal`."""
        for delay in backoff(self._retry_first, self._retry_cap):
            await asyncio.sleep(delay)
            try:
                if await self.verify_bot_token(client):
                    return
            except StartupError as error:
                self._set_fatal(error)
                return

    # -- Socket Mode -------------------------------------------------------------------------------------

    async def open_socket(self, handler: AsyncSocketModeHandler, app_token: str) -> bool:
        """One apps.connections.open and WebSocket connect: True when connected, False to retry later.

        Raises SlackTokenRejected naming SLACK_APP_TOKEN if Slack rejects the app token."""
        client: SocketModeClient = handler.client
        self.state = "connecting" if self.state != "unreachable" else self.state
        try:
            async with asyncio.timeout(FIRST_ATTEMPT_SECONDS):
                data = await classified(
                    lambda: client.web_client.apps_connections_open(app_token=app_token),
                    setting="SLACK_APP_TOKEN",
                    method="apps.connections.open",
                )
            url = data.get("url")
            if not isinstance(url, str) or not url:
                raise SlackUnreachable("apps.connections.open: no url")
            client.wss_uri = url
            try:
                async with asyncio.timeout(SOCKET_CONNECT_SECONDS):
                    await client.connect()  # type: ignore[no-untyped-call]
            except TimeoutError:
                client.wss_uri = None  # the URL may have expired: the next attempt asks for a fresh one
                raise SlackUnreachable("WebSocket connect: timeout") from None
        except (SlackUnreachable, TimeoutError) as error:
            self._unreachable(error.reason if isinstance(error, SlackUnreachable) else "apps.connections.open: timeout")
            return False
        self._connected()
        log.info("roomusers connected to Slack in Socket Mode")
        return True

    async def keep_opening(self, handler: AsyncSocketModeHandler, app_token: str, client: AsyncWebClient) -> None:
        """Until connected: auth.test (if not yet verified) and apps.connections.open, with backoff."""
        for delay in backoff(self._retry_first, self._retry_cap):
            await asyncio.sleep(delay)
            try:
                if self.identity is None and not await self.verify_bot_token(client):
                    continue
                if await self.open_socket(handler, app_token):
                    return
            except StartupError as error:
                self._set_fatal(error)
                return

    async def watch_socket(self, handler: AsyncSocketModeHandler, *, every: float) -> None:
        """Observe the SDK's connection (it reconnects by itself) and record when it is down, and for how long."""
        while True:
            await asyncio.sleep(every)
            if not self.connected_once:
                continue
            up = bool(await handler.client.is_connected())
            if up and self.down_since is not None:
                log.info("Slack Socket Mode reconnected after %.0f s", self._clock() - self.down_since)
                self._connected()
            elif not up and self.down_since is None:
                self.down_since = self._clock()
                self.state = "down"
                SLACK_CONNECTED.set(0)
                log.warning("Slack Socket Mode connection is down; the SDK is reconnecting")

    # -- internals ---------------------------------------------------------------------------------------

    def _unreachable(self, reason: str) -> None:
        if reason != self.last_error:  # one line per outage (and per change of reason), not one per retry
            log.warning("Slack is unreachable (%s); retrying with backoff, not ready until it answers", reason)
        self.state = "unreachable"
        self.last_error = reason
        SLACK_CONNECTED.set(0)

    def _connected(self) -> None:
        if self.state == "unreachable":
            log.info("Slack answers again")
        self.state = "connected"
        self.last_error = ""
        self.connected_once = True
        self.down_since = None
        SLACK_CONNECTED.set(1)

    def _set_fatal(self, error: StartupError) -> None:
        if not self.fatal.done():
            self.fatal.set_result(error)


def _rejected_code(record: logging.LogRecord) -> str | None:
    """The fatal code of an SDK log line about apps.connections.open being refused, else None."""
    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, SlackApiError):
        code = str(error.response.get("error") or "")
        return code if code in FATAL_TOKEN_ERRORS and "apps.connections.open" in str(error) else None
    message = str(record.msg)
    if "apps.connections.open" not in message:
        return None
    return next((code for code in FATAL_TOKEN_ERRORS if f"'error': '{code}'" in message), None)


class RejectedTokenFilter(logging.Filter):
    """Turns the SDK's reconnect tracebacks for a token Slack now rejects into one warning a minute that names
    the variable (the SDK retries such a reconnect forever, logging the full SlackApiError each time)."""

    def __init__(self, *, every: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._every = every
        self._clock = clock
        self._last = -float("inf")

    def filter(self, record: logging.LogRecord) -> bool:
        code = _rejected_code(record)
        if code is None:
            return True
        now = self._clock()
        if now - self._last < self._every:
            return False
        self._last = now
        record.msg = (
            "Slack rejects SLACK_APP_TOKEN on reconnect (apps.connections.open: %s); this replica is not ready, "
            "and not live once it has been down for the liveness limit"
        )
        record.args = (code,)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
        return True


SURFACES = {"slash_commands": "command", "interactive": "action", "events_api": "event"}


class TimedSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler, timing each request until its ack is sent (roomusers_ack_seconds); the SDK
    client's reconnect tracebacks for a rejected token become one warning a minute (RejectedTokenFilter)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        logger = self.client.logger
        if not any(isinstance(f, RejectedTokenFilter) for f in logger.filters):
            logger.addFilter(RejectedTokenFilter())

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started = time.time()
        with timed_ack(SURFACES.get(req.type, "other")):
            bolt_resp = await run_async_bolt_app(self.app, req)
            await send_async_response(client, req, bolt_resp, started)
