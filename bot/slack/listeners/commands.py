"""The `/roomusers` slash command: ack at once, answer through the command's response_url."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.observability.audit import AuditRecord
from bot.roster.view import RoomView
from bot.slack.delivery import Requester, deliver
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
        to = Requester(client, user, channel, "command")

        async def tell_to_retry() -> None:
            delivery = await deliver(respond, restarting_message(), to)
            record.note(**delivery.audit())
            record.emit("interrupted")

        try:
            await deps.pending.run(lambda: answer_command(deps, request, respond, to, record), tell_to_retry)
        except asyncio.CancelledError:
            record.ensure("interrupted")
            raise
        finally:
            record.ensure("internal_error")


async def answer_command(
    deps: SlackDeps, request: RoomView, respond: AsyncRespond, to: Requester, record: AuditRecord
) -> None:
    refusal = await deps.access.refusal(user_id=to.user, channel_id=to.channel, client=to.client)
    if refusal is not None:
        refused = await deliver(respond, problem_message(refusal, title=NOT_ALLOWED), to)
        record.note(**refused.audit())
        record.emit(refused.outcome("refused"))
        return
    answer = await deps.answers.first_page(request, shareable=True)
    record.note(**answer.audit_fields())
    first = await deliver(respond, answer.message, to)
    record.note(**first.audit())
    if answer.pending is None:
        record.emit(first.outcome(answer.outcome))
        return
    # A big room: the first page went out while the rest is read. The request's outcome is the final one.
    record.note(first_answer=answer.outcome)
    # A command's own response_url can't replace its answer: later pages come with clicks. Only a
    # failure to read the rest is worth a second message.
    final = await deps.answers.finish(request, answer.pending, shareable=True)
    record.note(**final.audit_fields())
    if final.outcome not in ("ok", "empty"):
        failed = await deliver(respond, final.message, to)
        record.note(**failed.audit())
        record.emit(failed.outcome(final.outcome))
        return
    record.emit(first.outcome(final.outcome))
