"""`python -m bot serve`: compose settings, the roster stack and the Slack app, then run one mode."""

from __future__ import annotations

import logging

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.config import load_slack_settings, load_zego_settings
from bot.dedupe import MemoryEventDeduper
from bot.rosters import roster_stack
from bot.slack.answers import RoomAnswers
from bot.slack.app import build_app
from bot.slack.http_server import serve_http_forever

log = logging.getLogger(__name__)


async def serve(*, http: bool, host: str, port: int) -> None:
    zego = load_zego_settings()
    slack = load_slack_settings(http_mode=http)
    async with roster_stack(zego) as stack:
        app = build_app(slack, answers=RoomAnswers(stack.snapshots), deduper=MemoryEventDeduper())
        if http:
            await serve_http_forever(app, host, port)
            return
        assert slack.app_token is not None  # load_slack_settings guarantees it in Socket Mode
        handler = AsyncSocketModeHandler(app, slack.app_token)
        log.info("roomusers connecting to Slack in Socket Mode")
        await handler.start_async()  # type: ignore[no-untyped-call]  # Bolt leaves it unannotated
