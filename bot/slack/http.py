"""HTTP serving: Slack's endpoint (HTTP mode) and the ops endpoints (/healthz, /readyz, /metrics), on aiohttp's
production server. With METRICS_PORT the ops endpoints get a site of their own and are not on the Slack port."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.observability.health import ProcessHealth
from bot.observability.metrics import exposition, timed_ack
from bot.slack.replay import ReplayFilter
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
        try:
            bolt_request = await to_bolt_request(request)
        except UnicodeDecodeError:  # Slack only sends UTF-8; anything else is not Slack
            return web.json_response({"error": "invalid request"}, status=400)
        if replays is not None and (refusal := await replays.refusal(bolt_request.raw_body, request.headers)):
            return web.json_response({"error": refusal}, status=401)
        # Bolt returns as soon as the listener acks, so this is the time to the ack.
        with timed_ack(surface_of(bolt_request.body)):
            bolt_response = await app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    web_app = web.Application(client_max_size=MAX_BODY_BYTES)
    web_app.router.add_post(EVENTS_PATH, slack_events)
    if ops is not None:
        add_ops_routes(web_app, ops)
    return web_app


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
