"""SlackStandIn: a loopback HTTP server that plays Slack's side for end-to-end tests and the offline demo.

It serves the Web API (`POST /api/<method>`, point `AsyncWebClient(base_url=standin.api_base_url)` at it),
response_urls (`POST /response/<token>`) and file uploads (`POST /upload/<file_id>`), keeps the resulting
conversation, and (through `AppDriver`) sends the app signed commands, clicks and events.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TypeVar

from aiohttp import web

from bot.dev.slack_standin.driver import AppDriver
from bot.dev.slack_standin.faults import ApiFault, Faults
from bot.dev.slack_standin.manifest import ManifestFacts
from bot.dev.slack_standin.models import (
    ApiCall,
    BotIdentity,
    JsonDict,
    ResponseContext,
    ResponseUrlPost,
    StoredFile,
    StoredMessage,
)
from bot.dev.slack_standin.ratelimits import RateLimiter, RateLimits, channel_of
from bot.dev.slack_standin.response_urls import ResponseUrls, parse_payload
from bot.dev.slack_standin.socket_mode import SocketModeHub
from bot.dev.slack_standin.webapi import WebApi
from bot.dev.slack_standin.workspace import Conversation, ConversationKind, Workspace
from bot.web import http_url, start_site

T = TypeVar("T")
MAX_BODY_BYTES = 64 * 1024 * 1024  # CSV exports of big rooms go through the upload endpoint
# The scopes the app's manifest asks for; Slack reports granted scopes on every Web API answer.
OAUTH_SCOPES = "commands,app_mentions:read,chat:write,channels:read,groups:read,files:write,im:write,usergroups:read"


class SlackStandIn(AppDriver):
    """Slack, locally: Web API, response_urls, uploads, a conversation model, and a driver toward the app."""

    def __init__(
        self,
        *,
        signing_secret: str,
        bot_token: str,
        app_url: str | None = None,
        bot_user_id: str = "UROOMUSERS",
        team_id: str = "T0DEMO",
        clock: Callable[[], float] = time.time,
        app_token: str | None = None,
        limits: RateLimits | None = None,
        manifest: ManifestFacts | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.identity = BotIdentity(bot_user_id=bot_user_id, team_id=team_id)
        self.workspace = Workspace(clock=clock)
        self.manifest = manifest or ManifestFacts.load()
        self.workspace.messages_tab_enabled = self.manifest.messages_tab_enabled
        self.workspace.scopes = self.manifest.scopes
        self.rate_limiter = RateLimiter(limits or RateLimits(), monotonic)
        self._monotonic = monotonic
        self.faults = Faults()
        self._bot_token = bot_token
        self._api = WebApi(self.workspace, self.identity)
        urls = ResponseUrls(self.workspace, self.identity, clock)
        # With an app token the stand-in also plays Socket Mode: the app connects instead of being POSTed to.
        self.socket = (
            SocketModeHub(self.workspace, app_token=app_token, app_id=self.identity.app_id, bot_token=bot_token)
            if app_token is not None
            else None
        )
        super().__init__(
            signing_secret=signing_secret,
            identity=self.identity,
            workspace=self.workspace,
            response_urls=urls,
            app_url=app_url,
            socket=self.socket,
        )
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 = any free port) and return the base URL, e.g. "http://127.0.0.1:54321"."""
        if self._runner is not None:
            raise RuntimeError("SlackStandIn is already running")
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/api/{method}", self._serve_api)
        app.router.add_post("/response/{token}", self._serve_response_url)
        app.router.add_post("/upload/{file_id}", self._serve_upload)
        if self.socket is not None:
            self.socket.add_routes(app)
        self._runner, bound_port = await start_site(app, host, port)
        self._base_url = http_url(host, bound_port)
        self._api.upload_base_url = self._urls.base_url = self._base_url
        if self.socket is not None:
            self.socket.base_url = "ws" + self._base_url.removeprefix("http")
        return self._base_url

    async def stop(self) -> None:
        await self.close_driver()
        if self.socket is not None:  # open WebSockets would keep the runner's cleanup waiting
            await self.socket.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackStandIn:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("SlackStandIn is not started; await start() first")
        return self._base_url

    @property
    def api_base_url(self) -> str:
        """For `AsyncWebClient(base_url=...)`: slack_sdk urljoins the method name, so the slash matters."""
        return f"{self.base_url}/api/"

    # -- the conversation --------------------------------------------------------------------------------

    def messages(self, channel: str) -> list[StoredMessage]:
        return self.workspace.messages(channel)

    def ephemerals(self, user: str) -> list[StoredMessage]:
        return self.workspace.ephemerals(user)

    def visible_to(self, user: str, channel: str) -> list[StoredMessage]:
        return self.workspace.visible_to(user, channel)

    def thread(self, channel: str, thread_ts: str) -> list[StoredMessage]:
        return self.workspace.thread(channel, thread_ts)

    def message(self, ts: str) -> StoredMessage | None:
        return self.workspace.message(ts)

    def add_conversation(
        self,
        channel: str,
        *,
        kind: ConversationKind | None = None,
        name: str | None = None,
        bot_member: bool = True,
        members: Iterable[str] = (),
    ) -> Conversation:
        """A conversation with the given membership, e.g. a private channel the bot was never added to."""
        return self.workspace.add_conversation(channel, kind=kind, name=name, bot_member=bot_member, members=members)

    def dm_channel(self, user: str) -> str:
        """The app's DM with `user` (where undeliverable answers and private exports go)."""
        return self.workspace.dm_channel(user)

    @property
    def invisible(self) -> list[StoredMessage]:
        """Ephemerals Slack accepted but would not show anyone."""
        return self.workspace.invisible

    @property
    def files(self) -> list[StoredFile]:
        return self.workspace.files

    @property
    def api_calls(self) -> list[ApiCall]:
        return self.workspace.api_calls

    @property
    def response_url_posts(self) -> list[ResponseUrlPost]:
        return self.workspace.response_url_posts

    @property
    def warnings(self) -> list[str]:
        return self.workspace.warnings

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:  # noqa: ASYNC109 - see Workspace
        return await self.workspace.wait_for(predicate, timeout)

    async def next_message(self, timeout: float = 5.0) -> StoredMessage:  # noqa: ASYNC109 - see Workspace
        return await self.workspace.next_message(timeout)

    def unread(self) -> list[StoredMessage]:
        return self.workspace.unread()

    def has_news(self, files_seen: int) -> bool:
        return self.workspace.has_news(files_seen)

    def take_arrivals(self) -> list[StoredMessage]:
        return self.workspace.take_arrivals()

    def new_response_url(self, context: ResponseContext) -> str:
        return self._urls.mint(context)

    def response_url_uses(self, url: str) -> int:
        return self._urls.uses(url)

    # -- fault knobs -------------------------------------------------------------------------------------

    def fail_next_response_urls(self, status: int, count: int = 1) -> None:
        self.faults.fail_response_urls(status, count)

    def delay_next_response_urls(self, seconds: float, count: int = 1) -> None:
        self.faults.delay_response_urls(seconds, count)

    def rate_limit_next_api_calls(self, method: str, count: int = 1, retry_after: int = 1) -> None:
        """HTTP 429 + Retry-After for the next `count` calls of `method` ("*" = any method)."""
        self.faults.fail_api_calls(method, ApiFault(429, "ratelimited", retry_after), count)

    def drop_next_api_calls(self, method: str, count: int = 1) -> None:
        """Close the connection of the next `count` calls of `method` ("*" = any) without answering."""
        self.faults.drop_api_calls(method, count)

    def fail_next_api_calls(self, method: str, error: str, count: int = 1, status: int = 200) -> None:
        """Answer the next `count` calls of `method` ("*" = any) with `{"ok": false, "error": error}`."""
        self.faults.fail_api_calls(method, ApiFault(status, error), count)

    # -- HTTP handlers -----------------------------------------------------------------------------------

    async def _serve_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _read_args(request)
        at = self._monotonic()
        if self.faults.take_api_drop(method):
            # The connection drops before Slack answers (whether Slack acted is unknown to the caller).
            self.workspace.api_calls.append(ApiCall(method, args or {}, 0, "connection_dropped", at))
            await self.workspace.changed()
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)  # never sent: the connection is gone
        status, body, headers = self._answer_api(method, args, request.headers.get("Authorization"))
        error = None if body["ok"] else body.get("error")
        self.workspace.api_calls.append(ApiCall(method, args or {}, status, error, at))
        await self.workspace.changed()
        headers["X-OAuth-Scopes"] = OAUTH_SCOPES
        return web.json_response(body, status=status, headers=headers)

    def _answer_api(
        self, method: str, args: JsonDict | None, authorization: str | None
    ) -> tuple[int, JsonDict, dict[str, str]]:
        if method == "apps.connections.open":  # the one method that takes the app-level (xapp-) token
            if self.socket is None:
                return 200, {"ok": False, "error": "invalid_auth"}, {}
            return (*self.socket.connections_open(authorization), {})
        if args is None:
            return 200, {"ok": False, "error": "invalid_json"}, {}
        if not authorization:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if authorization != f"Bearer {self._bot_token}":
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        fault = self.faults.take_api_fault(method)
        if fault is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return fault.status, {"ok": False, "error": fault.error}, headers
        channel = channel_of(args)
        if channel is not None and channel[0] in "UW":
            channel = self.workspace.dm_channel(channel)
        retry_after = self.rate_limiter.admit(method, channel)
        if retry_after is not None:
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}
        return 200, self._api.call(method, args), {}

    async def _serve_response_url(self, request: web.Request) -> web.Response:
        raw = await request.read()
        delay = self.faults.take_response_delay()
        if delay:
            await asyncio.sleep(delay)
        failure = self.faults.take_response_failure()
        status, body = failure or self._urls.post(request.match_info["token"], raw)
        url = f"{self.base_url}{request.path}"
        self.workspace.response_url_posts.append(ResponseUrlPost(url, parse_payload(raw), status, body))
        await self.workspace.changed()
        return web.Response(status=status, text=body)

    async def _serve_upload(self, request: web.Request) -> web.Response:
        content = await _upload_bytes(request)
        if not self._api.receive_upload(request.match_info["file_id"], content):
            return web.Response(status=404, text="file_not_found")
        await self.workspace.changed()
        return web.Response(text=f"OK - {len(content)}")


async def _read_args(request: web.Request) -> JsonDict | None:
    """Arguments from the query string and a JSON or form body, the ways slack_sdk sends them; None if bad JSON."""
    args: JsonDict = dict(request.query)
    if request.content_type == "application/json":
        try:
            body = json.loads(await request.read() or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        if not isinstance(body, dict):
            return None
        args.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        args.update({key: value for key, value in form.items() if isinstance(value, str)})
    args.pop("token", None)  # never keep a credential in the call log
    return args


async def _upload_bytes(request: web.Request) -> bytes:
    """The uploaded file: the raw body (slack_sdk), or the first file part of a multipart form (curl -F)."""
    if request.content_type != "multipart/form-data":
        return await request.read()
    form = await request.post()
    for value in form.values():
        if isinstance(value, web.FileField):
            return value.file.read()
    return b""
