"""Watches on the Slack side: setting one, listing and stopping them, and posting what the poller finds.

`WatchDesk` serves the command, the mention and the Stop button; `SlackWatchNotifier` posts alerts and notices
in the conversation where the watch was set (its thread, for a mention) and, when the bot can't post there,
in the creator's DM with the app, saying how to invite the bot. Each alert, notice and end is one audit line.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

from slack_sdk.web.async_client import AsyncWebClient

from bot.observability.audit import AuditRecord
from bot.observability.metrics import WATCH_ALERTS_UNDELIVERED
from bot.roster.apps import ZegoApps
from bot.settings import WatchSettings
from bot.slack.delivery import REACH_ERRORS, Delivery, Requester, post_in_thread, slack_call
from bot.slack.parsing import WatchRequest
from bot.slack.render.blocks import Message, problem_message
from bot.slack.render.watches import (
    alert_message,
    confirmation_message,
    expired_message,
    failing_message,
    invite_hint,
    not_posted_note,
    recovered_message,
    watches_message,
)
from bot.state.health import REDIS_UNAVAILABLE
from bot.watch.budget import spread_offset
from bot.watch.model import FAILURES_BEFORE_NOTICE, FirstCheck, Watch, new_watch_id
from bot.watch.poller import Reading, WatchPoller
from bot.watch.store import Limits, WatchLimitReached

log = logging.getLogger(__name__)

WATCH_ID = re.compile(r"[0-9a-f]{16}")  # what new_watch_id makes; anything else is never used in a key
STORE_DOWN = (
    "Watches are paused: roomusers cannot reach its shared store (Redis) just now. Try again in a moment; "
    "existing watches resume by themselves."
)
ALREADY_ENDED = "That watch had already ended (it fired, expired or was stopped)."
STOPPED = "Watch stopped: no alert will be posted for it."


def alert_place(watch: Watch, delivery: Delivery, bot_name: str | None) -> str:
    """Where a fire-at-once alert went, as a sentence for the confirmation."""
    in_dm = watch.channel_id.startswith("D")
    if delivery.route == "dm":
        why = "roomusers is not part of this direct message." if in_dm else invite_hint(bot_name)
        return f"The alert went to your DM with roomusers: it could not post here. {why}"
    if delivery.ok:
        if watch.thread_ts:
            return "The alert is posted in this thread."
        return "The alert is posted in this conversation." if in_dm else "The alert is posted in this channel."
    if delivery.unconfirmed:
        return "The alert was sent, but Slack did not confirm it arrived."
    return f"The alert could be posted neither here nor in your DM with roomusers (Slack said `{delivery.error}`)."


def _audit(watch: Watch, outcome: str, **fields: object) -> None:
    record = AuditRecord("watch", watch.creator, watch.channel_id)
    record.note(watch=watch.id, room=watch.room_id, profile=watch.profile, condition=watch.condition.kind, **fields)
    record.emit(outcome)


# The deliveries of alerts posted while a `WatchDesk.set` awaits the first check, so its confirmation can say
# where the alert really went. Per task (the poller's background alerts see None).
_ALERTS_SEEN: ContextVar[list[Delivery] | None] = ContextVar("roomusers_watch_alerts_seen", default=None)


@dataclass
class SlackWatchNotifier:
    """Posts for the poller; `app_label(profile)` names the ZEGO app when there are several (else "")."""

    client: AsyncWebClient
    settings: WatchSettings
    app_label: Callable[[str], str]
    _bot_name: str | None = field(default=None, init=False)

    async def bot_name(self) -> str | None:
        """The bot user's name as installed (auth.test), for "/invite @…"; None while Slack can't say."""
        if self._bot_name is None:
            call = await slack_call(self.client.auth_test())
            if call.response is not None and call.response.get("user"):
                self._bot_name = str(call.response["user"])
        return self._bot_name

    async def _post(self, watch: Watch, message: Message) -> Delivery:
        """In the watch's conversation (its thread), rate limits waited out; unreachable -> the creator's DM."""
        note = not_posted_note(watch.channel_id, await self.bot_name())
        to = Requester(self.client, watch.creator, watch.channel_id, "watch", thread_ts=watch.thread_ts, dm_note=note)
        delivery = await post_in_thread(message, to)
        if not delivery.ok and not delivery.unconfirmed:
            WATCH_ALERTS_UNDELIVERED.inc()
            log.warning("watch %s: posted neither in %s nor in the creator's DM", watch.id, watch.channel_id)
        return delivery

    async def alert(self, watch: Watch, reading: Reading) -> None:
        name = reading.name_of(watch.condition.user_id) if watch.condition.needs_members else None
        message = alert_message(watch, count=reading.count, user_name=name, app_label=self.app_label(watch.profile))
        delivery = await self._post(watch, message)
        seen = _ALERTS_SEEN.get()
        if seen is not None:
            seen.append(delivery)
        _audit(watch, delivery.outcome("fired"), count=reading.count, **delivery.audit())

    async def checking_failed(self, watch: Watch, problem: str) -> None:
        message = failing_message(
            watch, problem, failures=FAILURES_BEFORE_NOTICE, app_label=self.app_label(watch.profile)
        )
        await self._post(watch, message)

    async def checking_works(self, watch: Watch) -> None:
        await self._post(watch, recovered_message(watch, app_label=self.app_label(watch.profile)))

    async def expired(self, watch: Watch) -> None:
        message = expired_message(watch, app_label=self.app_label(watch.profile))
        delivery = await self._post(watch, message)
        _audit(watch, delivery.outcome("expired"), **delivery.audit())


@dataclass
class WatchDesk:
    """What the Slack listeners ask about watches."""

    poller: WatchPoller
    settings: WatchSettings
    zego_apps: ZegoApps
    notifier: SlackWatchNotifier | None = None  # its Slack client checks where alerts can go
    clock: Callable[[], float] = time.time

    def app_label(self, profile: str) -> str:
        return profile if self.zego_apps.several else ""

    async def set(
        self, request: WatchRequest, *, team_id: str, channel_id: str, thread_ts: str | None, creator: str
    ) -> tuple[Message, str]:
        """Store the watch, check it once at once, and say what happens next. Returns (message, outcome)."""
        now = self.clock()
        profile = self.zego_apps.resolve(request.view.profile) or self.zego_apps.default
        watch = Watch(
            id=new_watch_id(),
            team_id=team_id,
            channel_id=channel_id,
            thread_ts=thread_ts,
            creator=creator,
            profile=profile,
            room_id=request.view.room_id,
            condition=request.condition,
            created_at=now,
            until=now + self.settings.hours * 3600,
        )
        limits = Limits(self.settings.max_per_conversation, self.settings.max_per_workspace)
        try:
            intervals = await self.poller.intervals()
            interval = intervals.get(profile, self.settings.interval)
            await self.poller.store.add(watch, limits=limits, first_due_in=spread_offset(watch.group, interval))
        except WatchLimitReached as limit:
            return problem_message(limit.sentence, title="Watch not set"), "watch_limit"
        except REDIS_UNAVAILABLE:
            return problem_message(STORE_DOWN, title="Watch not set"), "store_unavailable"
        _audit(watch, "set")
        seen: list[Delivery] = []
        token = _ALERTS_SEEN.set(seen)
        state: FirstCheck | Literal["store_down"]
        try:
            state = await self.poller.first_check(watch)
        except REDIS_UNAVAILABLE:
            state = "store_down"
        finally:
            _ALERTS_SEEN.reset(token)
        self.poller.wake()
        alert = alert_place(watch, seen[0], await self._bot_name()) if state == "fired" and seen else None
        where = await self.place(watch) if alert is None else ""
        message = confirmation_message(
            watch, where=where, state=state, interval=interval, app_label=self.app_label(profile), alert=alert
        )
        return message, f"watch_{state}"

    async def _bot_name(self) -> str | None:
        return await self.notifier.bot_name() if self.notifier is not None else None

    async def place(self, watch: Watch) -> str:
        """Where this watch's alert will go, as checked now: "in this channel", "in your DM with roomusers: …"."""
        if watch.thread_ts:
            return "in this thread"  # a mention: the bot is in the conversation, Slack sent it the event
        if self.notifier is None:
            return "in this conversation"
        client = self.notifier.client
        dm = "in your DM with roomusers"
        if watch.channel_id.startswith("D"):
            opened = await slack_call(client.conversations_open(users=watch.creator))
            if opened.response is not None and (opened.response.get("channel") or {}).get("id") == watch.channel_id:
                return dm
            if opened.response is not None:  # a DM between people: roomusers can't post in it
                return f"{dm}, since roomusers is not part of this direct message"
            return "here (or, if roomusers cannot post here, in your DM with roomusers)"
        info = await slack_call(client.conversations_info(channel=watch.channel_id))
        member = info.response is not None and (info.response.get("channel") or {}).get("is_member") is True
        if member:
            return "in this channel"
        if info.response is not None or info.error in REACH_ERRORS:
            return f"{dm}: roomusers is not in this channel. {invite_hint(await self._bot_name())}"
        # Slack could not say (no channels:read / groups:read scope, Slack down): both places, honestly.
        return "in this channel (or, if roomusers is not in it, in your DM with roomusers)"

    async def listing(self, team_id: str, channel_id: str, *, profiles: Collection[str] | None = None) -> Message:
        """This conversation's active watches; `profiles`: only those of these apps (the asker's access)."""
        try:
            now = self.clock()  # a watch past its end is no longer listed, even before the poller ends it
            watches = [w for w in await self.poller.store.in_conversation(team_id, channel_id) if not w.expired(now)]
            intervals = await self.poller.intervals()
        except REDIS_UNAVAILABLE:
            return problem_message(STORE_DOWN, title="Can't list watches")
        if profiles is not None:
            watches = [w for w in watches if w.profile in profiles]
        labels = {name: self.app_label(name) for name in self.zego_apps.by_profile}
        return watches_message(watches, intervals=intervals, app_labels=labels)

    async def find(self, watch_id: str) -> Watch | None:
        """The watch a Stop button names; None for a value no watch ID can have (never looked up)."""
        if not WATCH_ID.fullmatch(watch_id):
            return None
        return await self.poller.store.get(watch_id)

    async def stop(self, watch: Watch, *, by: str) -> bool:
        """End `watch` (a Stop click, access already checked). False: it had already ended."""
        if not await self.poller.store.end(watch):
            return False
        _audit(watch, "stopped", stopped_by=by)
        return True
