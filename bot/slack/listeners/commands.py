"""The `/roomusers` slash command: ack at once, answer through the command's response_url."""

from __future__ import annotations

import time
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.observability.audit import AuditRecord
from bot.roster.view import RoomView
from bot.slack.delivery import deliver
from bot.slack.deps import SlackDeps, restarting_message
from bot.slack.parsing import HelpRequest, InvalidRequest, parse_command_text
from bot.slack.render.blocks import loading_text, problem_message, usage_message

COMMAND = "/roomusers"
NOT_ALLOWED = "Not allowed"


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.command(COMMAND)
    async def roomusers_command(
        ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        user, channel = str(command.get("user_id", "")), str(command.get("channel_id", ""))
        record = AuditRecord("command", user, channel)
        request = parse_command_text(command.get("text") or "")
        # Help and bad input are answered in the ack itself: instant, and no response_url use.
        if isinstance(request, HelpRequest):
            await ack(**usage_message(request.reason).to_payload())
            record.emit("help")
            return
        if isinstance(request, InvalidRequest):
            await ack(**problem_message(request.problem).to_payload())
            record.emit("invalid_input")
            return
        await ack(text=loading_text(request.room_id))
        record.note(room=request.room_id, profile=request.profile or None, filter=bool(request.filter_text))
        fallback = (client, channel, user)

        async def tell_to_retry() -> None:
            await deliver(respond, restarting_message(), fallback=fallback, replace_original=False)
            record.emit("interrupted")

        await deps.pending.run(lambda: answer_command(deps, request, respond, fallback, record), tell_to_retry)


async def answer_command(
    deps: SlackDeps,
    request: RoomView,
    respond: AsyncRespond,
    fallback: tuple[AsyncWebClient, str, str],
    record: AuditRecord,
) -> None:
    client, channel, user = fallback
    refusal = await deps.access.refusal(user_id=user, channel_id=channel, client=client)
    if refusal is not None:
        await deliver(respond, problem_message(refusal, title=NOT_ALLOWED), fallback=fallback)
        record.emit("refused")
        return
    answer = await deps.answers.first_page(request, shareable=True)
    record.note(**answer.audit_fields())
    await deliver(respond, answer.message, fallback=fallback, response_type="ephemeral", replace_original=False)
    if answer.pending is None:
        record.emit(answer.outcome)
        return
    # The audit line waits for the read to end, so it records what the list turned out to be.
    record.note(first_answer_ms=round((time.monotonic() - record.started) * 1000))
    # A command's own response_url can't replace its answer: later pages come with clicks. Only a
    # failure to read the rest, or a list that turned out incomplete, is worth a second message.
    final = await deps.answers.finish(request, answer.pending, shareable=True)
    record.note(**final.audit_fields())
    incomplete = final.roster is not None and not final.roster.complete
    if final.outcome not in ("ok", "empty") or incomplete:
        await deliver(respond, final.message, fallback=fallback, replace_original=False)
    record.emit(final.outcome)
