"""`python -m bot serve`: compose settings, the roster stacks and the Slack app, then run one mode."""

from __future__ import annotations

import logging
import os

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.compose import compose_app
from bot.config import load_slack_settings, load_zego_profiles
from bot.slack.access import AccessPolicy
from bot.slack.http_server import serve_http_forever

log = logging.getLogger(__name__)


async def serve(*, http: bool, host: str, port: int) -> None:
    profiles = load_zego_profiles()
    slack = load_slack_settings(http_mode=http)
    access = AccessPolicy.from_env(os.environ)
    log.info("ZEGO app profiles: %s (default %s)", ", ".join(profiles.by_name), profiles.default)
    log.info("access: %s", access.describe())
    async with compose_app(profiles, slack, access=access) as running:
        if http:
            await serve_http_forever(running.app, host, port)
            return
        assert slack.app_token is not None  # load_slack_settings guarantees it in Socket Mode
        handler = AsyncSocketModeHandler(running.app, slack.app_token)
        log.info("roomusers connecting to Slack in Socket Mode")
        await handler.start_async()  # type: ignore[no-untyped-call]  # Bolt leaves it unannotated
