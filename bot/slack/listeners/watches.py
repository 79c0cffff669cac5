"""`/roomusers <room> --watch --when-…`, `/roomusers --watches` and their mention forms.

Checked like every request (rate limit, known app profile, access for that profile) before anything is stored
or sent. A command is answered privately; a mention in its thread, where the alert will go too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.observability.audit import AuditRecord
from bot.slack.access import Identity, Installation, Refusal
from bot.slack.delivery import Requester, deliver, post_in_thread
from bot.slack.deps import SlackDeps
from bot.slack.parsing import WatchesRequest, WatchRequest
from bot.slack.render.blocks import Message, problem_message
from bot.slack.render.escaping import quote_code

NOT_ALLOWED = "Not allowed"
SLOW_DOWN = "Too many requests"
UNAVAILABLE = "Watches are not available in this roomusers."


@dataclass(frozen=True, slots=True)
class Asker:
    """Who sent a watch request, from where, through which installation and client."""

    who: Identity
    team_id: str
    user: str
    channel: str
    installation: Installation | None
    client: AsyncWebClient


async def allowed_profiles(deps: SlackDeps, asker: Asker) -> tuple[set[str], Refusal | None]:
    """The app profiles whose watches `asker` may see and stop, and the refusal if that is none of them."""
    assert deps.watches is not None
    allowed: set[str] = set()
    first: Refusal | None = None
    for profile in deps.watches.zego_apps.by_profile:
        refusal = await deps.access.refusal(
            asker.who,
            channel_id=asker.channel,
            profile=profile,
            installation=asker.installation,
            client=asker.client,
        )
        if refusal is None:
            allowed.add(profile)
        else:
            first = first or refusal
    return allowed, (first if not allowed else None)


async def _refusal(
    deps: SlackDeps, request: WatchRequest | WatchesRequest, asker: Asker, record: AuditRecord
) -> tuple[Message, str] | None:
    """The refusal (message, audit outcome) when the request can't go on, else None."""
    limited = await deps.over_rate(asker.team_id, asker.user)
    if limited is not None:
        return problem_message(limited, title=SLOW_DOWN), "rate_limited"
    if deps.watches is None:
        return problem_message(UNAVAILABLE), "unavailable"
    if isinstance(request, WatchesRequest):
        _, refusal = await allowed_profiles(deps, asker)  # listed per app: see `listing`
    else:
        record.note(room=request.view.room_id, profile=request.view.profile or None, condition=request.condition.kind)
        known = deps.answers.with_known_profile(request.view)
        if known is None:
            return deps.answers.unknown_profile(request.view.profile), "unknown_profile"
        refusal = await deps.access.refusal(
            asker.who,
            channel_id=asker.channel,
            profile=known.profile,
            installation=asker.installation,
            client=asker.client,
        )
    if refusal is not None:
        record.note(refusal=refusal.kind)
        return problem_message(refusal.sentence, title=NOT_ALLOWED), "refused"
    return None


async def listing(deps: SlackDeps, asker: Asker) -> Message:
    """This conversation's watches of the apps `asker` may use (access checked per watch's app)."""
    assert deps.watches is not None
    allowed, _ = await allowed_profiles(deps, asker)
    return await deps.watches.listing(asker.team_id, asker.channel, profiles=allowed)


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
    asker = Asker(
        Identity.from_command(command), team_id, user, channel, Installation.of(context.authorize_result), client
    )
    refused = await _refusal(deps, request, asker, record)
    if refused is not None:
        await ack(**refused[0].to_payload())
        record.emit(refused[1])
        return
    assert deps.watches is not None
    if isinstance(request, WatchesRequest):
        await ack(**(await listing(deps, asker)).to_payload())
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
    asker = Asker(Identity.from_event(body), team_id, user, channel, Installation.of(context.authorize_result), client)
    refused = await _refusal(deps, request, asker, record)
    if refused is not None:
        said = await deliver(None, refused[0], private)
        record.note(**said.audit())
        record.emit(said.outcome(refused[1]))
        return
    assert deps.watches is not None
    desk = deps.watches

    async def answer() -> None:
        if isinstance(request, WatchesRequest):
            message, outcome = await listing(deps, asker), "watches_listed"
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
