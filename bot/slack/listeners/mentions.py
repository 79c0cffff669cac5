"""`@roomusers <room-id>`: the same answer, posted visibly in the mention's thread, once per event.

A big room's first answer shows ZIM's count and first page while the rest is read; the message is then
updated in place (chat.update) with progress every few seconds and with the complete page 1 at the end.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.observability.audit import AuditRecord
from bot.roster.service import RoomRead
from bot.roster.view import RoomView
from bot.slack.answers import Answer
from bot.slack.deps import SlackDeps, restarting_message
from bot.slack.listeners.commands import NOT_ALLOWED
from bot.slack.parsing import HelpRequest, InvalidRequest, parse_command_text, strip_mention
from bot.slack.render.blocks import Message, problem_message, usage_message

log = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 3.0  # chat.update is Tier 3 (~50/min): a few updates per fetch is well within it


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.event("app_mention")
    async def mentioned(
        event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        event_id = str(body.get("event_id") or f"{event.get('channel')}:{event.get('ts')}")
        if not await deps.deduper.first_sighting(event_id):
            log.info("event %s already answered; ignoring the retry", event_id)
            return
        user, channel = str(event.get("user", "")), str(event["channel"])
        thread_ts = str(event.get("thread_ts") or event["ts"])
        record = AuditRecord("mention", user, channel)
        request = parse_command_text(strip_mention(event.get("text") or "", context.bot_user_id))
        if isinstance(request, HelpRequest):
            await post(client, channel, thread_ts, usage_message(request.reason))
            record.emit("help")
            return
        if isinstance(request, InvalidRequest):
            await post(client, channel, thread_ts, problem_message(request.problem))
            record.emit("invalid_input")
            return
        record.note(room=request.room_id, profile=request.profile or None, filter=bool(request.filter_text))
        refusal = await deps.access.refusal(user_id=user, channel_id=channel, client=client)
        if refusal is not None:
            # Only the person who asked needs to see the refusal.
            await client.chat_postEphemeral(
                channel=channel,
                user=user,
                thread_ts=thread_ts,
                **problem_message(refusal, title=NOT_ALLOWED).to_payload(),
            )
            record.emit("refused")
            return

        async def tell_to_retry() -> None:
            await post(client, channel, thread_ts, restarting_message())
            record.emit("interrupted")

        async def reply() -> None:
            answer = await deps.answers.first_page(request, shareable=False)
            record.note(**answer.audit_fields())
            ts = await post(client, channel, thread_ts, answer.message)
            if answer.pending is None or ts is None:
                record.emit(answer.outcome)
                return
            # The audit line waits for the read to end, so it records what the list turned out to be.
            record.note(first_answer_ms=round((time.monotonic() - record.started) * 1000))
            final = await follow_up(deps, client, channel, ts, request, answer.pending)
            record.note(**final.audit_fields())
            record.emit(final.outcome)

        await deps.pending.run(reply, tell_to_retry)


async def follow_up(
    deps: SlackDeps, client: AsyncWebClient, channel: str, ts: str, request: RoomView, pending: RoomRead
) -> Answer:
    """Update the posted partial answer with progress, then with the complete page 1 (or the failure)."""
    while not pending.done:
        await pending.wait(PROGRESS_EVERY_SECONDS)
        if pending.done:
            break
        progress = deps.answers.loading_update(request, pending)
        if progress is not None:
            await update(client, channel, ts, progress.message)
    final: Answer = await deps.answers.finish(request, pending, shareable=False)
    await update(client, channel, ts, final.message)
    return final


async def post(client: AsyncWebClient, channel: str, thread_ts: str, message: Message) -> str | None:
    try:
        response = await client.chat_postMessage(
            channel=channel, thread_ts=thread_ts, unfurl_links=False, unfurl_media=False, **message.to_payload()
        )
    except SlackApiError as error:
        log.warning("chat.postMessage failed: %s", error.response.get("error"))
        return None
    return str(response.get("ts") or "") or None


async def update(client: AsyncWebClient, channel: str, ts: str, message: Message) -> None:
    try:
        await client.chat_update(channel=channel, ts=ts, **message.to_payload())
    except SlackApiError as error:
        log.warning("chat.update failed: %s", error.response.get("error"))
