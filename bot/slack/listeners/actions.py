"""The buttons under an answer: paging, order, refresh, share and CSV export.

A button's value carries all the state it needs (room, page, order, filter, profile), so any replica can
serve the click. Each click is checked against the access policy like a command, and page changes replace
the clicked message in place through the click's own response_url.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.observability.audit import AuditRecord
from bot.roster.view import RoomView
from bot.slack.access import Identity, Installation
from bot.slack.answers import Answer
from bot.slack.delivery import Delivery, Requester, deliver, land_final
from bot.slack.deps import SlackDeps, restarting_message
from bot.slack.export import Exported, ExportTarget, upload_roster_csv
from bot.slack.listeners.commands import NOT_ALLOWED, SLOW_DOWN
from bot.slack.listeners.watches import Asker
from bot.slack.listeners.watches import listing as watch_listing
from bot.slack.lookups import changes_answer, changes_page_answer
from bot.slack.parsing import ChangesRequest
from bot.slack.render.blocks import CHANGES_ACTION_ID, Message, notice_message, problem_message, with_note
from bot.slack.render.buttons import StaleButton, decode_view
from bot.slack.render.changes import ChangesPage, decode_changes_page
from bot.slack.render.escaping import clean_untrusted, escape_mrkdwn
from bot.slack.render.watches import SHOW_USERS_ACTION_ID, STOP_ACTION_ID
from bot.slack.watches import ALREADY_ENDED, STOPPED, STORE_DOWN
from bot.state.health import REDIS_UNAVAILABLE

VIEW_ACTIONS = re.compile(r"^roomusers_(prev|next|order|refresh)$")
SHARE_ACTION = "roomusers_share"
EXPORT_ACTION = "roomusers_export"
EXPORT_MATCHES_ACTION = "roomusers_export_matches"
CHANGES_PAGE_ACTIONS = re.compile(r"^roomusers_changes_(prev|next)$")
STALE_BUTTON = (
    "This button comes from an older version of roomusers and can't be used any more; "
    "run `/roomusers &lt;room-id&gt;` again."
)
SHARE_UNCONFIRMED = (
    "Slack didn't confirm the share in time; it may already be in the conversation. Check before sharing again."
)


def view_claim(channel: str, message_ts: str) -> str:
    """The deduper key a click on a loading mention answer sets, so the mention's updates stop redrawing it."""
    return f"view:{channel}:{message_ts}"


class _Click:
    """The parts of a block_actions payload the handlers use."""

    def __init__(
        self, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient, home: Installation | None = None
    ) -> None:
        self.who = Identity.from_action(body)
        self.home = home
        self.action_id = str(action.get("action_id", ""))
        self.value = str(action.get("value", ""))
        self.user = str((body.get("user") or {}).get("id", ""))
        self.team = str((body.get("user") or {}).get("team_id") or (body.get("team") or {}).get("id") or "")
        container = body.get("container") or {}
        self.channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
        self.ephemeral = bool(container.get("is_ephemeral"))
        self.message_ts = str(container.get("message_ts") or "")
        message = body.get("message") or {}
        # A mention's answer lives in a thread (with replies): notices about the click go there too.
        self.thread_ts: str | None = message.get("thread_ts")
        self.to = Requester(client, self.user, self.channel, "action", thread_ts=self.thread_ts)


async def _tell(respond: AsyncRespond, click: _Click, record: AuditRecord, message: Any, outcome: str) -> None:
    """Send a notice (never replacing the clicked message) and emit the click's outcome with how it went."""
    delivery = await deliver(respond, message, click.to)
    record.note(**delivery.audit())
    record.emit(delivery.outcome(outcome))


Ref = TypeVar("Ref", RoomView, ChangesPage)


async def _start(
    click: _Click, deps: SlackDeps, respond: AsyncRespond, client: AsyncWebClient, record: AuditRecord
) -> RoomView | None:
    """Decode the button's RoomView and check access; answer (and return None) when the click can't go on."""
    return await _start_with(click, deps, respond, client, record, decode=decode_view)


