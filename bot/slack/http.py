"""HTTP serving: Slack's endpoint (HTTP mode) and the ops endpoints (/healthz, /readyz, /metrics), on aiohttp's
production server. With METRICS_PORT the ops endpoints get a site of their own and are not on the Slack port."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.observability.health import ProcessHealth
from bot.observability.metrics import exposition, timed_ack
from bot.slack.replay import ALREADY_ANSWERED, ReplayFilter
from bot.state.once import ReplayGuard
from bot.web import start_site

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
MAX_BODY_BYTES = 1024 * 1024  # Slack payloads are small; refuse anything absurd before reading it all


def add_ops_routes(web_app: web.Application, ops: ProcessHealth) -> None:
    """GET /healthz (liveness), /readyz (readiness), each naming its checks, and /metrics."""

    async def healthz(_: web.Request) -> web.Response:
        live, checks = ops.liveness()
        return web.json_response({"live": live, "checks": checks}, status=200 if live else 503)

    async def readyz(_: web.Request) -> web.Response:
        ready, checks = await ops.readiness()
        return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)

    async def metrics(_: web.Request) -> web.Response:
        body, content_type = exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    web_app.router.add_get(HEALTH_PATH, healthz)
    web_app.router.add_get(READY_PATH, readyz)
    web_app.router.add_get(METRICS_PATH, metrics)


def surface_of(body: dict[str, Any]) -> str:
    """Which kind of Slack request a payload is, for the ack metrics: command, action, event or other."""
    if "command" in body:
        return "command"
    kind = body.get("type")
    if kind == "event_callback":
        return "event"
    if kind in ("block_actions", "view_submission", "view_closed", "shortcut", "message_action", "block_suggestion"):
        return "action"
    return "other"


def make_web_app(
    app: AsyncApp,
    ops: ProcessHealth | None = None,
    *,
    signing_secret: str | None = None,
    replay_guard: ReplayGuard | None = None,
) -> web.Application:
    """With `signing_secret` (HTTP mode), requests are verified first and a replayed signature gets 401.

    The ops endpoints are served here only when `ops` is given (no METRICS_PORT)."""
    replays = ReplayFilter(signing_secret, replay_guard) if signing_secret else None

    async def slack_events(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:  # Slack only sends UTF-8; anything else is not Slack
            return _malformed(len(raw))
        # Unsigned (or replayed) requests are refused before anything parses their body.
        if replays is not None and (refusal := await replays.refusal(text, request.headers)):
            if refusal == ALREADY_ANSWERED:  # Slack's retry of a request already taken: stop its retries
                return web.json_response({}, status=200, headers={"X-Slack-No-Retry": "1"})
            return web.json_response({"error": refusal}, status=401)
        try:  # Bolt parses the body in the constructor: bad JSON or a bad payload= field raises here
            bolt_request = AsyncBoltRequest(
                body=text,
                query=request.query_string,
                headers=request.headers,  # type: ignore[arg-type]  # a case-insensitive multidict, as Bolt's adapter passes
            )
        except (ValueError, TypeError, AttributeError, KeyError):  # json.JSONDecodeError is a ValueError
            return _malformed(len(raw))
        if not isinstance(bolt_request.body, dict):  # e.g. a JSON array
            return _malformed(len(raw))
        if not bolt_request.body and text:
            _repair_command_body(bolt_request, text)
        # Bolt returns as soon as the listener acks, so this is the time to the ack.
        with timed_ack(surface_of(bolt_request.body)):
            bolt_response = await app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    web_app = web.Application(client_max_size=MAX_BODY_BYTES)
    web_app.router.add_post(EVENTS_PATH, slack_events)
    if ops is not None:
        add_ops_routes(web_app, ops)
    return web_app


def _repair_command_body(bolt_request: AsyncBoltRequest, text: str) -> None:
    """Bolt reads any form body that merely contains the text "payload" as an interactivity payload, finds no
    `payload=` field and dispatches `{}`: `/roomusers payload-7` would never be answered. Give it the command."""
    form = dict(parse_qsl(text, keep_blank_values=True))
    if "command" in form and "payload" not in form:
        bolt_request.body = form
        bolt_request.context = build_async_context(AsyncBoltContext({}), form)


def _malformed(size: int) -> web.Response:
    """400 for a body Slack would never send; logged in one line (no traceback: anyone could fill the logs)."""
    log.info("refused a malformed Slack request body (%d bytes)", size)
    return web.json_response({"error": "malformed request"}, status=400)


async def start_http(
    app: AsyncApp,
    host: str,
    port: int,
    ops: ProcessHealth | None = None,
    *,
    signing_secret: str | None = None,
    replay_guard: ReplayGuard | None = None,
) -> tuple[web.AppRunner, int]:
    web_app = make_web_app(app, ops, signing_secret=signing_secret, replay_guard=replay_guard)
    return await start_site(web_app, host, port)


async def start_ops_server(host: str, port: int, ops: ProcessHealth) -> tuple[web.AppRunner, int]:
    """/healthz, /readyz and /metrics on METRICS_PORT (either mode)."""
    web_app = web.Application()
    add_ops_routes(web_app, ops)
    return await start_site(web_app, host, port, setting="METRICS_PORT")


def install_stop_signal() -> asyncio.Event:
    """An event set by SIGINT/SIGTERM; installed first thing, so a signal during any start-up step is graceful."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
