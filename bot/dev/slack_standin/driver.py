"""Acting as Slack toward the app: signed HTTP requests to its `/slack/events` URL, as Slack sends them.

Requests are signed like Slack's (slack-platform.md §9): `X-Slack-Signature: v0=HMAC-SHA256(secret,
"v0:{timestamp}:{raw body}")`. Timestamps come from the real wall clock, not the stand-in's injectable clock,
because the app checks them against its own clock (±300 s); `timestamp_override` forges a stale one.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from bot.dev.slack_standin import ids, payloads
from bot.dev.slack_standin.models import (
    ACK_DEADLINE_SECONDS,
    AppResponse,
    BotIdentity,
    JsonDict,
    ResponseContext,
    StoredMessage,
)
from bot.dev.slack_standin.payloads import PLAIN, Person, Shape
from bot.dev.slack_standin.response_urls import ResponseUrls
from bot.dev.slack_standin.socket_mode import EnvelopeType, SocketModeHub
from bot.dev.slack_standin.workspace import Slot, Workspace
from bot.slack.render.escaping import escape_mrkdwn

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
# Slack gives up after 3 s; the driver waits longer so a test can see how late a slow app was.
REQUEST_TIMEOUT_SECONDS = 10.0
Mode = Literal["http", "socket"]


class AppDriver:
    """Sends the app slash commands, button clicks and events. `SlackStandIn` inherits these methods."""

    def __init__(
        self,
        *,
        signing_secret: str,
        identity: BotIdentity,
        workspace: Workspace,
        response_urls: ResponseUrls,
        app_url: str | None,
        socket: SocketModeHub | None = None,
    ) -> None:
        self.app_url = app_url
        # In Socket Mode every command, click and event goes over the app's WebSocket instead of a POST.
        self.mode: Mode = "socket" if socket is not None else "http"
        self._socket = socket
        self._signer = SignatureVerifier(signing_secret)
        self._identity = identity
        self._ws = workspace
        self._urls = response_urls
        # Envelopes by event_id, so a retry (same event_id) resends the identical delivery as Slack does.
        self._events: dict[str, JsonDict] = {}
        self._shapes: dict[str, Shape] = {}  # mention ts -> who wrote it, for edit_mention
        self._session: aiohttp.ClientSession | None = None

    # -- low level ---------------------------------------------------------------------------------------

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The two signing headers Slack would send with `body` (now, or at `timestamp`)."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self._signer.generate_signature(timestamp=stamp, body=body)
        return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature or ""}

    async def post_signed(
        self,
        body: bytes,
        content_type: str,
        *,
        headers: Mapping[str, str] | None = None,
        signature_override: str | None = None,
        timestamp_override: int | None = None,
        sent: JsonDict | None = None,
    ) -> AppResponse:
        """POST `body` to app_url signed as Slack would, or with a forged signature / stale timestamp."""
        if self._socket is not None:
            raise RuntimeError("signed POSTs are HTTP-only: this stand-in is in Socket Mode")
        if not self.app_url:
            raise RuntimeError("SlackStandIn.app_url is not set: where is the app's POST /slack/events?")
        signed = self.sign(body, timestamp_override)
        if signature_override is not None:
            signed["X-Slack-Signature"] = signature_override
        all_headers = {"Content-Type": content_type, "User-Agent": USER_AGENT, **signed, **(headers or {})}
        started = time.perf_counter()
        async with self._client().post(self.app_url, data=body, headers=all_headers, allow_redirects=False) as reply:
            text = await reply.text()
            elapsed = time.perf_counter() - started
            return AppResponse(
                status=reply.status,
                headers=dict(reply.headers),
                body=text,
                json=_json_or_none(text),
                elapsed=elapsed,
                sent=sent or {},
            )

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS))
        return self._session

    async def close_driver(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _deliver(
        self,
        kind: EnvelopeType,
        body: bytes,
        content_type: str,
        payload: JsonDict,
        *,
        headers: Mapping[str, str] | None = None,
        retry: tuple[int, str] | None = None,
    ) -> AppResponse:
        """One delivery to the app: a signed POST (HTTP mode) or an envelope on its WebSocket (Socket Mode)."""
        if self._socket is None:
            return await self.post_signed(body, content_type, headers=headers, sent=payload)
        attempt, reason = retry if retry is not None else (None, None)
        return await self._socket.send(kind, payload, retry_attempt=attempt, retry_reason=reason, sent=payload)

    def _late(self, what: str, response: AppResponse) -> None:
        if response.status == 0:
            return  # never acked (Socket Mode): recorded by the hub, the test asserts on it
        if response.elapsed > ACK_DEADLINE_SECONDS:
            self._ws.warn(f"{what}: answered after {response.elapsed:.2f} s, past Slack's 3 s deadline")

    # -- slash commands ----------------------------------------------------------------------------------

    async def send_command(
        self,
        text: str,
        *,
        command: str = "/roomusers",
        user_id: str = "U0ALICE",
        user_name: str = "alice",
        channel_id: str = "C0OPS",
        channel_name: str = "ops",
        team_id: str | None = None,
        org: bool = False,
        tag: str = "",
    ) -> AppResponse:
        """Run `/roomusers <text>` as `user_id` in `channel_id`; `text` is raw, escaped here as Slack does.

        A non-empty ack body becomes a message (ephemeral unless `response_type: in_channel`), as in Slack.
        `tag` is stored on every message the command's ack and response_url post.
        """
        self._ws.channel_names[channel_id] = channel_name
        self._ws.ensure_conversation(channel_id, user_id)
        context = ResponseContext(channel=channel_id, user=user_id, tag=tag)
        identity = self._identity if team_id is None else dataclasses.replace(self._identity, team_id=team_id)
        person = Person(user_id=user_id, user_name=user_name, channel_id=channel_id, channel_name=channel_name)
        form = payloads.command_form(
            identity,
            person,
            command=command,
            text=text,
            response_url=self._urls.mint(context),
            now=time.time(),
            shape=Shape(org=org),
        )
        # The ack body is shown before anything the app sends after acking, even when (in one event loop) its
        # respond() reaches the stand-in before the driver has read the ack, so its place is held up front.
        slot = self._ws.hold_slot()
        response = await self._deliver("slash_commands", urlencode(form).encode(), FORM, dict(form))
        self._late(f"{command} {text!r}", response)
        await self._show_ack(response, context, slot)
        return response

    async def _show_ack(self, response: AppResponse, context: ResponseContext, slot: Slot) -> None:
        """Show a slash command's ack body the way Slack does; ignored when late or not 2xx."""
        if not response.acked_in_time or not response.body.strip():
            return
        payload = response.json if isinstance(response.json, dict) else {"text": response.body}
        if not payload.get("text") and not payload.get("blocks"):
            return  # e.g. only {"response_type": "in_channel"}: nothing to show
        status, error = self._urls.deliver(context, payload, origin="ack", slot=slot)
        if status != 200:
            self._ws.warn(f"slash command ack body refused: {error}")
        await self._ws.changed()

    # -- button clicks -----------------------------------------------------------------------------------

    async def click(
        self,
        message: StoredMessage,
        action_id: str,
        *,
        user_id: str = "U0ALICE",
        user_name: str = "alice",
        org: bool = False,
        from_team: str | None = None,
        tag: str = "",
    ) -> AppResponse:
        """Click the button `action_id` in `message` (a StoredMessage) as `user_id`, as shown right now; `tag` is
        stored on the messages the click's response_url posts or replaces."""
        current = self._ws.message(message.ts)
        if current is None:
            raise LookupError(f"message {message.ts} is not in the conversation (deleted or never posted)")
        if current.ephemeral and current.user != user_id:
            raise LookupError(f"message {message.ts} is ephemeral to {current.user}; {user_id} cannot see it")
        block_id, button = payloads.find_button(current, action_id)
        self._ws.ensure_conversation(current.channel, user_id)
        url = self._urls.mint(ResponseContext(channel=current.channel, user=user_id, message_ts=current.ts, tag=tag))
        person = Person(user_id, user_name, current.channel, self._ws.channel_name(current.channel))
        payload = payloads.block_actions_payload(
            self._identity,
            person,
            current,
            block_id=block_id,
            button=button,
            response_url=url,
            now=time.time(),
            shape=Shape(org=org, from_team=from_team),
        )
        return await self.click_raw(payload)

    async def click_raw(
        self, payload: JsonDict, *, signature_override: str | None = None, timestamp_override: int | None = None
    ) -> AppResponse:
        """Send any interactivity payload (e.g. a forged button value) as form field `payload=<json>`."""
        body = urlencode({"payload": json.dumps(payload)}).encode()
        if signature_override is None and timestamp_override is None:
            response = await self._deliver("interactive", body, FORM, payload)
        else:
            response = await self.post_signed(
                body, FORM, signature_override=signature_override, timestamp_override=timestamp_override, sent=payload
            )
        self._late(f"click on {payload.get('container', {}).get('message_ts')}", response)
        return response

    # -- events ------------------------------------------------------------------------------------------

    async def mention(
        self,
        text: str,
        *,
        channel: str = "C0OPS",
        user: str = "U0ALICE",
        thread_ts: str | None = None,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        bot_id: str | None = None,
        org: bool = False,
        from_team: str | None = None,
        from_enterprise: str | None = None,
        tag: str = "",
    ) -> AppResponse:
        """`@roomusers <text>` typed by `user`: the message is stored in the channel, then delivered as an event.

        Passing the `event_id` of an earlier delivery resends that identical envelope (a retry; `text` is then
        ignored); `retry_num` adds the X-Slack-Retry-Num / X-Slack-Retry-Reason headers. `bot_id` makes it a
        mention written by another bot; `org` an org-wide install; `from_team` a Slack Connect user's team.
        `tag` is stored on the typed message, so answers in its thread can be traced back to it.
        Slack only delivers mentions from conversations the bot is in: anywhere else this raises LookupError.
        """
        envelope = self._events.get(event_id) if event_id is not None else None
        if envelope is None:
            shape = Shape(org=org, from_team=from_team, from_enterprise=from_enterprise, bot_id=bot_id)
            envelope = await self._new_mention(text, channel, user, thread_ts, event_id, shape, tag)
        return await self._send_event(envelope, retry_num, retry_reason)

    async def edit_mention(self, mention: AppResponse, text: str) -> AppResponse:
        """Edit the text of an earlier mention: Slack re-sends `app_mention` (new event_id, same ts, `edited`)."""
        event = mention.sent["event"]
        stored = self._ws.message(str(event["ts"]))
        if stored is None:
            raise LookupError(f"mention {event['ts']} is not in the conversation")
        stored.text = f"<@{self._identity.bot_user_id}> {escape_mrkdwn(text)}"
        stored.edited = {"user": stored.author, "ts": self._ws.ts.next()}
        await self._ws.changed()
        shape = self._shapes.get(stored.ts, PLAIN)
        envelope = payloads.app_mention_envelope(
            self._identity, stored, event_id=ids.slack_id("Ev"), now=time.time(), shape=shape
        )
        self._events[envelope["event_id"]] = envelope
        return await self._send_event(envelope, None, "")

    async def _send_event(self, envelope: JsonDict, retry_num: int | None, retry_reason: str) -> AppResponse:
        headers = {}
        retry = None
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
            retry = (retry_num, retry_reason)
        response = await self.post_event(envelope, headers=headers, retry=retry)
        self._late(f"event {envelope['event_id']}", response)
        return response

    async def _new_mention(
        self,
        text: str,
        channel: str,
        user: str,
        thread_ts: str | None,
        event_id: str | None,
        shape: Shape,
        tag: str = "",
    ) -> JsonDict:
        conversation = self._ws.conversations.get(channel)
        if conversation is None or not conversation.bot_member:
            raise LookupError(f"the bot is not in {channel}: Slack delivers no app_mention from there")
        author = shape.bot_id or user
        if shape.bot_id is None:
            conversation.members.add(user)
        typed = f"<@{self._identity.bot_user_id}> {escape_mrkdwn(text)}"
        mention = self._ws.add(
            channel=channel, text=typed, blocks=None, author=author, origin="user", thread_ts=thread_ts, tag=tag
        )
        await self._ws.changed()
        self._shapes[mention.ts] = shape
        envelope = payloads.app_mention_envelope(
            self._identity, mention, event_id=event_id or ids.slack_id("Ev"), now=time.time(), shape=shape
        )
        self._events[envelope["event_id"]] = envelope
        return envelope

    async def post_event(
        self,
        envelope: JsonDict,
        *,
        headers: Mapping[str, str] | None = None,
        signature_override: str | None = None,
        timestamp_override: int | None = None,
        retry: tuple[int, str] | None = None,
    ) -> AppResponse:
        """Send any Events API body as JSON, signed (or as an events_api envelope in Socket Mode)."""
        if signature_override is None and timestamp_override is None:
            body = json.dumps(envelope).encode()
            return await self._deliver("events_api", body, JSON, envelope, headers=headers, retry=retry)
        return await self.post_signed(
            json.dumps(envelope).encode(),
            JSON,
            headers=headers,
            signature_override=signature_override,
            timestamp_override=timestamp_override,
            sent=envelope,
        )

    async def url_verification(self, challenge: str | None = None) -> AppResponse:
        """The handshake Slack sends when the events URL is saved; the app must echo `challenge`."""
        body = payloads.url_verification_body(self._identity, challenge or ids.url_token())
        return await self.post_signed(json.dumps(body).encode(), JSON, sent=body)


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        return None
