"""build_app: the Bolt AsyncApp with every listener registered. No module-level app."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.observability.metrics import SLACK_API_ERRORS, slack_error_label
from bot.settings import SlackSettings
from bot.slack.deps import SlackDeps
from bot.slack.listeners import register_listeners

log = logging.getLogger(__name__)


class CountingWebClient(AsyncWebClient):
    """The Web API client, counting every failed call in roomusers_slack_api_errors_total{method,error}."""

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        try:
            return await super().api_call(api_method, **kwargs)
        except SlackApiError as error:
            code = slack_error_label(error.response.get("error"), error.response.status_code)
            SLACK_API_ERRORS.labels(api_method, code).inc()
            raise
        except TimeoutError:
            SLACK_API_ERRORS.labels(api_method, "timeout").inc()
            raise
        except (aiohttp.ClientError, OSError):
            SLACK_API_ERRORS.labels(api_method, "connection").inc()
            raise


def web_client(settings: SlackSettings) -> AsyncWebClient:
    options: dict[str, Any] = {"token": settings.bot_token}
    if settings.api_base_url:
        options["base_url"] = settings.api_base_url
    client = CountingWebClient(**options)
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
