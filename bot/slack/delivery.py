"""Getting an answer to the person who asked, and saying what happened.

Every way of delivering returns a `Delivery`: where the message landed, or Slack's error, or that the post
went out but was never confirmed (it may have landed: posting it again could show it twice). The ladder:

1. the request's response_url (no scope needed, works in any conversation, even ones the bot is not in);
2. `chat.postEphemeral` in the conversation (needs the bot there);
3. the requester's DM with the app (the Messages tab), with a line saying where the answer was asked.

When even the DM fails, the failure is logged with Slack's error and counted in roomusers_undelivered_total.
Network failures (aiohttp errors, timeouts) are outcomes like Slack's errors, never exceptions to the caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from typing import Any, Literal

import aiohttp
from slack_bolt.async_app import AsyncRespond
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.observability.metrics import SLACK_API_ERRORS, UNDELIVERED, slack_error_label
from bot.slack.budget import UpdateBudget
from bot.slack.render.blocks import Message, with_note

log = logging.getLogger(__name__)

Route = Literal["response_url", "ephemeral", "thread", "update", "dm"]
Surface = Literal["command", "mention", "action", "watch"]

# The message could not land *there*; the requester's DM may still work.
REACH_ERRORS = frozenset(
    {
        "not_in_channel",
        "channel_not_found",
        "user_not_in_channel",
        "is_archived",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only",
        "team_access_not_granted",
        "connection_failed",
    }
)
POST_DEADLINE_SECONDS = 60.0  # keep retrying a rate-limited thread post this long
FINAL_DEADLINE_SECONDS = 300.0  # keep trying to land a final update this long, then post it anew


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one message. `route` None: it did not land (`error` says why) or nobody can tell."""

    route: Route | None
    error: str | None = None
    unconfirmed: bool = False  # sent, never answered: it may have arrived, so it is never sent again
    channel: str | None = None  # for Web API posts: where, so the message can be updated
    ts: str | None = None

    @property
    def ok(self) -> bool:
        return self.route is not None

    def audit(self) -> dict[str, Any]:
        if self.ok:
            return {"delivered_via": self.route}
        return {"slack_error": self.error}

    def outcome(self, answered: str) -> str:
        """The audit outcome of a request whose answer was `answered` ("ok", "refused", ...) and went like this."""
        if self.ok:
            return answered
        return "unconfirmed" if self.unconfirmed else "undelivered"


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asked, where, and how: everything needed to answer them (and to tell them, in a DM, where from)."""

    client: AsyncWebClient
    user: str
    channel: str
    surface: Surface
    # ONLY a thread that has replies: Slack shows no ephemeral in a "thread" of one lone message.
    thread_ts: str | None = None
    dm_note: str | None = None  # the line a DM copy carries instead of the default "from <#channel>"


@dataclass(frozen=True, slots=True)
class Call:
    """One Web API call's result: the response, or the error (Slack's code, or a network failure)."""

    response: AsyncSlackResponse | None
    error: str | None = None
    certain: bool = True  # False: the request may have reached Slack and taken effect
    retry_after: float | None = None


async def slack_call(call: Awaitable[AsyncSlackResponse]) -> Call:
    """Await a slack_sdk call, turning every failure into a `Call` (cancellation still propagates)."""
    try:
        return Call(await call)
    except SlackApiError as error:
        response = error.response
        code = str(response.get("error") or f"http_{response.status_code}")
        retry_after = None
        if response.status_code == 429:
            retry_after = _seconds(response.headers.get("Retry-After") or response.headers.get("retry-after"))
        return Call(None, code, retry_after=retry_after)
    except aiohttp.ClientConnectorError:
        return Call(None, "connection_failed")  # never connected: nothing reached Slack
    except (aiohttp.ClientError, TimeoutError) as error:
        return Call(None, "timeout" if isinstance(error, TimeoutError) else type(error).__name__, certain=False)
    except SlackClientError as error:
        return Call(None, type(error).__name__)


def _seconds(value: Any) -> float:
    try:
        return max(1.0, float(value))
    except (TypeError, ValueError):
        return 1.0


async def deliver(
    respond: AsyncRespond | None,
    message: Message,
    to: Requester,
    *,
    replace_original: bool = False,
    response_type: str = "ephemeral",
    fall_back: bool = True,
) -> Delivery:
    """The ladder above. `fall_back=False` tries the response_url only (a channel post such as a Share)."""
    first_error = "no_response_url"
    if respond is not None:
        options: dict[str, Any] = {"replace_original": replace_original, "response_type": response_type}
        if to.thread_ts is not None:
            options["thread_ts"] = to.thread_ts
        try:
            response = await respond(**message.to_payload(), **options)
        except aiohttp.ClientConnectorError:
            first_error = "connection_failed"
            SLACK_API_ERRORS.labels("response_url", "connection").inc()
        except (TimeoutError, aiohttp.ClientError) as error:
            SLACK_API_ERRORS.labels("response_url", "timeout").inc()
            # The post was sent and may still land: posting again could show the answer twice.
            log.warning("response_url did not answer (%s); not posting the answer a second time", type(error).__name__)
            return Delivery(None, "timeout", unconfirmed=True)
        except Exception as error:  # anything else about a dead response_url must not lose the answer
            first_error = type(error).__name__
            SLACK_API_ERRORS.labels("response_url", "connection").inc()
            log.warning("response_url failed: %s", first_error)
        else:
            if response.status_code == 200:
                return Delivery("response_url")
            first_error = f"http_{response.status_code}"
            SLACK_API_ERRORS.labels("response_url", slack_error_label(response.body, response.status_code)).inc()
            log.warning("response_url answered HTTP %s: %s", response.status_code, (response.body or "")[:200])
    if not fall_back:
        return Delivery(None, first_error)
    call = await slack_call(
        to.client.chat_postEphemeral(channel=to.channel, user=to.user, thread_ts=to.thread_ts, **message.to_payload())
    )
    if call.response is not None:
        return Delivery("ephemeral", channel=to.channel)
    if not call.certain:
        return Delivery(None, call.error, unconfirmed=True)
    log.info("chat.postEphemeral in %s failed (%s); trying the requester's DM", to.channel, call.error)
    return await deliver_to_dm(message, to, call.error or first_error)


async def post_in_thread(message: Message, to: Requester, *, deadline: float = POST_DEADLINE_SECONDS) -> Delivery:
    """A visible post (a mention's answer) in `to.thread_ts`; rate limits waited out, unreachable -> the DM."""
    give_up = time.monotonic() + deadline
    while True:
        call = await slack_call(
            to.client.chat_postMessage(
                channel=to.channel,
                thread_ts=to.thread_ts,
                unfurl_links=False,
                unfurl_media=False,
                **message.to_payload(),
            )
        )
        if call.response is not None:
            return Delivery("thread", channel=str(call.response.get("channel") or to.channel), ts=_ts(call.response))
        if call.error == "ratelimited" and time.monotonic() + (call.retry_after or 1.0) < give_up:
            await asyncio.sleep(call.retry_after or 1.0)
            continue
        if not call.certain:
            log.warning("chat.postMessage in %s: no answer (%s); not posting it again", to.channel, call.error)
            return Delivery(None, call.error, unconfirmed=True)
        log.info("chat.postMessage in %s failed (%s); trying the requester's DM", to.channel, call.error)
        return await deliver_to_dm(message, to, call.error or "unknown")


async def deliver_to_dm(message: Message, to: Requester, error: str) -> Delivery:
    """The last resort: the requester's DM with the app, saying where the answer was asked."""
    opened = await slack_call(to.client.conversations_open(users=to.user))
    dm_error = opened.error
    if opened.response is not None:
        channel = str((opened.response.get("channel") or {}).get("id") or "")
        noted = with_note(message, _from_line(to))
        posted = await slack_call(
            to.client.chat_postMessage(channel=channel, unfurl_links=False, unfurl_media=False, **noted.to_payload())
        )
        if posted.response is not None:
            return Delivery("dm", channel=channel, ts=_ts(posted.response))
        if not posted.certain:
            return Delivery(None, posted.error, unconfirmed=True)
        dm_error = posted.error
    log.warning(
        "could not deliver a %s answer to %s in %s (%s), nor in their DM with the app (%s)",
        to.surface,
        to.user,
        to.channel,
        error,
        dm_error,
    )
    if to.surface != "watch":  # watch posts are counted in roomusers_watch_alerts_undelivered_total
        UNDELIVERED.labels(to.surface, dm_error or "unknown").inc()
    return Delivery(None, dm_error or error)


def _from_line(to: Requester) -> str:
    if to.dm_note is not None:
        return to.dm_note
    where = "a direct message" if to.channel.startswith("D") else f"<#{to.channel}>"
    asked = {
        "command": "Your `/roomusers` answer",
        "mention": "The answer to your mention",
        "action": "Your answer",
        "watch": "Your watch's message",
    }
    return f"{asked[to.surface]} from {where}: Slack did not let roomusers post it there."


def _ts(response: AsyncSlackResponse) -> str | None:
    ts = response.get("ts")
    return str(ts) if ts else None


async def land_final(
    budget: UpdateBudget,
    to: Requester,
    where: Delivery,
    message: Message,
    *,
    deadline: float = FINAL_DEADLINE_SECONDS,
) -> Delivery:
    """Replace a posted message (`where`) with its final content: wait out budgets and 429s; an edit that
    cannot be made (message gone, deadline) becomes a new post in the thread, so nothing stays "loading"."""
    assert where.channel is not None and where.ts is not None
    give_up = time.monotonic() + deadline
    error = "deadline"
    while time.monotonic() < give_up:
        await budget.final()
        call = await slack_call(to.client.chat_update(channel=where.channel, ts=where.ts, **message.to_payload()))
        if call.response is not None:
            return replace(where, route="update")
        error = call.error or "unknown"
        if call.error == "ratelimited":
            budget.hold(call.retry_after or 1.0)
            continue
        if not call.certain:  # the same edit again is harmless
            await asyncio.sleep(1.0)
            continue
        break
    log.warning("chat.update of %s failed (%s); posting the final answer anew", where.ts, error)
    return await post_in_thread(message, to)
