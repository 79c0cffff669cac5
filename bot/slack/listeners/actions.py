"""The buttons under an answer: paging, order, refresh, share and CSV export.

A button's value carries all the state it needs (room, page, order, filter, profile), so any replica can
serve the click. Each click is checked against the access policy like a command, and page changes replace
the clicked message in place through the click's own response_url.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.observability.audit import AuditRecord
from bot.roster.view import RoomView
from bot.slack.answers import Answer
from bot.slack.delivery import deliver
from bot.slack.deps import SlackDeps, restarting_message
from bot.slack.export import ExportTarget, upload_roster_csv
from bot.slack.listeners.commands import NOT_ALLOWED
from bot.slack.render.blocks import problem_message
from bot.slack.render.buttons import StaleButton, decode_view
from bot.slack.render.escaping import escape_mrkdwn

VIEW_ACTIONS = re.compile(r"^roomusers_(prev|next|order|refresh)$")
SHARE_ACTION = "roomusers_share"
EXPORT_ACTION = "roomusers_export"
STALE_BUTTON = (
    "This button comes from an older version of roomusers and can't be used any more; "
    "run `/roomusers &lt;room-id&gt;` again."
)


class _Click:
    """The parts of a block_actions payload the handlers use."""

    def __init__(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        self.action_id = str(action.get("action_id", ""))
        self.value = str(action.get("value", ""))
        self.user = str((body.get("user") or {}).get("id", ""))
        container = body.get("container") or {}
        self.channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
        self.ephemeral = bool(container.get("is_ephemeral"))
        message = body.get("message") or {}
        self.thread_ts: str | None = message.get("thread_ts")


async def _start(
    click: _Click, deps: SlackDeps, respond: AsyncRespond, client: AsyncWebClient
) -> tuple[RoomView | None, AuditRecord]:
    """Decode the button and check access; answer (and return None) when the click can't go on."""
    record = AuditRecord(f"action:{click.action_id}", click.user, click.channel)
    fallback = (client, click.channel, click.user)
    try:
        ref = decode_view(click.value)
    except StaleButton:
        await deliver(respond, problem_message(STALE_BUTTON), fallback=fallback, replace_original=False)
        record.emit("stale_button")
        return None, record
    record.note(room=ref.room_id, profile=ref.profile or None, page=ref.page)
    refusal = await deps.access.refusal(user_id=click.user, channel_id=click.channel, client=client)
    if refusal is not None:
        message = problem_message(refusal, title=NOT_ALLOWED)
        await deliver(respond, message, fallback=fallback, response_type="ephemeral", replace_original=False)
        record.emit("refused")
        return None, record
    return ref, record


Work = Callable[[_Click, SlackDeps, AsyncRespond, AsyncWebClient], Awaitable[None]]


def register(app: AsyncApp, deps: SlackDeps) -> None:
    def listener(work: Work) -> Callable[..., Awaitable[None]]:
        """Ack at once, then do `work` as a tracked job that a shutdown finishes or turns into "try again"."""

        async def handle(
            ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
        ) -> None:
            await ack()
            click = _Click(body, action)

            async def tell_to_retry() -> None:
                fallback = (client, click.channel, click.user)
                await deliver(respond, restarting_message(), fallback=fallback, replace_original=False)

            await deps.pending.run(lambda: work(click, deps, respond, client), tell_to_retry)

        return handle

    app.action(VIEW_ACTIONS)(listener(change_view))
    app.action(SHARE_ACTION)(listener(share))
    app.action(EXPORT_ACTION)(listener(export))


async def change_view(click: _Click, deps: SlackDeps, respond: AsyncRespond, client: AsyncWebClient) -> None:
    """Prev/Next, the order toggle and Refresh: the clicked message is replaced in place."""
    ref, record = await _start(click, deps, respond, client)
    if ref is None:
        return
    refresh = click.action_id == "roomusers_refresh"
    fallback = (client, click.channel, click.user)
    placeholder = None
    if refresh:
        # A big room takes a while to read again: show at once that it is being refreshed.
        placeholder = await deps.answers.refreshing(ref)
        if placeholder is not None:
            await deliver(respond, placeholder, fallback=fallback, replace_original=True)
    answer = await deps.answers.page(ref, shareable=click.ephemeral, refresh=refresh)
    if placeholder is not None and answer.outcome not in ("ok", "empty", "loading"):
        # The refresh failed: put back the page (with its buttons, to try again) before saying why.
        restored = await deps.answers.page(ref, shareable=click.ephemeral)
        if restored.outcome in ("ok", "empty"):
            await deliver(respond, restored.message, fallback=fallback, replace_original=True)
    if answer.pending is not None:
        # A page already read (or "not read yet") while the read goes on; the whole page replaces it at the end.
        await deliver(respond, answer.message, fallback=fallback, replace_original=True)
        answer = await deps.answers.finish_page(ref, answer.pending, shareable=click.ephemeral)
    await _replace(respond, answer, click, client, record)


