"""Posting answers: response_url first (no scope, works in any conversation), chat.postEphemeral as fallback."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.observability.metrics import SLACK_API_ERRORS, slack_error_label
from bot.slack.render.blocks import Message

log = logging.getLogger(__name__)


async def deliver(
    respond: AsyncRespond,
    message: Message,
    *,
    fallback: tuple[AsyncWebClient, str, str] | None = None,
    **options: Any,
) -> bool:
    """Post through response_url; if that fails and `fallback` = (client, channel, user) is given, post the
    message ephemerally with chat.postEphemeral instead, so the user still gets an answer."""
    try:
        response = await respond(**message.to_payload(), **options)
        if response.status_code == 200:
            return True
        log.warning("response_url answered HTTP %s: %s", response.status_code, (response.body or "")[:200])
        SLACK_API_ERRORS.labels("response_url", slack_error_label(response.body, response.status_code)).inc()
    except TimeoutError:
        SLACK_API_ERRORS.labels("response_url", "timeout").inc()
        # The post was sent and may still land: posting again could show the answer twice. Slack answers
        # response_urls in well under Bolt's 30 s timeout, so this is rare; a duplicate would be worse.
        log.warning("response_url did not answer in time; not posting the answer a second time")
        return False
    except Exception as error:  # a dead response_url must not lose the answer
        log.warning("response_url failed: %s", type(error).__name__)
        SLACK_API_ERRORS.labels("response_url", "connection").inc()
    if fallback is None:
        return False
    client, channel, user = fallback
    try:
        await client.chat_postEphemeral(channel=channel, user=user, **message.to_payload())
        return True
    except SlackApiError as error:
        log.warning("chat.postEphemeral fallback failed: %s", error.response.get("error"))
        return False
