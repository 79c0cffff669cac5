"""The `/roomusers` slash command: ack at once, answer through the command's response_url."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.observability.audit import AuditRecord
from bot.roster.view import RoomView
from bot.slack.access import Identity, Installation, Refusal
from bot.slack.delivery import Requester, deliver
from bot.slack.deps import SlackDeps, restarting_message
from bot.slack.listeners.watches import watch_command
from bot.slack.lookups import lookup_answer
from bot.slack.parsing import (
    HelpRequest,
    InvalidRequest,
    LookupRequest,
    WatchesRequest,
    WatchRequest,
    parse_command_text,
)
from bot.slack.render.blocks import loading_text, problem_message, usage_message

COMMAND = "/roomusers"
NOT_ALLOWED = "Not allowed"
SLOW_DOWN = "Too many requests"
# How long the ack waits for the access check, so a refused user never sees "Fetching…" first. The lists are
# in memory and group membership is cached, so only a first usergroups.users.list takes any time at all.
ACCESS_BEFORE_ACK_SECONDS = 1.5


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
        if isinstance(request, WatchRequest | WatchesRequest):
            await watch_command(deps, request, ack, command, respond, client, context, record)
            return
        limited = await deps.over_rate(str(command.get("team_id", "")), user)
        if limited is not None:  # answered in the ack: costs nothing, and says when to try again
            await ack(**problem_message(limited, title=SLOW_DOWN).to_payload())
            record.note(room=request.room_id)
            record.emit("rate_limited")
            return
        known = deps.answers.with_known_profile(request)
        if known is None:
            await ack(**deps.answers.unknown_profile(request.profile).to_payload())
            record.emit("unknown_profile")
            return
        request = known
        who, home = Identity.from_command(command), Installation.of(context.authorize_result)
        access = asyncio.ensure_future(
            deps.access.refusal(who, channel_id=channel, profile=request.profile, installation=home, client=client)
        )
        # asyncio.wait, not wait_for: a slow check goes on (its shared membership fetch is never cancelled).
        decided, _ = await asyncio.wait({access}, timeout=ACCESS_BEFORE_ACK_SECONDS)
        if decided and access.exception() is None and (early := access.result()) is not None:
            await ack(**problem_message(early.sentence, title=NOT_ALLOWED).to_payload())
            record.note(room=request.room_id, refusal=early.kind)
            record.emit("refused")
            return
        if decided:
            await ack(text=loading_text(request.room_id))
        else:
            await ack()  # still undecided: acknowledge without promising an answer
        record.note(room=request.room_id, profile=request.profile or None)
        if isinstance(request, RoomView):
            record.note(filter=bool(request.filter_text))
        else:
            record.note(lookup=request.lookup)
        to = Requester(client, user, channel, "command")

        async def tell_to_retry() -> None:
            if record.emitted is not None:  # answered already: nothing to apologise for
                return
            delivery = await deliver(respond, restarting_message(), to)
            record.note(**delivery.audit())
            record.ensure("interrupted")  # the answer may have landed while this notice was on its way

        async def answer() -> None:
            await answer_command(deps, request, respond, to, record, access)

        try:
            await deps.pending.run(answer, tell_to_retry)
        except asyncio.CancelledError:
            record.ensure("interrupted")
            raise
        finally:
            record.ensure("internal_error")


async def answer_command(
    deps: SlackDeps,
    request: RoomView | LookupRequest,
    respond: AsyncRespond,
    to: Requester,
    record: AuditRecord,
    access: Awaitable[Refusal | None],
) -> None:
    refusal = await access
    if refusal is not None:
        refused = await deliver(respond, problem_message(refusal.sentence, title=NOT_ALLOWED), to)
        record.note(refusal=refusal.kind, **refused.audit())
        record.emit(refused.outcome("refused"))
        return
    if isinstance(request, RoomView):
        answer = await deps.answers.first_page(request, shareable=True)
    else:  # --changes, --member: one message
        answer = await lookup_answer(deps.answers, request)
    record.note(**answer.audit_fields())
    first = await deliver(respond, answer.message, to)
    record.note(**first.audit())
    if answer.pending is None or not isinstance(request, RoomView):
        record.emit(first.outcome(answer.outcome))
        return
    # A big room: the first page went out while the rest is read. The request's outcome is the final one,
    # so the audit line waits for the read to end and records what the list turned out to be.
    record.note(first_answer=answer.outcome, first_answer_ms=round((time.monotonic() - record.started) * 1000))
    # A command's own response_url can't replace its answer: later pages come with clicks. Only a failure to
    # read the rest, a list that turned out incomplete, or a queued answer (no page yet) is worth a second one.
    final = await deps.answers.finish(request, answer.pending, shareable=True)
    record.note(**final.audit_fields())
    incomplete = final.roster is not None and not final.roster.complete
    if final.outcome not in ("ok", "empty") or incomplete or answer.queued:
        second = await deliver(respond, final.message, to)
        record.note(**second.audit())
        record.emit(second.outcome(final.outcome))
        return
    record.emit(first.outcome(final.outcome))
