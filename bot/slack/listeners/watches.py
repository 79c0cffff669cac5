"""`/roomusers <room> --watch --when-…`, `/roomusers --watches` and their mention forms.

Checked like every request (rate limit, known app profile, access for that profile) before anything is stored
or sent. A command is answered privately; a mention in its thread, where the alert will go too.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.observability.audit import AuditRecord
from bot.slack.access import Identity, Installation
from bot.slack.delivery import Requester, deliver, post_in_thread
from bot.slack.deps import SlackDeps
from bot.slack.parsing import WatchesRequest, WatchRequest
from bot.slack.render.blocks import Message, problem_message
from bot.slack.render.escaping import quote_code

NOT_ALLOWED = "Not allowed"
SLOW_DOWN = "Too many requests"
UNAVAILABLE = "Watches are not available in this roomusers."


async def _refusal(
    deps: SlackDeps,
    request: WatchRequest | WatchesRequest,
    who: Identity,
    *,
    team_id: str,
    user: str,
    channel: str,
    installation: Installation | None,
    client: AsyncWebClient,
    record: AuditRecord,
) -> tuple[Message, str] | None:
    """The refusal (message, audit outcome) when the request can't go on, else None."""
    limited = await deps.over_rate(team_id, user)
    if limited is not None:
        return problem_message(limited, title=SLOW_DOWN), "rate_limited"
    if deps.watches is None:
        return problem_message(UNAVAILABLE), "unavailable"
    profile = ""
    if isinstance(request, WatchRequest):
        record.note(room=request.view.room_id, profile=request.view.profile or None, condition=request.condition.kind)
        known = deps.answers.with_known_profile(request.view)
        if known is None:
            return deps.answers.unknown_profile(request.view.profile), "unknown_profile"
        profile = known.profile
    refusal = await deps.access.refusal(
        who, channel_id=channel, profile=profile, installation=installation, client=client
    )
    if refusal is not None:
        record.note(refusal=refusal.kind)
        return problem_message(refusal.sentence, title=NOT_ALLOWED), "refused"
    return None


async def watch_command(
    deps: SlackDeps,
    request: WatchRequest | WatchesRequest,
    ack: AsyncAck,
    command: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
    record: AuditRecord,
) -> None:
    team_id, user, channel = (str(command.get(key, "")) for key in ("team_id", "user_id", "channel_id"))
    refused = await _refusal(
        deps,
        request,
        Identity.from_command(command),
        team_id=team_id,
        user=user,
        channel=channel,
        installation=Installation.of(context.authorize_result),
        client=client,
        record=record,
    )
    if refused is not None:
        await ack(**refused[0].to_payload())
        record.emit(refused[1])
        return
    assert deps.watches is not None
    if isinstance(request, WatchesRequest):
        await ack(**(await deps.watches.listing(team_id, channel)).to_payload())
        record.emit("watches_listed")
        return
    await ack(text=f"Setting a watch on room {quote_code(request.view.room_id, 64)}…")
    to = Requester(client, user, channel, "command")
    desk = deps.watches

    async def answer() -> None:
        message, outcome = await desk.set(request, team_id=team_id, channel_id=channel, thread_ts=None, creator=user)
        delivered = await deliver(respond, message, to)
        record.note(**delivered.audit())
        record.emit(delivered.outcome(outcome))

    async def interrupted() -> None:
        record.ensure("interrupted")

    await deps.pending.run(answer, interrupted)


async def watch_mention(
    deps: SlackDeps,
    request: WatchRequest | WatchesRequest,
    event: dict[str, Any],
    body: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
    record: AuditRecord,
) -> None:
    user, channel = str(event["user"]), str(event["channel"])
    thread_ts = str(event.get("thread_ts") or event["ts"])
    in_thread = Requester(client, user, channel, "mention", thread_ts=thread_ts)
    private = Requester(client, user, channel, "mention", thread_ts=event.get("thread_ts"))
    team_id = str(body.get("team_id") or "")
    refused = await _refusal(
        deps,
        request,
        Identity.from_event(body),
        team_id=team_id,
        user=user,
        channel=channel,
        installation=Installation.of(context.authorize_result),
        client=client,
        record=record,
    )
    if refused is not None:
        said = await deliver(None, refused[0], private)
        record.note(**said.audit())
        record.emit(said.outcome(refused[1]))
        return
    assert deps.watches is not None
    desk = deps.watches

    async def answer() -> None:
        if isinstance(request, WatchesRequest):
            message, outcome = await desk.listing(team_id, channel), "watches_listed"
        else:
            message, outcome = await desk.set(
                request, team_id=team_id, channel_id=channel, thread_ts=thread_ts, creator=user
            )
        said = await post_in_thread(message, in_thread)
        record.note(**said.audit())
        record.emit(said.outcome(outcome))

    async def interrupted() -> None:
        record.ensure("interrupted")

    await deps.pending.run(answer, interrupted)