async def _start_with(
    click: _Click,
    deps: SlackDeps,
    respond: AsyncRespond,
    client: AsyncWebClient,
    record: AuditRecord,
    *,
    decode: Callable[[str], Ref],
) -> Ref | None:
    """`_start` for any button value `decode` reads (a RoomView, or a page of a list of changes)."""
    try:
        ref = decode(click.value)
    except StaleButton:
        await _tell(respond, click, record, problem_message(STALE_BUTTON), "stale_button")
        return None
    record.note(room=ref.room_id, profile=ref.profile or None, page=ref.page)
    limited = await deps.over_rate(click.team, click.user)
    if limited is not None:
        await _tell(respond, click, record, problem_message(limited, title=SLOW_DOWN), "rate_limited")
        return None
    refusal = await deps.access.refusal(
        click.who, channel_id=click.channel, profile=ref.profile, installation=click.home, client=client
    )
    if refusal is not None:
        record.note(refusal=refusal.kind)
        await _tell(respond, click, record, problem_message(refusal.sentence, title=NOT_ALLOWED), "refused")
        return None
    return ref


Work = Callable[[_Click, SlackDeps, AsyncRespond, AsyncWebClient, AuditRecord], Awaitable[None]]


def register(app: AsyncApp, deps: SlackDeps) -> None:
    def listener(work: Work) -> Callable[..., Awaitable[None]]:
        """Ack at once, then do `work` as a tracked job that a shutdown finishes or turns into "try again"."""

        async def handle(
            ack: AsyncAck,
            body: dict[str, Any],
            action: dict[str, Any],
            respond: AsyncRespond,
            client: AsyncWebClient,
            context: AsyncBoltContext,
        ) -> None:
            await ack()
            click = _Click(body, action, client, Installation.of(context.authorize_result))
            record = AuditRecord(f"action:{click.action_id}", click.user, click.channel)

            async def tell_to_retry() -> None:
                if record.emitted is not None:  # answered already: nothing to apologise for
                    return
                delivery = await deliver(respond, restarting_message(), click.to)
                record.note(**delivery.audit())
                record.ensure(delivery.outcome("interrupted"))  # the answer may have landed meanwhile

            try:
                await deps.pending.run(lambda: work(click, deps, respond, client, record), tell_to_retry)
            except asyncio.CancelledError:
                record.ensure("interrupted")
                raise
            finally:
                record.ensure("internal_error")

        return handle

    app.action(VIEW_ACTIONS)(listener(change_view))
    app.action(SHARE_ACTION)(listener(share))
    app.action(EXPORT_ACTION)(listener(export))
    app.action(EXPORT_MATCHES_ACTION)(listener(export_matches))
    app.action(SHOW_USERS_ACTION_ID)(listener(show_users))
    app.action(re.compile(rf"^{STOP_ACTION_ID}_[0-9]+$"))(listener(stop_watch))
    app.action(CHANGES_ACTION_ID)(listener(what_changed))
    app.action(CHANGES_PAGE_ACTIONS)(listener(change_changes_page))


async def what_changed(
    click: _Click, deps: SlackDeps, respond: AsyncRespond, client: AsyncWebClient, record: AuditRecord
) -> None:
    """`--changes` for the answer's room and app, answered beside the clicked message (to the clicker)."""
    ref = await _start(click, deps, respond, client, record)
    if ref is None:
        return

    async def reading(message: Message) -> None:
        # Beside the clicked message, like the answer (a click's response_url can only replace the clicked one).
        await deliver(respond, message, click.to)

    answer = await changes_answer(deps.answers, ChangesRequest(ref.room_id, ref.profile), reading=reading)
    record.note(lookup="changes", **answer.audit_fields())
    await _tell(respond, click, record, answer.message, answer.outcome)


async def change_changes_page(
    click: _Click, deps: SlackDeps, respond: AsyncRespond, client: AsyncWebClient, record: AuditRecord
) -> None:
    """Prev/Next under a list of changes: the clicked message is replaced in place."""
    ref = await _start_with(click, deps, respond, client, record, decode=decode_changes_page)
    if ref is None:
        return
    answer = await changes_page_answer(deps.answers, ref)
    record.note(**answer.audit_fields())
    if answer.outcome != "ok":
        await _tell(respond, click, record, answer.message, answer.outcome)
        return
    delivery = await deliver(respond, answer.message, click.to, replace_original=True)
    record.note(**delivery.audit())
    record.emit(delivery.outcome(answer.outcome))


