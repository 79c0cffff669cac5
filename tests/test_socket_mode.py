"""Socket Mode's connection, watched for health: the real SDK client and Bolt handler against a small fake of
Slack's Socket Mode endpoint on loopback (apps.connections.open, then a WebSocket that says hello, carries
envelopes and takes acks), and the ops endpoints over real HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from prometheus_client import REGISTRY

from bot.dev.local_stack import sandbox_profile
from bot.dev.zim_sandbox import ZimSandbox
from bot.observability.health import LoopLagMonitor, ProcessHealth, Timings
from bot.runtime import compose_app
from bot.settings import SlackSettings, ZegoProfiles
from bot.slack.http import HEALTH_PATH, READY_PATH, start_ops_server
from bot.slack.link import TimedSocketModeHandler
from bot.state import memory_state
from bot.web import start_site

BOT_TOKEN = "xoxb-socket-test"
APP_TOKEN = "xapp-1-socket-test"


class FakeSocketSlack:
    def __init__(self) -> None:
        self.accepting = True
        self.refusal = "internal_error"  # what apps.connections.open answers while not accepting
        self.opens = 0  # apps.connections.open calls
        self.sockets: list[web.WebSocketResponse] = []
        self.acks: list[dict[str, Any]] = []
        self.port = 0

    def app(self) -> web.Application:
        async def api(request: web.Request) -> web.Response:
            method = request.match_info["method"]
            token = request.headers.get("Authorization", "")
            if method == "auth.test" and token == f"Bearer {BOT_TOKEN}":
                return web.json_response({"ok": True, "team_id": "T0SOCK", "user_id": "U0BOT", "bot_id": "B0BOT"})
            if method == "apps.connections.open" and token == f"Bearer {APP_TOKEN}":
                self.opens += 1
                if not self.accepting:
                    return web.json_response({"ok": False, "error": self.refusal})
                url = f"ws://127.0.0.1:{self.port}/link/?ticket={secrets.token_hex(8)}"
                return web.json_response({"ok": True, "url": url})
            return web.json_response({"ok": False, "error": "invalid_auth"})

        async def link(request: web.Request) -> web.WebSocketResponse:
            if not self.accepting:
                raise web.HTTPServiceUnavailable()
            socket = web.WebSocketResponse(autoping=True)
            await socket.prepare(request)
            self.sockets.append(socket)
            await socket.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0"}})
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    self.acks.append(json.loads(message.data))
            return socket

        web_app = web.Application()
        web_app.router.add_post("/api/{method}", api)
        web_app.router.add_get("/link/", link)
        return web_app

    async def drop_everyone(self) -> None:
        self.accepting = False
        for socket in self.sockets:
            await socket.close()
        self.sockets.clear()


@pytest.fixture
async def fake() -> AsyncIterator[FakeSocketSlack]:
    fake = FakeSocketSlack()
    runner, fake.port = await start_site(fake.app(), "127.0.0.1", 0)
    yield fake
    await fake.drop_everyone()
    await runner.cleanup()


async def get(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def until_status(url: str, status: int, *, within: float = 20) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            got, body = await get(url)
            if got == status:
                return body
            await asyncio.sleep(0.05)


async def test_socket_mode_acks_are_timed_and_a_dead_connection_turns_unready_then_not_live(
    sandbox: ZimSandbox, fake: FakeSocketSlack
):
    default = sandbox_profile(sandbox)
    profiles = ZegoProfiles(default="default", by_name={"default": default})
    slack = SlackSettings(bot_token=BOT_TOKEN, app_token=APP_TOKEN, api_base_url=f"http://127.0.0.1:{fake.port}/api/")
    async with compose_app(profiles, slack, state=memory_state(), mode="socket") as running:
        link = running.link
        handler = TimedSocketModeHandler(running.app, APP_TOKEN, ping_interval=0.5)
        lag = LoopLagMonitor(interval=0.05)
        timings = Timings(socket_down=1.0, socket_poll=0.1)
        health = ProcessHealth(link=link, lag=lag, state=running.state, probes={}, timings=timings)
        tasks = [asyncio.create_task(lag.run()), asyncio.create_task(link.watch_socket(handler, every=0.1))]
        runner, port = await start_ops_server("127.0.0.1", 0, health)
        base = f"http://127.0.0.1:{port}"
        try:
            assert await link.verify_bot_token(running.app.client)
            assert await link.open_socket(handler, APP_TOKEN)
            body = await until_status(base + READY_PATH, 200)
            assert body["checks"]["slack"] == "connected"

            # A slash command over the socket is acked on it, and the ack is timed.
            before = REGISTRY.get_sample_value("roomusers_ack_seconds_count", {"surface": "command"}) or 0.0
            envelope = {
                "envelope_id": "env-1",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": {
                    "token": "x",
                    "team_id": "T0SOCK",
                    "channel_id": "C0OPS",
                    "user_id": "U0ALICE",
                    "command": "/roomusers",
                    "text": "help",
                    "response_url": f"http://127.0.0.1:{fake.port}/response",
                    "trigger_id": "1.2.3",
                },
            }
            await fake.sockets[-1].send_json(envelope)
            async with asyncio.timeout(10):
                while not any(ack.get("envelope_id") == "env-1" for ack in fake.acks):  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            (ack,) = [ack for ack in fake.acks if ack.get("envelope_id") == "env-1"]
            assert "/roomusers" in json.dumps(ack["payload"])  # the usage message, in the ack itself
            after = REGISTRY.get_sample_value("roomusers_ack_seconds_count", {"surface": "command"}) or 0.0
            assert after == before + 1

            # Slack drops the connection and refuses new ones: not ready at once, not live after socket_down.
            await fake.drop_everyone()
            body = await until_status(base + READY_PATH, 503)
            assert body["checks"]["slack"].startswith("down ")
            body = await until_status(base + HEALTH_PATH, 503)
            assert body["live"] is False and body["checks"]["slack"].startswith("down ")

            # Slack is back: the SDK reconnects by itself, and both turn healthy again.
            fake.accepting = True
            await until_status(base + HEALTH_PATH, 200, within=30)
            body = await until_status(base + READY_PATH, 200, within=30)
            assert body["checks"]["slack"] == "connected"
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await handler.close_async()
            await runner.cleanup()


async def test_a_token_rejected_on_reconnect_is_one_warning_naming_SLACK_APP_TOKEN_not_a_traceback_loop(
    sandbox: ZimSandbox, fake: FakeSocketSlack, caplog: pytest.LogCaptureFixture
):
    default = sandbox_profile(sandbox)
    profiles = ZegoProfiles(default="default", by_name={"default": default})
    slack = SlackSettings(bot_token=BOT_TOKEN, app_token=APP_TOKEN, api_base_url=f"http://127.0.0.1:{fake.port}/api/")
    async with compose_app(profiles, slack, state=memory_state(), mode="socket") as running:
        handler = TimedSocketModeHandler(running.app, APP_TOKEN, ping_interval=0.2)
        try:
            assert await running.link.open_socket(handler, APP_TOKEN)
            fake.refusal = "invalid_auth"  # the app token was revoked while connected
            await fake.drop_everyone()
            async with asyncio.timeout(20):
                while not any("SLACK_APP_TOKEN" in r.getMessage() for r in caplog.records):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            opens = fake.opens
            async with asyncio.timeout(20):  # the SDK keeps retrying every 0.2 s meanwhile
                while fake.opens < opens + 3:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        finally:
            await handler.close_async()
    warnings = [r for r in caplog.records if "SLACK_APP_TOKEN" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert not [r for r in caplog.records if r.exc_info and "invalid_auth" in str(r.exc_info[1])]
    assert not [r for r in caplog.records if r.getMessage().startswith("Failed to retrieve WSS URL")]
    assert APP_TOKEN not in caplog.text
