"""`@roomusers <room-id>`: the same answer, posted visibly in the mention's thread, once per event."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.dedupe import EventDeduper
from bot.slack.answers import RoomAnswers
from bot.slack.blocks import Message, loading_text, problem_message, usage_message
from bot.slack.parsing import HelpRequest, InvalidRequest, parse_command_text, strip_mention

log = logging.getLogger(__name__)

# An answer slower than this first shows a "fetching" reply, which the answer then replaces.
LOADING_AFTER_SECONDS = 1.5


def register(app: AsyncApp, answers: RoomAnswers, deduper: EventDeduper) -> None:
    @app.event("app_mention")
    async def mentioned(
        event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        event_id = str(body.get("event_id") or f"{event.get('channel')}:{event.get('ts')}")
        if not await deduper.first_sighting(event_id):
            log.info("event %s already answered; ignoring the retry", event_id)
            return
        channel = event["channel"]
        thread_ts = event.get("thread_ts") or event["ts"]
        request = parse_command_text(strip_mention(event.get("text") or "", context.bot_user_id))
        if isinstance(request, HelpRequest):
            await post(client, channel, thread_ts, usage_message(request.reason))
            return
        if isinstance(request, InvalidRequest):
            await post(client, channel, thread_ts, problem_message(request.problem))
            return
        answer = asyncio.create_task(answers.first_page(request))
        done, _ = await asyncio.wait({answer}, timeout=LOADING_AFTER_SECONDS)
        if done:
            await post(client, channel, thread_ts, answer.result())
            return
        placeholder = await client.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=loading_text(request.room_id), unfurl_links=False
        )
        message = await answer
        await client.chat_update(channel=channel, ts=placeholder["ts"], **message.to_payload())


async def post(client: AsyncWebClient, channel: str, thread_ts: str, message: Message) -> None:
    await client.chat_postMessage(
        channel=channel, thread_ts=thread_ts, unfurl_links=False, unfurl_media=False, **message.to_payload()
    )
