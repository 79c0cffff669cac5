"""Watches on the Slack side: setting one, listing and stopping them, and posting what the poller finds.

`WatchDesk` serves the command, the mention and the Stop button; `SlackWatchNotifier` posts alerts and notices
in the conversation where the watch was set (its thread, for a mention) and, when the bot can't post there,
in the creator's DM with the app, saying how to invite the bot. Each alert, notice and end is one audit line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from bot.observability.audit import AuditRecord
from bot.observability.metrics import WATCH_ALERTS_UNDELIVERED
from bot.roster.apps import ZegoApps
from bot.settings import WatchSettings
from bot.slack.delivery import REACH_ERRORS, Delivery, slack_call
from bot.slack.parsing import WatchRequest
from bot.slack.render.blocks import Message, problem_message, with_note
from bot.slack.render.watches import (
    alert_message,
    confirmation_message,
    expired_message,
    failing_message,
    not_posted_note,
    recovered_message,
    watches_message,
)
from bot.state.health import REDIS_UNAVAILABLE
from bot.watch.budget import spread_offset
from bot.watch.model import FAILURES_BEFORE_NOTICE, Watch, new_watch_id
from bot.watch.poller import Reading, WatchPoller
from bot.watch.store import Limits, WatchLimitReached

log = logging.getLogger(__name__)

STORE_DOWN = (
    "Watches are paused: roomusers cannot reach its shared store (Redis) just now. Try again in a moment; "
    "existing watches resume by themselves."
)
ALREADY_ENDED = "That watch had already ended (it fired, expired or was stopped)."
STOPPED = "Watch stopped: no alert will be posted for it."


def _audit(watch: Watch, outcome: str, **fields: object) -> None:
    record = AuditRecord("watch", watch.creator, watch.channel_id)
    record.note(watch=watch.id, room=watch.room_id, profile=watch.profile, condition=watch.condition.kind, **fields)
    record.emit(outcome)


@dataclass
class SlackWatchNotifier:
    """Posts for the poller; `app_label(profile)` names the ZEGO app when there are several (else "")."""

    client: AsyncWebClient
    settings: WatchSettings
    app_label: Callable[[str], str]

    async def _post(self, watch: Watch, message: Message) -> Delivery:
        call = await slack_call(
            self.client.chat_postMessage(
                channel=watch.channel_id,
                thread_ts=watch.thread_ts,
                unfurl_links=False,
                unfurl_media=False,
                **message.to_payload(),
            )
        )
        if call.response is not None:
            return Delivery("thread", channel=watch.channel_id, ts=str(call.response.get("ts") or ""))
        if not call.certain or call.error not in REACH_ERRORS:
            if call.certain:
                WATCH_ALERTS_UNDELIVERED.inc()
            log.warning("watch %s: chat.postMessage failed (%s)", watch.id, call.error)
            return Delivery(None, call.error, unconfirmed=not call.certain)
        opened = await slack_call(self.client.conversations_open(users=watch.creator))
        error = opened.error
        if opened.response is not None:
            channel = str((opened.response.get("channel") or {}).get("id") or "")
            noted = with_note(message, not_posted_note(watch.channel_id))
            posted = await slack_call(
                self.client.chat_postMessage(
                    channel=channel, unfurl_links=False, unfurl_media=False, **noted.to_payload()
                )
            )
            if posted.response is not None:
                return Delivery("dm", channel=channel)
            error = posted.error
        WATCH_ALERTS_UNDELIVERED.inc()
        log.warning(
            "watch %s: could not post in %s (%s) nor in the creator's DM (%s)",
            watch.id,
            watch.channel_id,
            call.error,
            error,
        )
        return Delivery(None, error)

    async def alert(self, watch: Watch, reading: Reading) -> None:
        name = reading.name_of(watch.condition.user_id) if watch.condition.needs_members else None
        message = alert_message(watch, count=reading.count, user_name=name, app_label=self.app_label(watch.profile))
        delivery = await self._post(watch, message)
        _audit(watch, delivery.outcome("fired"), count=reading.count, **delivery.audit())

    async def checking_failed(self, watch: Watch, problem: str) -> None:
        message = failing_message(
            watch, problem, failures=FAILURES_BEFORE_NOTICE, app_label=self.app_label(watch.profile)
        )
        await self._post(watch, message)

    async def checking_works(self, watch: Watch) -> None:
        await self._post(watch, recovered_message(watch, app_label=self.app_label(watch.profile)))

    async def expired(self, watch: Watch) -> None:
        message = expired_message(watch, hours=self.settings.hours, app_label=self.app_label(watch.profile))
        delivery = await self._post(watch, message)
        _audit(watch, delivery.outcome("expired"), **delivery.audit())


@dataclass
class WatchDesk:
    """What the Slack listeners ask about watches."""

    poller: WatchPoller
    settings: WatchSettings
    zego_apps: ZegoApps
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
        try:
            state = await self.poller.first_check(watch)
        except REDIS_UNAVAILABLE:
            state = "failed"
        self.poller.wake()
        where = (
            "this thread" if thread_ts else ("your DM with roomusers" if channel_id.startswith("D") else "this channel")
        )
        message = confirmation_message(
            watch, where=where, state=state, interval=interval, app_label=self.app_label(profile)
        )
        return message, f"watch_{state}"

    async def listing(self, team_id: str, channel_id: str) -> Message:
        try:
            now = self.clock()  # a watch past its end is no longer listed, even before the poller ends it
            watches = [w for w in await self.poller.store.in_conversation(team_id, channel_id) if not w.expired(now)]
            intervals = await self.poller.intervals()
        except REDIS_UNAVAILABLE:
            return problem_message(STORE_DOWN, title="Can't list watches")
        labels = {name: self.app_label(name) for name in self.zego_apps.by_profile}
        return watches_message(watches, intervals=intervals, app_labels=labels)

    async def find(self, watch_id: str) -> Watch | None:
        return await self.poller.store.get(watch_id)

    async def stop(self, watch: Watch, *, by: str) -> bool:
        """End `watch` (a Stop click, access already checked). False: it had already ended."""
        if not await self.poller.store.end(watch):
            return False
        _audit(watch, "stopped", stopped_by=by)
        return True
