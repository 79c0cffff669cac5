"""The whole product on loopback with no credentials: ZIM sandbox + real Bolt app over HTTP + Slack stand-in.

`make demo`, `python -m bot console` and the end-to-end tests all run exactly this stack.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from slack_bolt.async_app import AsyncApp

from bot.config import SlackSettings, ZegoSettings
from bot.dedupe import EventDeduper, MemoryEventDeduper
from bot.rosters import RosterStack, roster_stack
from bot.sandbox import SANDBOX_APP_ID, SANDBOX_SERVER_SECRET, ZimSandbox
from bot.slack.answers import RoomAnswers
from bot.slack.app import build_app
from bot.slack.http_server import EVENTS_PATH, start_http
from bot.slack_standin import SlackStandIn
from bot.snapshots import SnapshotStore
from bot.zim import RetryPolicy

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class LocalStack:
    sandbox: ZimSandbox
    slack: SlackStandIn
    app: AsyncApp
    rosters: RosterStack
    app_url: str
    slack_settings: SlackSettings


@asynccontextmanager
async def local_stack(
    *,
    sandbox: ZimSandbox | None = None,
    qps: float = 20.0,
    store: SnapshotStore | None = None,
    deduper: EventDeduper | None = None,
    retry: RetryPolicy | None = None,
) -> AsyncIterator[LocalStack]:
    """Start everything on free loopback ports; stop it all on exit. Fresh demo secrets each time."""
    async with AsyncExitStack() as stack:
        if sandbox is None:
            sandbox = await stack.enter_async_context(ZimSandbox())
        bot_token = f"xoxb-local-{secrets.token_hex(8)}"
        signing_secret = secrets.token_hex(16)
        slack = await stack.enter_async_context(SlackStandIn(signing_secret=signing_secret, bot_token=bot_token))
        zego = ZegoSettings(
            app_id=SANDBOX_APP_ID, server_secret=SANDBOX_SERVER_SECRET, base_url=sandbox.base_url, qps=qps
        )
        slack_settings = SlackSettings(
            bot_token=bot_token, signing_secret=signing_secret, api_base_url=slack.api_base_url
        )
        rosters = await stack.enter_async_context(roster_stack(zego, store=store, retry=retry))
        app = build_app(slack_settings, answers=RoomAnswers(rosters.snapshots), deduper=deduper or MemoryEventDeduper())
        runner, port = await start_http(app, LOOPBACK, 0)
        stack.push_async_callback(runner.cleanup)
        slack.app_url = f"http://{LOOPBACK}:{port}{EVENTS_PATH}"
        yield LocalStack(
            sandbox=sandbox,
            slack=slack,
            app=app,
            rosters=rosters,
            app_url=slack.app_url,
            slack_settings=slack_settings,
        )
