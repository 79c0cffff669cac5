"""HTTP mode: an aiohttp server (not Bolt's development server) with Slack's endpoint and a health check."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
MAX_BODY_BYTES = 1024 * 1024  # Slack payloads are small; refuse anything absurd before reading it all


def make_web_app(app: AsyncApp) -> web.Application:
    async def slack_events(request: web.Request) -> web.Response:
        bolt_response = await app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    web_app = web.Application(client_max_size=MAX_BODY_BYTES)
    web_app.router.add_post(EVENTS_PATH, slack_events)
    web_app.router.add_get("/healthz", healthz)
    return web_app


async def start_http(app: AsyncApp, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving; return the runner (for cleanup) and the bound port (port 0 picks a free one)."""
    runner = web.AppRunner(make_web_app(app), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, int(bound)


async def serve_http_forever(
    app: AsyncApp, host: str, port: int, *, on_ready: Callable[[int], Awaitable[None]] | None = None
) -> None:
    runner, bound = await start_http(app, host, port)
    log.info("roomusers listening on http://%s:%d%s", host, bound, EVENTS_PATH)
    if on_ready is not None:
        await on_ready(bound)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await runner.cleanup()
