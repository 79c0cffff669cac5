"""build_app: the Bolt AsyncApp with every listener registered. No module-level app."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from bot.observability.metrics import SLACK_API_ERRORS, slack_error_label
from bot.settings import SlackSettings
from bot.slack.deps import SlackDeps
from bot.slack.listeners import register_listeners

log = logging.getLogger(__name__)
BOLT_LOGGER = "bot.slack.bolt"


class _QuietTokenWarning(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment and warns that it is unused because we pass our own
    client (custom base URL, retry handler), which carries that same token: the warning says nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


_QUIET_TOKEN_WARNING = _QuietTokenWarning()


class CountFailures(AsyncRetryHandler):
    """Counts every failed Web API attempt in roomusers_slack_api_errors_total{method,error}; never retries.

    A retry handler because slack_sdk shows each attempt's response (and each transport error) to its retry
    handlers, and Bolt copies them onto the client it makes for every request, so every call is seen."""

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        method = request.url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or "unknown"
        if error is not None:
            SLACK_API_ERRORS.labels(method, "timeout" if isinstance(error, TimeoutError) else "connection").inc()
        elif response is not None:
            body = response.body if isinstance(response.body, dict) else {}
            if int(response.status_code) != 200 or body.get("ok") is False:
                SLACK_API_ERRORS.labels(method, slack_error_label(body.get("error"), int(response.status_code))).inc()
        return False


def web_client(settings: SlackSettings) -> AsyncWebClient:
    options: dict[str, Any] = {"token": settings.bot_token}
    if settings.api_base_url:
        options["base_url"] = settings.api_base_url
    client = AsyncWebClient(**options)
    client.retry_handlers.insert(0, CountFailures())  # first: it sees every attempt, then lets the others decide
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    return client


def build_app(settings: SlackSettings, deps: SlackDeps) -> AsyncApp:
    bolt_log = logging.getLogger(BOLT_LOGGER)
    bolt_log.addFilter(_QUIET_TOKEN_WARNING)  # once: a logger holds each filter at most once
    app = AsyncApp(
        client=web_client(settings),
        signing_secret=settings.signing_secret,
        # Socket Mode has no signatures to verify; HTTP mode always verifies.
        request_verification_enabled=settings.signing_secret is not None,
        logger=bolt_log,
    )
    register_listeners(app, deps)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("unhandled error in a listener (%s): %s", body.get("type"), error, exc_info=error)

    return app
