"""Socket Mode as the stand-in plays it (apps.connections.open, the WebSocket, envelopes, acks, disconnects), and the
real app through it: Slack asks the app to reconnect while answers are in flight, and nothing is lost or doubled.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.dev.local_stack import LocalStack
from bot.dev.slack_standin import SlackStandIn
from bot.dev.slack_standin.socket_mode import MAX_CONNECTIONS, SocketModeHub

from .slack_helpers import all_text, answer_to, answers_to, wait_for_message

APP_TOKEN = "xapp-1-A0ROOMUSERS-test"
BOT_TOKEN = "xoxb-socket-test"


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(signing_secret="s" * 32, bot_token=BOT_TOKEN, app_token=APP_TOKEN) as standin:
        yield standin


def hub(slack: SlackStandIn) -> SocketModeHub:
    assert slack.socket is not None
    return slack.socket


async def open_url(slack: SlackStandIn, token: str = APP_TOKEN) -> str:
    client = AsyncWebClient(base_url=slack.api_base_url)
    response = await client.apps_connections_open(app_token=token)
    return str(response["url"])


async def test_apps_connections_open_needs_the_app_token(slack: SlackStandIn):
    for token, error in ((BOT_TOKEN, "not_allowed_token_type"), ("xapp-1-another-app", "invalid_auth")):
        with pytest.raises(SlackApiError) as refused:
            await open_url(slack, token)
        assert refused.value.response["error"] == error
    async with aiohttp.ClientSession() as session, session.post(f"{slack.api_base_url}apps.connections.open") as r:
        assert (await r.json())["error"] == "not_authed"
    assert (await open_url(slack)).startswith("ws://127.0.0.1:")
    assert hub(slack).open_calls == ["not_allowed_token_type", "invalid_auth", "not_authed", None]


async def test_hello_first_then_an_envelope_acked_with_its_id_and_payload(slack: SlackStandIn):
    url = await open_url(slack)
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        hello = json.loads(await ws.receive_str())
        assert hello["type"] == "hello" and hello["connection_info"]["app_id"] == slack.identity.app_id
        sending = asyncio.create_task(hub(slack).send("slash_commands", {"command": "/roomusers", "text": "x"}))
        envelope = json.loads(await ws.receive_str())
        assert envelope["type"] == "slash_commands" and envelope["accepts_response_payload"] is True
        assert envelope["payload"] == {"command": "/roomusers", "text": "x"}
        await ws.send_str(json.dumps({"envelope_id": envelope["envelope_id"], "payload": {"text": "hi"}}))
        answered = await sending
        assert answered.status == 200 and answered.json == {"text": "hi"} and answered.acked_in_time
        # A second ack of the same envelope is a bug in the app: the stand-in flags it.
        await ws.send_str(json.dumps({"envelope_id": envelope["envelope_id"]}))
        await slack.wait_for(lambda: slack.warnings, timeout=5)
    assert "acked 2 times" in slack.warnings[0]


async def test_an_envelope_never_acked_is_status_0_and_recorded(slack: SlackStandIn):
    url = await open_url(slack)
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.receive_str()  # hello
        response = await hub(slack).send("events_api", {"type": "event_callback"}, ack_wait=0.3)
        assert response.status == 0 and not response.acked_in_time
        assert [e.type for e in hub(slack).unacked()] == ["events_api"]


async def test_a_ticket_opens_one_connection(slack: SlackStandIn):
    url = await open_url(slack)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:
            await ws.receive_str()
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(url)
    assert len(hub(slack).refused_upgrades) == 1


async def test_an_eleventh_connection_is_told_too_many_websockets(slack: SlackStandIn):
    async with aiohttp.ClientSession() as session:
        sockets = []
        for _ in range(MAX_CONNECTIONS):
            ws = await session.ws_connect(await open_url(slack))
            await ws.receive_str()
            sockets.append(ws)
        extra = await session.ws_connect(await open_url(slack))
        assert json.loads(await extra.receive_str())["type"] == "hello"
        told = json.loads(await extra.receive_str())
        assert told["type"] == "disconnect" and told["reason"] == "too_many_websockets"
        for ws in [*sockets, extra]:
            await ws.close()


# -- the real app ------------------------------------------------------------------------------------------


@pytest.mark.socket_only
@pytest.mark.parametrize("reason", ["warning", "refresh_requested", "link_disabled"])
async def test_the_app_reconnects_when_told_to_and_keeps_answering(local: LocalStack, reason: str):
    socket = hub(local.slack)
    old = await socket.disconnect(reason)  # type: ignore[arg-type]
    await socket.wait_for_connections(opened=2, live=1, timeout=10)
    assert socket.open_calls == [None, None]  # apps.connections.open again, with the app token
    await local.slack.wait_for(lambda: old.closed_at is not None, timeout=10)
    assert old.closed_by == "client"  # slack_sdk closed the old session itself
    answer = await answer_to(local, "demo-12")
    assert "12 users" in all_text(answer)


@pytest.mark.socket_only
async def test_refresh_requested_while_answers_are_in_flight_loses_and_duplicates_nothing(local: LocalStack):
    local.sandbox.add_room("big-r", 12_000)
    local.sandbox.faults.set_latency(latency_ms=40)
    socket = hub(local.slack)
    command, mention = await asyncio.gather(local.slack.send_command("big-r"), local.slack.mention("big-r"))
    thread = str(mention.sent["event"]["ts"])

    def loading_reply() -> object:
        replies = [m for m in local.slack.thread("C0OPS", thread) if m.origin == "api"]
        return replies and "still loading" in all_text(replies[0])

    await local.slack.wait_for(lambda: answers_to(local.slack, "U0ALICE") and loading_reply(), timeout=10)
    old = await socket.disconnect("refresh_requested")
    during = await local.slack.send_command("demo-12", user_id="U0BOB", user_name="bob")  # while reconnecting
    await socket.wait_for_connections(opened=2, live=1, timeout=10)
    after = await local.slack.send_command("demo-1", user_id="U0CAROL", user_name="carol")
    assert all(r.status == 200 and r.acked_in_time for r in (command, mention, during, after))
    assert socket.open_calls == [None, None]
    assert all(envelope.ack_count == 1 for envelope in socket.envelopes.values())
    bob = await wait_for_message(local.slack, lambda: next(iter(answers_to(local.slack, "U0BOB")), None))
    carol = await wait_for_message(local.slack, lambda: next(iter(answers_to(local.slack, "U0CAROL")), None))
    assert "12 users" in all_text(bob) and "1 user" in all_text(carol)

    def complete() -> object:
        replies = [m for m in local.slack.thread("C0OPS", thread) if m.origin == "api"]
        return len(replies) == 1 and replies[0].replaced_count and "loading" not in all_text(replies[0]).lower()

    await local.slack.wait_for(complete, timeout=30)
    assert len(answers_to(local.slack, "U0BOB")) == 1 and len(answers_to(local.slack, "U0CAROL")) == 1
    assert old.closed_by == "client"


@pytest.mark.socket_only
async def test_an_envelope_racing_a_disconnect_is_acked_once_and_answered_once(local: LocalStack):
    socket = hub(local.slack)
    sent, _ = await asyncio.gather(local.slack.send_command("demo-12"), socket.disconnect("refresh_requested"))
    assert sent.status == 200 and sent.acked_in_time
    await socket.wait_for_connections(opened=2, live=1, timeout=10)
    answer = await wait_for_message(local.slack, lambda: next(iter(answers_to(local.slack, "U0ALICE")), None))
    assert "12 users" in all_text(answer)
    await local.until_idle()
    assert [envelope.ack_count for envelope in socket.envelopes.values()] == [1]
    assert len(answers_to(local.slack, "U0ALICE")) == 1
