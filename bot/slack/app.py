"""build_app: the Bolt AsyncApp with every listener registered. No module-level app."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import SlackSettings
from bot.slack.deps import SlackDeps
from bot.slack.listeners import register_listeners

log = logging.getLogger(__name__)


def web_client(settings: SlackSettings) -> AsyncWebClient:
    options: dict[str, Any] = {"token": settings.bot_token}
    if settings.api_base_url:
        options["base_url"] = settings.api_base_url
    client = AsyncWebClient(**options)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    return client


def build_app(settings: SlackSettings, deps: SlackDeps) -> AsyncApp:
    app = AsyncApp(
        client=web_client(settings),
        signing_secret=settings.signing_secret,
        # Socket Mode has no signatures to verify; HTTP mode always verifies.
        request_verification_enabled=settings.signing_secret is not None,
        logger=logging.getLogger("bot.slack.bolt"),
    )
    register_listeners(app, deps)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("unhandled error in a listener (%s): %s", body.get("type"), error, exc_info=error)

    return app