async def share(click: _Click, deps: SlackDeps, respond: AsyncRespond, client: AsyncWebClient) -> None:
    ref, record = await _start(click, deps, respond, client)
    if ref is None:
        return
    answer = await deps.answers.page(ref, shareable=False, shared_by=click.user)
    if answer.pending is not None:  # only a whole page is shared with the channel
        answer = await deps.answers.finish_page(ref, answer.pending, shareable=False, shared_by=click.user)
    record.note(**answer.audit_fields())
    fallback = (client, click.channel, click.user)
    if answer.outcome not in ("ok", "empty"):
        await deliver(respond, answer.message, fallback=fallback, replace_original=False)
        record.emit(answer.outcome)
        return
    # response_type in_channel on the click's URL posts a new, visible message in the conversation.
    if await deliver(respond, answer.message, response_type="in_channel", replace_original=False):
        record.emit(answer.outcome)
        return
    sorry = problem_message("Slack did not accept the shared page; try Share again in a moment.", title="Not shared")
    await deliver(respond, sorry, fallback=fallback, replace_original=False)
    record.emit("share_failed")


async def export(click: _Click, deps: SlackDeps, respond: AsyncRespond, client: AsyncWebClient) -> None:
    ref, record = await _start(click, deps, respond, client)
    if ref is None:
        return
    fallback = (client, click.channel, click.user)
    roster = await deps.answers.roster(ref)
    if isinstance(roster, Answer):
        await deliver(respond, roster.message, fallback=fallback, replace_original=False)
        record.emit(roster.outcome)
        return
    # An answer only the requester sees must not leak into the channel: its export goes to a DM.
    target = (
        ExportTarget(channel_id=click.channel, direct_to_user=click.user)
        if click.ephemeral
        else ExportTarget(channel_id=click.channel, thread_ts=click.thread_ts)
    )
    problem = await upload_roster_csv(
        client,
        room_id=ref.room_id,
        users=roster.ordered(newest_first=ref.newest_first),
        fetched_at=roster.fetched_at,
        target=target,
        requested_by=click.user,
        profile=ref.profile,
        problem=roster.problem,
    )
    record.note(room_users=len(roster.users), complete=roster.complete, shortfall=roster.shortfall)
    if problem is not None:
        message = problem_message(problem, title="Can't export that room")
        await deliver(respond, message, fallback=fallback, response_type="ephemeral", replace_original=False)
        record.emit("export_failed")
        return
    where = "your direct messages with roomusers" if click.ephemeral else "this conversation"
    sent = (
        f"The CSV of all {len(roster.users):,} users was sent to {where}."
        if roster.complete
        else f"The CSV of the {len(roster.users):,} users read was sent to {where}; "
        f"it is incomplete: {escape_mrkdwn(roster.problem)}."
    )
    done = problem_message(sent, title="Exported")
    await deliver(respond, done, fallback=fallback, response_type="ephemeral", replace_original=False)
    record.emit("ok")


async def _replace(
    respond: AsyncRespond, answer: Answer, click: _Click, client: AsyncWebClient, record: AuditRecord
) -> None:
    record.note(**answer.audit_fields())
    fallback = (client, click.channel, click.user)
    if answer.outcome in ("ok", "empty"):
        # If the click's response_url fails, the page arrives as a new private message instead.
        await deliver(respond, answer.message, fallback=fallback, replace_original=True)
    else:  # keep the page the user was looking at; say what went wrong beside it
        await deliver(respond, answer.message, fallback=fallback, replace_original=False)
    record.emit(answer.outcome)