async def change_view(
    click: _Click, deps: SlackDeps, respond: AsyncRespond, client: AsyncWebClient, record: AuditRecord
) -> None:
    """Prev/Next, the order toggle and Refresh: the clicked message is replaced in place."""
    ref = await _start(click, deps, respond, client, record)
    if ref is None:
        return
    refresh = click.action_id == "roomusers_refresh"
    # A click on a mention's answer while its room is still loading (its buttons carry no fetch time) claims
    # the message: the mention's progress and final updates stop, so they can't undo this page.
    claimed = not click.ephemeral and not ref.fetched_at and bool(click.message_ts)
    if claimed:
        await deps.deduper.first_sighting(view_claim(click.channel, click.message_ts))
    placeholder = None
    reading_again = False
    if refresh:
        # A big room takes a while to read again: show at once that it is being refreshed, with the page
        # shown if it is still cached, else saying that the room is read again.
        placeholder = await deps.answers.refreshing(ref)
        shown = placeholder or deps.answers.reading_again(ref)
        reading_again = placeholder is None and shown is not None
        if shown is not None:
            await deliver(respond, shown, click.to, replace_original=True)
    answer = await deps.answers.page(ref, shareable=click.ephemeral, refresh=refresh)
    if placeholder is not None and answer.outcome not in ("ok", "empty", "loading"):
        # The refresh failed: put back the page (with its buttons, to try again) before saying why.
        restored = await deps.answers.page(ref, shareable=click.ephemeral)
        if restored.outcome in ("ok", "empty"):
            await deliver(respond, restored.message, click.to, replace_original=True)
    if reading_again and answer.outcome not in ("ok", "empty", "loading"):
        # No page to put back: why the read failed replaces "Refreshing…", so it does not stay up.
        record.note(**answer.audit_fields())
        delivery = await deliver(respond, answer.message, click.to, replace_original=True)
        record.note(**delivery.audit())
        record.emit(delivery.outcome(answer.outcome))
        return
    if answer.pending is not None:
        # A page already read (or "still loading") while the read goes on; the whole page replaces it at the end.
        await deliver(respond, answer.message, click.to, replace_original=True)
        answer = await deps.answers.finish_page(ref, answer.pending, shareable=click.ephemeral)
    record.note(**answer.audit_fields())
    if answer.outcome not in ("ok", "empty"):  # keep the page the user was looking at; say what went wrong beside it
        await _tell(respond, click, record, answer.message, answer.outcome)
        return
    delivery = await deliver(respond, answer.message, click.to, replace_original=True)
    if not delivery.ok and not delivery.unconfirmed and claimed:
        # Our own visible message: edit it directly rather than leave it loading.
        where = Delivery("thread", channel=click.channel, ts=click.message_ts)
        delivery = await land_final(deps.updates, click.to, where, answer.message)
    record.note(**delivery.audit())
    record.emit(delivery.outcome(answer.outcome))


async def share(
    click: _Click, deps: SlackDeps, respond: AsyncRespond, client: AsyncWebClient, record: AuditRecord
) -> None:
    ref = await _start(click, deps, respond, client, record)
    if ref is None:
        return
    answer = await deps.answers.page(ref, shareable=False, shared_by=click.user)
    if answer.pending is not None:  # only a whole page is shared with the channel
        answer = await deps.answers.finish_page(ref, answer.pending, shareable=False, shared_by=click.user)
    record.note(**answer.audit_fields())
    if answer.outcome not in ("ok", "empty"):
        await _tell(respond, click, record, answer.message, answer.outcome)
        return
    # response_type in_channel on the click's URL posts a new, visible message in the conversation. A share is
    # a channel post: it never falls back to an ephemeral or a DM.
    shared = await deliver(respond, answer.message, click.to, response_type="in_channel", fall_back=False)
    if shared.ok:
        record.note(**shared.audit())
        record.emit(answer.outcome)
    elif shared.unconfirmed:  # it may be in the channel already: sharing again could post it twice
        await _tell(
            respond, click, record, notice_message(SHARE_UNCONFIRMED, title="Share not confirmed"), "share_unconfirmed"
        )
    else:
        sorry = problem_message(
            "Slack did not accept the shared page; try Share again in a moment.", title="Not shared"
        )
        await _tell(respond, click, record, sorry, "share_failed")


async def export(
    click: _Click, deps: SlackDeps, respond: AsyncRespond, client: AsyncWebClient, record: AuditRecord
) -> None:
    """The whole room as CSV, in the answer's order."""
    await _export(click, deps, respond, client, record, matching=False)


async def export_matches(
    click: _Click, deps: SlackDeps, respond: AsyncRespond, client: AsyncWebClient, record: AuditRecord
) -> None:
    """Only the users matching the answer's filter, in its order."""
    await _export(click, deps, respond, client, record, matching=True)


