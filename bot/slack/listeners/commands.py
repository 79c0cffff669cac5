"""The `/roomusers` slash command: ack at once, answer through the command's response_url."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
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
# How long the ack waits for the access check, so a refused user never sees "Fetching…" first. The lists are
# in memory and group membership is cached, so only a first usergroups.users.list takes any time at all.
ACCESS_BEFORE_ACK_SECONDS = 1.5


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
        known = deps.answers.with_known_profile(request)
        if known is None:
            await ack(**deps.answers.unknown_profile(request.profile).to_payload())
            record.emit("unknown_profile")
            return
        request = known
        access = asyncio.ensure_future(deps.access.refusal(user_id=user, channel_id=channel, client=client))
        # asyncio.wait, not wait_for: a slow check goes on (its shared membership fetch is never cancelled).
        decided, _ = await asyncio.wait({access}, timeout=ACCESS_BEFORE_ACK_SECONDS)
        if decided and access.exception() is None and (refusal := access.result()) is not None:
            await ack(**problem_message(refusal, title=NOT_ALLOWED).to_payload())
            record.emit("refused")
            return
        if decided:
            await ack(text=loading_text(request.room_id))
        else:
            await ack()  # still undecided: acknowledge without promising an answer
        record.note(room=request.room_id, profile=request.profile or None, filter=bool(request.filter_text))
        fallback = (client, channel, user)

        async def tell_to_retry() -> None:
            await deliver(respond, restarting_message(), fallback=fallback, replace_original=False)
            record.emit("interrupted")

        await deps.pending.run(lambda: answer_command(deps, request, respond, fallback, record, access), tell_to_retry)


async def answer_command(
    deps: SlackDeps,
    request: RoomView,
    respond: AsyncRespond,
    fallback: tuple[AsyncWebClient, str, str],
    record: AuditRecord,
    access: Awaitable[str | None],
) -> None:
    refusal = await access
    if refusal is not None:
        await deliver(respond, problem_message(refusal, title=NOT_ALLOWED), fallback=fallback)
        record.emit("refused")
        return
    answer = await deps.answers.first_page(request, shareable=True)
    record.note(**answer.audit_fields())
    await deliver(respond, answer.message, fallback=fallback, response_type="ephemeral", replace_original=False)
    record.emit(answer.outcome)
    if answer.pending is not None:
        # A command's own response_url can't replace its answer: later pages come with clicks. Only a
        # failure to read the rest is worth a second message.
        final = await deps.answers.finish(request, answer.pending, shareable=True)
        if final.outcome not in ("ok", "empty"):
            await deliver(respond, final.message, fallback=fallback, replace_original=False)
