"""`@roomusers <room-id>`: the same answer, posted visibly in the mention's thread, once per mention.

A big room's first answer shows ZIM's count and first page while the rest is read; the message is then
updated in place (chat.update) with progress, and with the complete page 1 at the end. Progress edits share
one app-wide budget (`SlackDeps.updates`); the final edit always lands (or is posted anew). A click on the
loading message claims it: from then on the click's page stands.

Not answered: edits of a mention (Slack re-sends `app_mention` with `edited`; the first answer stands, a new
mention asks anew) and mentions written by bots (no loops between bots).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.observability.audit import AuditRecord
from bot.roster.service import RoomRead
from bot.roster.view import RoomView
from bot.slack.access import Identity, Installation
from bot.slack.delivery import Delivery, Requester, deliver, land_final, post_in_thread, slack_call
from bot.slack.deps import SlackDeps, restarting_message
from bot.slack.listeners.actions import view_claim
from bot.slack.listeners.commands import NOT_ALLOWED, SLOW_DOWN
from bot.slack.listeners.watches import watch_mention
from bot.slack.lookups import lookup_answer
from bot.slack.parsing import (
    ChangesRequest,
    HelpRequest,
    InvalidRequest,
    MemberRequest,
    WatchesRequest,
    WatchRequest,
    parse_command_text,
    strip_mention,
)
from bot.slack.render.blocks import Message, problem_message, usage_message

log = logging.getLogger(__name__)


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.event("app_mention")
    async def mentioned(
        event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        channel = str(event.get("channel", ""))
        event_id = str(body.get("event_id") or f"{channel}:{event.get('ts')}")
        if not await deps.deduper.first_sighting(event_id):
            log.info("event %s already answered; ignoring the retry", event_id)
            return
        if event.get("bot_id") or event.get("subtype") == "bot_message" or not event.get("user"):
            AuditRecord("mention", str(event.get("bot_id") or ""), channel).emit("ignored_bot")
            return
        user = str(event["user"])
        if event.get("edited"):  # the answer to the original stands; a new mention asks anew
            AuditRecord("mention", user, channel).emit("ignored_edit")
            return
        record = AuditRecord("mention", user, channel)
        try:
            await answer_mention(deps, event, body, client, context, record)
        except asyncio.CancelledError:
            record.ensure("interrupted")
            raise
        finally:
            record.ensure("internal_error")


async def answer_mention(
    deps: SlackDeps,
    event: dict[str, Any],
    body: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
    record: AuditRecord,
) -> None:
    user, channel = str(event["user"]), str(event["channel"])
    in_thread = Requester(client, user, channel, "mention", thread_ts=str(event.get("thread_ts") or event["ts"]))
    request = parse_command_text(strip_mention(event.get("text") or "", context.bot_user_id))
    # Only the person who asked needs to see a refusal. Not in the mention's own "thread": Slack shows no
    # ephemeral in a thread without replies. A mention inside a real thread keeps it.
    private = Requester(client, user, channel, "mention", thread_ts=event.get("thread_ts"))
    if isinstance(request, WatchRequest | WatchesRequest):
        await watch_mention(deps, request, event, body, client, context, record)
        return
    # The rate limit and access come before anything visible (help, a bad ID, the list of app profiles): a
    # refused user or an outsider must not be able to make the bot post in the channel.
    limited = await deps.over_rate(str(body.get("team_id") or ""), user)
    if limited is not None:
        slowed = await deliver(None, problem_message(limited, title=SLOW_DOWN), private)
        record.note(**slowed.audit())
        record.emit(slowed.outcome("rate_limited"))
        return
    known = (
        deps.answers.with_known_profile(request)
        if isinstance(request, RoomView | ChangesRequest | MemberRequest)
        else None
    )
    refusal = await deps.access.refusal(
        Identity.from_event(body),
        channel_id=channel,
        profile=known.profile if known is not None else "",
        installation=Installation.of(context.authorize_result),
        client=client,
    )
    if refusal is not None:
        if known is not None:
            record.note(room=known.room_id, profile=known.profile or None)
        refused = await deliver(None, problem_message(refusal.sentence, title=NOT_ALLOWED), private)
        record.note(refusal=refusal.kind, **refused.audit())
        record.emit(refused.outcome("refused"))
        return
    if isinstance(request, HelpRequest | InvalidRequest):
        message = (
            usage_message(request.reason) if isinstance(request, HelpRequest) else problem_message(request.problem)
        )
        said = await post_in_thread(message, in_thread)
        record.note(**said.audit())
        record.emit(said.outcome("help" if isinstance(request, HelpRequest) else "invalid_input"))
        return
    if known is None:
        said = await post_in_thread(deps.answers.unknown_profile(request.profile), in_thread)
        record.note(**said.audit())
        record.emit(said.outcome("unknown_profile"))
        return
    request = known
    record.note(room=request.room_id, profile=request.profile or None)
    if not isinstance(request, RoomView):  # --changes, --member: one message in the thread
        record.note(lookup=request.lookup)
        looked_up = request

        placeholders: list[Delivery] = []  # "Reading room X again…" while a --changes reads; the answer replaces it

        async def reading(message: Message) -> None:
            placeholders.append(await post_in_thread(message, in_thread))

        async def answer_in_thread(message: Message) -> Delivery:
            if placeholders and placeholders[0].ok and placeholders[0].ts is not None:
                return await land_final(deps.updates, in_thread, placeholders[0], message)
            return await post_in_thread(message, in_thread)

        async def look_up() -> None:
            answer = await lookup_answer(deps.answers, looked_up, reading=reading)
            record.note(**answer.audit_fields())
            said = await answer_in_thread(answer.message)
            record.note(**said.audit())
            record.emit(said.outcome(answer.outcome))

        async def sorry() -> None:
            if record.emitted is None:
                said = await answer_in_thread(restarting_message())
                record.note(**said.audit())
                record.ensure("interrupted")

        await deps.pending.run(look_up, sorry)
        return
    record.note(filter=bool(request.filter_text))

    posted: list[Delivery] = []
    abandoned = asyncio.Event()

    async def tell_to_retry() -> None:
        if record.emitted is not None:  # answered already: nothing to apologise for
            return
        abandoned.set()
        if posted:  # the loading message itself says so, rather than loading forever
            said = await land_final(deps.updates, in_thread, posted[0], restarting_message())
        else:
            said = await post_in_thread(restarting_message(), in_thread)
        record.note(**said.audit())
        record.ensure("interrupted")  # the answer may have landed while this notice was on its way

    async def reply() -> None:
        answer = await deps.answers.first_page(request, shareable=False)
        record.note(**answer.audit_fields())
        first = await post_in_thread(answer.message, in_thread)
        record.note(**first.audit())
        if answer.pending is None or first.ts is None:
            record.emit(first.outcome(answer.outcome))
            return
        posted.append(first)
        record.note(first_answer=answer.outcome, first_answer_ms=round((time.monotonic() - record.started) * 1000))
        await follow_up(deps, in_thread, first, request, answer.pending, abandoned, record)

    await deps.pending.run(reply, tell_to_retry)


async def claimed(deps: SlackDeps, where: Delivery) -> bool:
    return await deps.deduper.seen(view_claim(str(where.channel), str(where.ts)))


async def follow_up(
    deps: SlackDeps,
    to: Requester,
    where: Delivery,
    request: RoomView,
    pending: RoomRead,
    abandoned: asyncio.Event,
    record: AuditRecord,
) -> None:
    """Update the posted partial answer with progress, then with the complete page 1 (or the failure)."""
    with deps.updates.loading():
        while not pending.done:
            await pending.wait(deps.updates.progress_interval(deps.progress_every))
            if pending.done or abandoned.is_set() or await claimed(deps, where):
                break
            progress = deps.answers.loading_update(request, pending)
            if progress is not None and deps.updates.try_progress():
                await _progress(deps, to, where, progress.message)
    final = await deps.answers.finish(request, pending, shareable=False)
    record.note(**final.audit_fields())
    if abandoned.is_set():
        return  # the shutdown's notice owns the message now
    # A click during loading claimed the message: its page replaces it, and must not be undone by page 1.
    # (A progress edit already under way when the claim came can only land before the click's page, which
    # waits for the whole room; progress stops once the room is read.)
    if await claimed(deps, where):
        record.emit(final.outcome)
        return
    landed = await land_final(deps.updates, to, where, final.message)
    record.note(**landed.audit())
    record.emit(landed.outcome(final.outcome))


async def _progress(deps: SlackDeps, to: Requester, where: Delivery, message: Message) -> None:
    """One progress edit; a failed one is just skipped (the final edit will land), a 429 holds everyone."""
    assert where.channel is not None and where.ts is not None
    call = await slack_call(to.client.chat_update(channel=where.channel, ts=where.ts, **message.to_payload()))
    if call.retry_after is not None:
        deps.updates.hold(call.retry_after)
    elif call.error is not None:
        log.info("progress edit of %s failed: %s", where.ts, call.error)