async def _export(
    click: _Click,
    deps: SlackDeps,
    respond: AsyncRespond,
    client: AsyncWebClient,
    record: AuditRecord,
    *,
    matching: bool,
) -> None:
    ref = await _start(click, deps, respond, client, record)
    if ref is None:
        return
    roster = await deps.answers.roster(ref)
    if isinstance(roster, Answer):
        await _tell(respond, click, record, roster.message, roster.outcome)
        return
    # An answer only the requester sees must not leak into the channel: its export goes to a DM.
    target = (
        ExportTarget(channel_id=click.channel, direct_to_user=click.user)
        if click.ephemeral
        else ExportTarget(channel_id=click.channel, thread_ts=click.thread_ts)
    )
    filter_text = ref.filter_text.strip() if matching else ""
    # The filter runs with the CSV encoding in the CPU worker process, never on the loop.
    exported = await upload_roster_csv(
        client,
        room_id=ref.room_id,
        users=roster.ordered(newest_first=ref.newest_first),
        fetched_at=roster.fetched_at,
        target=target,
        requested_by=click.user,
        profile=ref.profile,
        filter_text=filter_text,
        problem=roster.problem,
    )
    record.note(room_users=len(roster.users), complete=roster.complete, shortfall=roster.shortfall)
    if not isinstance(exported, Exported):
        await _tell(respond, click, record, problem_message(exported, title="Can't export that room"), "export_failed")
        return
    where = "your direct messages with roomusers" if click.ephemeral else "this conversation"
    what = f"all {len(roster.users):,} users" if roster.complete else f"the {len(roster.users):,} users read"
    if filter_text:
        echo = escape_mrkdwn(clean_untrusted(filter_text, 100))
        what = f"the {exported.rows:,} {'user' if exported.rows == 1 else 'users'} matching “{echo}”"
    sent = f"The CSV of {what} was sent to {where}."
    if not roster.complete:
        sent = f"The CSV of {what} was sent to {where}; it is incomplete: {escape_mrkdwn(roster.problem)}."
    done = notice_message(sent, title="Exported")
    await _tell(respond, click, record, done, "ok")


async def show_users(
    click: _Click, deps: SlackDeps, respond: AsyncRespond, client: AsyncWebClient, record: AuditRecord
) -> None:
    """A watch alert's Show users: the room's first page, privately, for whoever clicked."""
    ref = await _start(click, deps, respond, client, record)
    if ref is None:
        return
    answer = await deps.answers.page(ref, shareable=True)
    if answer.pending is not None:
        answer = await deps.answers.finish_page(ref, answer.pending, shareable=True)
    record.note(**answer.audit_fields())
    await _tell(respond, click, record, answer.message, answer.outcome)


async def stop_watch(
    click: _Click, deps: SlackDeps, respond: AsyncRespond, client: AsyncWebClient, record: AuditRecord
) -> None:
    """A Stop under `--watches`: end that watch (access checked for its app) and redraw the list."""
    desk = deps.watches
    if desk is None:
        await _tell(respond, click, record, problem_message(STALE_BUTTON), "stale_button")
        return
    record.note(watch=click.value[:40])
    limited = await deps.over_rate(click.team, click.user)
    if limited is not None:
        await _tell(respond, click, record, problem_message(limited, title=SLOW_DOWN), "rate_limited")
        return
    asker = Asker(click.who, click.team, click.user, click.channel, click.home, client)
    try:
        watch = await desk.find(click.value)  # None for a value no watch ID has: never looked up
        profile = watch.profile if watch is not None else ""
        refusal = await deps.access.refusal(
            click.who, channel_id=click.channel, profile=profile, installation=click.home, client=client
        )
        if refusal is not None:
            record.note(refusal=refusal.kind)
            await _tell(respond, click, record, problem_message(refusal.sentence, title=NOT_ALLOWED), "refused")
            return
        here = watch is not None and (watch.team_id, watch.channel_id) == (click.team, click.channel)
        stopped = watch is not None and here and await desk.stop(watch, by=click.user)
    except REDIS_UNAVAILABLE:
        await _tell(respond, click, record, problem_message(STORE_DOWN, title="Watch not stopped"), "store_unavailable")
        return
    shown = with_note(await watch_listing(deps, asker), STOPPED if stopped else ALREADY_ENDED)
    outcome = "stopped" if stopped else "already_ended"
    delivery = await deliver(respond, shown, click.to, replace_original=True)
    record.note(**delivery.audit())
    record.emit(delivery.outcome(outcome))
