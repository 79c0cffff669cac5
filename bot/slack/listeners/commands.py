"""The `/roomusers` slash command: ack at once, answer through the command's response_url."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.observability.audit import AuditRecord
from bot.roster.view import RoomView
from bot.slack.access import Identity, Installation
from bot.slack.delivery import Requester, deliver
from bot.slack.deps import SlackDeps, restarting_message
from bot.slack.parsing import HelpRequest, InvalidRequest, parse_command_text
from bot.slack.render.blocks import loading_text, problem_message, usage_message

COMMAND = "/roomusers"
NOT_ALLOWED = "Not allowed"
SLOW_DOWN = "Too many requests"


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.command(COMMAND)
    async def roomusers_command(
        ack: AsyncAck,
        command: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: AsyncBoltContext,
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
        limited = deps.over_rate(str(command.get("team_id", "")), user)
        if limited is not None:  # answered in the ack: costs nothing, and says when to try again
            await ack(**problem_message(limited, title=SLOW_DOWN).to_payload())
            record.note(room=request.room_id)
            record.emit("rate_limited")
            return
        await ack(text=loading_text(request.room_id))
        record.note(room=request.room_id, profile=request.profile or None, filter=bool(request.filter_text))
        to = Requester(client, user, channel, "command")
        who, home = Identity.from_command(command), Installation.of(context.authorize_result)

        async def tell_to_retry() -> None:
            delivery = await deliver(respond, restarting_message(), to)
            record.note(**delivery.audit())
            record.emit("interrupted")

        async def answer() -> None:
            await answer_command(deps, request, respond, to, record, who=who, home=home)

        try:
            await deps.pending.run(answer, tell_to_retry)
        except asyncio.CancelledError:
            record.ensure("interrupted")
            raise
        finally:
            record.ensure("internal_error")


async def answer_command(
    deps: SlackDeps,
    request: RoomView,
    respond: AsyncRespond,
    to: Requester,
    record: AuditRecord,
    *,
    who: Identity,
    home: Installation | None,
) -> None:
    refusal = await deps.access.refusal(
        who, channel_id=to.channel, profile=request.profile, installation=home, client=to.client
    )
    if refusal is not None:
        refused = await deliver(respond, problem_message(refusal.sentence, title=NOT_ALLOWED), to)
        record.note(refusal=refusal.kind, **refused.audit())
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
    # failure to read the rest (or a queued answer, which showed no page yet) is worth a second message.
    final = await deps.answers.finish(request, answer.pending, shareable=True)
    record.note(**final.audit_fields())
    if final.outcome not in ("ok", "empty") or answer.queued:
        second = await deliver(respond, final.message, to)
        record.note(**second.audit())
        record.emit(second.outcome(final.outcome))
        return
    record.emit(first.outcome(final.outcome))
