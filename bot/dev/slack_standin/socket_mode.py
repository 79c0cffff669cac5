"""Socket Mode, played by the Slack stand-in: apps.connections.open, the WebSocket, envelopes, acks, disconnects.

What it models (slack-platform.md §13, samples in
shared/reference/external/slack/payloads/socket_mode.*.json):

- `POST /api/apps.connections.open` with `Authorization: Bearer xapp-…` and an empty body answers
  `{"ok": true, "url": "ws://<stand-in>/link/?ticket=…&app_id=…"}`. A bot token gets `not_allowed_token_type`,
  no token `not_authed`, another token `invalid_auth`. Each ticket opens one connection, within 30 s.
- The WebSocket's first frame is `{"type": "hello", "num_connections": n, "debug_info": …, "connection_info": …}`.
- Every payload goes to ONE live connection, picked at random as Slack does:
  `{"envelope_id", "type": "slash_commands" | "interactive" | "events_api", "payload", "accepts_response_payload"}`
  (+ `retry_attempt`, `retry_reason` for events). `payload` is exactly what HTTP mode would POST.
- The app acks with one frame `{"envelope_id": …}` (optionally `"payload"`: a slash command's message) within 3 s.
  An ack is accepted on any of the app's connections: slack_sdk sends it on whatever its current session is, which
  after a reconnect is the new one.
- `disconnect(reason)` sends `{"type": "disconnect", "reason": …}`; that connection gets no more envelopes, and the
  server closes it `close_after` seconds later unless the client closed it first (slack_sdk closes the old session
  before it opens the new one). An 11th live connection is told `too_many_websockets`.

Envelopes sent while no connection is live (between an old session's close and the new one's hello) wait up to
CONNECTION_WAIT_SECONDS for one, as Slack queues them. Pings are answered by aiohttp (autoping): slack_sdk sends
`sdk-ping-pong:<t>` pings and reads the pongs to decide whether its session is stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import WSCloseCode, WSMsgType, web

from bot.dev.slack_standin.models import AppResponse, JsonDict
from bot.dev.slack_standin.workspace import Workspace

__all__ = [
    "ACK_WAIT_SECONDS",
    "LINK_PATH",
    "MAX_CONNECTIONS",
    "Connection",
    "DisconnectReason",
    "Envelope",
    "EnvelopeType",
    "SocketModeHub",
]

EnvelopeType = Literal["slash_commands", "interactive", "events_api"]
DisconnectReason = Literal["warning", "refresh_requested", "link_disabled", "too_many_websockets"]
ClosedBy = Literal["client", "server"]

LINK_PATH = "/link/"
MAX_CONNECTIONS = 10  # per app (slack-platform.md §2)
TICKET_LIFETIME_SECONDS = 30.0  # assumption: Slack's URLs are short-lived and single-use
DEFAULT_CLOSE_AFTER_SECONDS = 5.0  # a connection told to go away is closed by the server after this
ACK_WAIT_SECONDS = 10.0  # like the HTTP driver: wait past Slack's 3 s so a test can see how late an ack was
CONNECTION_WAIT_SECONDS = 5.0
HOST = "applink-standin"
NO_ANSWER = 0  # AppResponse.status when the app never acked (Bolt does not ack payloads nothing handled)


@dataclass(slots=True)
class Connection:
    """One WebSocket the app opened."""

    id: str
    ws: web.WebSocketResponse
    opened_at: float
    closed_at: float | None = None
    closed_by: ClosedBy | None = None
    told_to_go: DisconnectReason | None = None
    envelopes: list[str] = field(default_factory=list)  # envelope_ids sent here
    acks: list[str] = field(default_factory=list)  # envelope_ids acked here (maybe sent elsewhere)

    @property
    def live(self) -> bool:
        """Open and not told to go away: may receive envelopes."""
        return self.closed_at is None and self.told_to_go is None and not self.ws.closed


@dataclass(slots=True)
class Envelope:
    """One delivery and what became of it."""

    envelope_id: str
    type: EnvelopeType
    frame: JsonDict
    connection_id: str
    sent_at: float
    answered: asyncio.Future[JsonDict]
    ack_connection_id: str | None = None
    ack_elapsed: float | None = None
    ack_count: int = 0

    @property
    def payload(self) -> JsonDict:
        payload = self.frame["payload"]
        assert isinstance(payload, dict)
        return payload


class SocketModeHub:
    """The Socket Mode side of the stand-in. `SlackStandIn` owns one when it is given an app token."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        app_token: str,
        app_id: str,
        bot_token: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if not app_token.startswith("xapp-"):
            raise ValueError("a Socket Mode app token starts with xapp-")
        self._ws = workspace
        self._app_token = app_token
        self._bot_token = bot_token
        self._app_id = app_id
        self._clock = clock
        self._rng = rng or random.Random(0)  # picks a connection; not a secret
        self._tickets: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_id = 0
        self.base_url = ""  # "ws://127.0.0.1:<port>", set by the server once it knows its address
        self.accepting = True  # False: apps.connections.open answers internal_error (Slack unreachable)
        self.open_calls: list[str | None] = []  # each apps.connections.open: None = ok, else the error
        self.refused_upgrades: list[str] = []  # tickets that were unknown, used or expired
        self.connections: list[Connection] = []
        self.envelopes: dict[str, Envelope] = {}
        self.unexpected_frames: list[str] = []  # frames that were not acks of a known envelope

    # -- wiring ------------------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(LINK_PATH, self._serve_link)

    def connections_open(self, authorization: str | None) -> tuple[int, JsonDict]:
        """Answer `apps.connections.open` (called by the Web API handler before its bot-token check)."""
        error = self._open_error(authorization)
        self.open_calls.append(error)
        if error is not None:
            return 200, {"ok": False, "error": error}
        ticket = secrets.token_urlsafe(18)
        self._tickets[ticket] = self._clock()
        return 200, {"ok": True, "url": f"{self.base_url}{LINK_PATH}?ticket={ticket}&app_id={self._app_id}"}

    def _open_error(self, authorization: str | None) -> str | None:
        if not authorization:
            return "not_authed"
        scheme, _, token = authorization.partition(" ")
        if scheme != "Bearer" or not token:
            return "invalid_auth"
        if token.startswith(("xoxb-", "xoxp-")):
            return "not_allowed_token_type"
        if not secrets.compare_digest(token, self._app_token):
            return "invalid_auth"
        if not self.accepting:
            return "internal_error"
        return None

    # -- reading -----------------------------------------------------------------------------------------

    @property
    def live(self) -> list[Connection]:
        return [c for c in self.connections if c.live]

    def acked(self) -> list[Envelope]:
        return [e for e in self.envelopes.values() if e.ack_count]

    def unacked(self) -> list[Envelope]:
        return [e for e in self.envelopes.values() if not e.ack_count]

    async def wait_for_connections(self, opened: int = 1, *, live: int = 1, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Until at least `opened` connections were ever opened and `live` are live now."""
        await self._ws.wait_for(lambda: len(self.connections) >= opened and len(self.live) >= live, timeout)

    # -- the WebSocket -----------------------------------------------------------------------------------

    async def _serve_link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        issued = self._tickets.pop(ticket, None)
        if issued is None or self._clock() - issued > TICKET_LIFETIME_SECONDS:
            self.refused_upgrades.append(ticket)
            return web.Response(status=401, text="invalid_ticket")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._next_id += 1
        connection = Connection(id=f"ws{self._next_id}", ws=ws, opened_at=self._clock())
        self.connections.append(connection)
        await ws.send_str(json.dumps(self._hello()))
        if len(self.live) > MAX_CONNECTIONS:
            await self._tell_to_go(connection, "too_many_websockets", close_after=0.0)
        await self._ws.changed()
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await self._on_frame(connection, str(message.data))
                elif message.type == WSMsgType.BINARY:
                    self.unexpected_frames.append(f"{connection.id}: binary frame")
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            connection.closed_at = self._clock()
            if connection.closed_by is None:
                connection.closed_by = "client"
            await self._ws.changed()
        return ws

    def _hello(self) -> JsonDict:
        return {
            "type": "hello",
            "num_connections": len(self.live),
            "debug_info": {"host": HOST, "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": self._app_id},
        }

    async def _on_frame(self, connection: Connection, data: str) -> None:
        try:
            frame = json.loads(data)
        except json.JSONDecodeError:
            self.unexpected_frames.append(f"{connection.id}: not JSON: {data[:80]!r}")
            return
        envelope_id = frame.get("envelope_id") if isinstance(frame, dict) else None
        envelope = self.envelopes.get(envelope_id) if isinstance(envelope_id, str) else None
        if envelope is None:
            self.unexpected_frames.append(f"{connection.id}: not an ack of a known envelope: {data[:80]!r}")
            return
        assert isinstance(frame, dict)
        envelope.ack_count += 1
        connection.acks.append(envelope.envelope_id)
        if envelope.ack_count > 1:
            self._ws.warn(f"{envelope.type} envelope {envelope.envelope_id} acked {envelope.ack_count} times")
            await self._ws.changed()
            return
        payload = frame.get("payload")
        if payload is not None and not envelope.frame["accepts_response_payload"]:
            self._ws.warn(f"{envelope.type} envelope {envelope.envelope_id}: ack payload where none is accepted")
        envelope.ack_connection_id = connection.id
        envelope.ack_elapsed = self._clock() - envelope.sent_at
        if not envelope.answered.done():
            envelope.answered.set_result(frame)
        await self._ws.changed()

    # -- delivering --------------------------------------------------------------------------------------

    async def send(
        self,
        kind: EnvelopeType,
        payload: JsonDict,
        *,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
        ack_wait: float = ACK_WAIT_SECONDS,
        sent: JsonDict | None = None,
    ) -> AppResponse:
        """Deliver `payload` as one envelope and wait for its ack: the app's answer, shaped like HTTP mode's.

        status 200 = acked (`elapsed` says how fast, so `acked_in_time` means what it means over HTTP); the ack's
        payload, if any, is `json` and `body`. status NO_ANSWER (0) = no ack within `ack_wait`; 503 = no live
        connection came within CONNECTION_WAIT_SECONDS.
        """
        frame: JsonDict = {
            "envelope_id": str(uuid.uuid4()),
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind == "slash_commands",
        }
        if kind == "events_api":
            frame["retry_attempt"] = retry_attempt or 0
            frame["retry_reason"] = retry_reason or ""
        shown = sent if sent is not None else payload
        envelope = await self._send_frame(kind, frame)
        if envelope is None:
            return _response(503, None, 0.0, shown)
        try:
            ack = await asyncio.wait_for(asyncio.shield(envelope.answered), ack_wait)
        except TimeoutError:
            return _response(NO_ANSWER, None, ack_wait, shown)
        body = ack.get("payload")
        return _response(200, body if isinstance(body, dict) else None, envelope.ack_elapsed or 0.0, shown)

    async def _send_frame(self, kind: EnvelopeType, frame: JsonDict) -> Envelope | None:
        """Send on a live connection; if that one turns out to be closing, try another (it never got the frame)."""
        deadline = self._clock() + CONNECTION_WAIT_SECONDS
        while True:
            connection = await self._pick(max(0.0, deadline - self._clock()))
            if connection is None:
                return None
            envelope = Envelope(
                envelope_id=str(frame["envelope_id"]),
                type=kind,
                frame=frame,
                connection_id=connection.id,
                sent_at=self._clock(),
                answered=asyncio.get_running_loop().create_future(),
            )
            self.envelopes[envelope.envelope_id] = envelope  # before sending: the ack may come at once
            try:
                await connection.ws.send_str(json.dumps(frame))
            except ConnectionError:
                del self.envelopes[envelope.envelope_id]
                connection.told_to_go = connection.told_to_go or "warning"  # treat as gone; pick another
                continue
            connection.envelopes.append(envelope.envelope_id)
            return envelope

    async def _pick(self, wait: float) -> Connection | None:
        try:
            await self._ws.wait_for(lambda: bool(self.live), wait)
        except TimeoutError:
            return None
        return self._rng.choice(self.live)

    # -- going away --------------------------------------------------------------------------------------

    async def disconnect(
        self,
        reason: DisconnectReason,
        *,
        connection: Connection | None = None,
        close_after: float = DEFAULT_CLOSE_AFTER_SECONDS,
    ) -> Connection:
        """Tell one connection (default: the newest live one) to go away, as Slack does every few hours."""
        target = connection or _newest(self.live)
        await self._tell_to_go(target, reason, close_after=close_after)
        return target

    async def _tell_to_go(self, connection: Connection, reason: DisconnectReason, *, close_after: float) -> None:
        connection.told_to_go = reason
        frame: JsonDict = {"type": "disconnect", "reason": reason, "debug_info": {"host": HOST}}
        if reason == "too_many_websockets":
            frame.update(num_connections=len(self.live) + 1, connection_info={"app_id": self._app_id})
        with contextlib.suppress(ConnectionError):
            await connection.ws.send_str(json.dumps(frame))
        task = asyncio.create_task(self._close_later(connection, reason, close_after))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close_later(self, connection: Connection, reason: DisconnectReason, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await self._ws.wait_for(lambda: connection.closed_at is not None, delay)
        if connection.closed_at is None and not connection.ws.closed:
            connection.closed_by = "server"
            await connection.ws.close(code=WSCloseCode.GOING_AWAY, message=reason.encode())

    async def close(self) -> None:
        """Close every connection (before the HTTP runner's cleanup, which would otherwise wait for them)."""
        for task in list(self._tasks):
            task.cancel()
        for connection in self.connections:
            if connection.closed_at is None and not connection.ws.closed:
                connection.closed_by = "server"
                await connection.ws.close(code=WSCloseCode.GOING_AWAY, message=b"stand-in stopping")
        self.accepting = False


def _newest(connections: Sequence[Connection]) -> Connection:
    if not connections:
        raise LookupError("no live Socket Mode connection to disconnect")
    return max(connections, key=lambda c: c.opened_at)


def _response(status: int, body: JsonDict | None, elapsed: float, sent: JsonDict) -> AppResponse:
    return AppResponse(
        status=status,
        headers={},
        body=json.dumps(body) if body is not None else "",
        json=body,
        elapsed=elapsed,
        sent=sent,
    )
