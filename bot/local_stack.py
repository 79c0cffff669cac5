"""The whole product on loopback with no credentials: ZIM sandbox + real Bolt app over HTTP + Slack stand-in.

`make demo`, `python -m bot console` and the end-to-end tests all run exactly this stack.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace

from slack_bolt.async_app import AsyncApp

from bot.compose import compose_app
from bot.config import DEFAULT_PROFILE, SlackSettings, ZegoProfiles, ZegoSettings
from bot.shared_state import SharedState, memory_state
from bot.rosters import Rosters
from bot.sandbox import ZimSandbox
from bot.slack.access import AccessPolicy
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
    rosters: Rosters
    app_url: str
    slack_settings: SlackSettings


def sandbox_profile(sandbox: ZimSandbox, *, name: str = DEFAULT_PROFILE, qps: float = 20.0) -> ZegoSettings:
    return ZegoSettings(
        app_id=sandbox.app_id, server_secret=sandbox.secret, base_url=sandbox.base_url, qps=qps, profile=name
    )


@asynccontextmanager
async def local_stack(
    *,
    sandbox: ZimSandbox | None = None,
    profiles: ZegoProfiles | None = None,
    qps: float = 20.0,
    state: SharedState | None = None,
    store: SnapshotStore | None = None,
    access: AccessPolicy | None = None,
    retry: RetryPolicy | None = None,
) -> AsyncIterator[LocalStack]:
    """Start everything on free loopback ports; stop it all on exit. Fresh demo secrets each time."""
    async with AsyncExitStack() as stack:
        if sandbox is None:
            sandbox = await stack.enter_async_context(ZimSandbox())
        bot_token = f"xoxb-local-{secrets.token_hex(8)}"
        signing_secret = secrets.token_hex(16)
        slack = await stack.enter_async_context(SlackStandIn(signing_secret=signing_secret, bot_token=bot_token))
        if profiles is None:
            default = sandbox_profile(sandbox, qps=qps)
            profiles = ZegoProfiles(default=default.profile, by_name={default.profile: default})
        slack_settings = SlackSettings(
            bot_token=bot_token, signing_secret=signing_secret, api_base_url=slack.api_base_url
        )
        if state is None:
            state = memory_state(qps=qps)
            if store is not None:
                state = replace(state, store=store)
        running = await stack.enter_async_context(
            compose_app(profiles, slack_settings, state=state, access=access, retry=retry)
        )
        runner, port = await start_http(running.app, LOOPBACK, 0, state.health)
        stack.push_async_callback(runner.cleanup)
        slack.app_url = f"http://{LOOPBACK}:{port}{EVENTS_PATH}"
        yield LocalStack(
            sandbox=sandbox,
            slack=slack,
            app=running.app,
            rosters=running.rosters,
            app_url=slack.app_url,
            slack_settings=slack_settings,
        )
