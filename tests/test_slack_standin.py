"""The Slack stand-in, exercised over real loopback HTTP with slack_sdk's own clients."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import builtin_async_handlers
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.dev.slack_standin import (
    MessageRejected,
    ResponseContext,
    SlackStandIn,
    StoredMessage,
    buttons,
    check_message,
    render_message,
)
from bot.dev.slack_standin.manifest import ManifestFacts
from bot.dev.slack_standin.payloads import ORG_USER
from bot.dev.slack_standin.ratelimits import RateLimiter, RateLimits, max_in_window

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-standin-test-token"
COMMAND_FIELDS = {
    "token", "team_id", "team_domain", "channel_id", "channel_name", "user_id", "user_name", "command", "text",
    "api_app_id", "is_enterprise_install", "response_url", "trigger_id",
}  # fmt: skip


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def pager(prev_value: str = "p0", next_value: str = "p2") -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": "pager",
        "elements": [
            {
                "type": "button",
                "action_id": "prev",
                "text": {"type": "plain_text", "text": "◀ Prev"},
                "value": prev_value,
            },
            {
                "type": "button",
                "action_id": "next",
                "text": {"type": "plain_text", "text": "Next ▶"},
                "value": next_value,
            },
        ],
    }


PAGE = [section("*Room demo-120*: 120 users"), pager()]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    signature_valid: bool

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))

    def payload(self) -> Any:
        return json.loads(self.form()["payload"])


class RecordingApp:
    """A stand-in for the Bolt app: records what Slack sends and checks signatures as Bolt would."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.reply: web.Response | None = None
        self.verifier = SignatureVerifier(SECRET)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        valid = self.verifier.is_valid_request(body, dict(request.headers))
        self.received.append(Received(dict(request.headers), body, valid))
        if not valid:
            return web.Response(status=401, text="invalid request")
        return self.reply or web.Response(status=200)


@pytest.fixture
async def slack():
    standin = SlackStandIn(signing_secret=SECRET, bot_token=TOKEN)
    # The people these tests address are in #ops (ephemerals to anyone else are user_not_in_channel).
    standin.add_conversation("C0OPS", name="ops", members=["U0ALICE", "U0BOB"])
    await standin.start()
    yield standin
    await standin.stop()


@pytest.fixture
def client(slack):
    return AsyncWebClient(token=TOKEN, base_url=slack.api_base_url)


@pytest.fixture
async def app(slack):
    recorder = RecordingApp()
    web_app = web.Application()
    web_app.router.add_post("/slack/events", recorder.handle)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    slack.app_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    yield recorder
    await runner.cleanup()


async def post_page(client, channel: str = "C0OPS") -> StoredMessage:
    response = await client.chat_postMessage(channel=channel, text="Room demo-120: 120 users", blocks=PAGE)
    return StoredMessage(channel=channel, ts=response["ts"], text=None, blocks=[])


# -- acting as Slack toward the app ------------------------------------------------------------------------


async def test_command_is_signed_and_carries_every_field_slack_sends(slack, app):
    response = await slack.send_command("room <1> & b")

    assert response.status == 200
    assert response.acked_in_time
    received = app.received[0]
    assert received.signature_valid
    assert received.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = received.form()
    assert set(form) == COMMAND_FIELDS
    assert form["text"] == "room &lt;1&gt; &amp; b"  # escaped as Slack escapes user input
    assert form["command"] == "/roomusers"
    assert form["response_url"].startswith(f"{slack.base_url}/response/")
    assert form == response.sent


async def test_forged_signatures_and_stale_timestamps_fail_verification(slack, app):
    body = b"token=x&text=demo-120"
    forged = await slack.post_signed(body, "application/x-www-form-urlencoded", signature_override="v0=" + "0" * 64)
    stale = await slack.post_signed(
        body, "application/x-www-form-urlencoded", timestamp_override=int(time.time()) - 301
    )
    genuine = await slack.post_signed(body, "application/x-www-form-urlencoded")

    assert (forged.status, stale.status, genuine.status) == (401, 401, 200)
    # The stale one is correctly signed for its timestamp: only its age makes it invalid.
    stale_headers = app.received[1].headers
    expected = SignatureVerifier(SECRET).generate_signature(
        timestamp=stale_headers["X-Slack-Request-Timestamp"], body=body
    )
    assert stale_headers["X-Slack-Signature"] == expected


async def test_ack_body_is_shown_as_an_ephemeral_message(slack, app):
    app.reply = web.json_response({"text": "Fetching room demo-120…"})

    await slack.send_command("demo-120", user_id="U0BOB")

    [ack] = slack.ephemerals("U0BOB")
    assert (ack.text, ack.origin, ack.channel) == ("Fetching room demo-120…", "ack", "C0OPS")
    assert slack.messages("C0OPS") == []


async def test_click_on_a_visible_message_sends_a_block_actions_payload(slack, app, client):
    page = await post_page(client)

    response = await slack.click(page, "next", user_id="U0BOB")

    assert response.status == 200
    assert app.received[0].signature_valid
    payload = app.received[0].payload()
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == "U0BOB"
    assert payload["container"] == {
        "type": "message",
        "message_ts": page.ts,
        "channel_id": "C0OPS",
        "is_ephemeral": False,
    }
    assert payload["message"]["ts"] == page.ts
    assert payload["message"]["blocks"][1]["elements"][1]["value"] == "p2"
    [action] = payload["actions"]
    assert (action["action_id"], action["block_id"], action["value"], action["type"]) == (
        "next",
        "pager",
        "p2",
        "button",
    )
    assert action["text"]["text"] == "Next ▶"
    assert payload["response_url"].startswith(f"{slack.base_url}/response/")


async def test_click_on_an_ephemeral_message_has_no_message_field(slack, app, client):
    reply = await client.chat_postEphemeral(channel="C0OPS", user="U0ALICE", text="page 1", blocks=PAGE)
    [ephemeral] = slack.ephemerals("U0ALICE")
    assert ephemeral.ts == reply["message_ts"]

    await slack.click(ephemeral, "prev")

    payload = app.received[0].payload()
    assert "message" not in payload  # Slack does not keep ephemerals, so it cannot send them back
    assert payload["container"]["is_ephemeral"] is True
    with pytest.raises(LookupError, match="ephemeral to U0ALICE"):
        await slack.click(ephemeral, "prev", user_id="U0BOB")
    with pytest.raises(LookupError, match=r"'next_page'.*\['prev', 'next'\]"):
        await slack.click(ephemeral, "next_page")


async def test_click_raw_sends_forged_payloads(slack, app):
    await slack.click_raw({"type": "block_actions", "actions": [{"action_id": "next", "value": "forged"}]})

    assert app.received[0].signature_valid
    assert app.received[0].payload()["actions"][0]["value"] == "forged"


async def test_mention_is_stored_delivered_and_retried_identically(slack, app, client):
    first = await slack.mention("room <1> & b", thread_ts=None)
    event = first.sent["event"]

    assert app.received[0].signature_valid
    assert app.received[0].headers["Content-Type"] == "application/json"
    assert event["type"] == "app_mention"
    assert event["text"] == "<@UROOMUSERS> room &lt;1&gt; &amp; b"
    assert first.sent["event_id"].startswith("Ev")
    assert first.sent["authorizations"][0]["user_id"] == "UROOMUSERS"
    [typed] = slack.messages("C0OPS")
    assert (typed.ts, typed.author, typed.origin) == (event["ts"], "U0ALICE", "user")

    await slack.mention("ignored", event_id=first.sent["event_id"], retry_num=1)

    retry = app.received[1]
    assert json.loads(retry.body) == first.sent
    assert (retry.headers["X-Slack-Retry-Num"], retry.headers["X-Slack-Retry-Reason"]) == ("1", "http_timeout")
    assert len(slack.messages("C0OPS")) == 1  # a retry is not a new message

    await client.chat_postMessage(channel="C0OPS", thread_ts=event["ts"], text="42 users")
    [reply] = slack.thread("C0OPS", event["ts"])
    assert reply.text == "42 users"


async def test_mention_inside_a_thread_carries_thread_ts(slack, app):
    response = await slack.mention("demo-120", thread_ts="1700000000.000100")

    assert response.sent["event"]["thread_ts"] == "1700000000.000100"


async def test_url_verification_challenge(slack, app):
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    app.reply = web.json_response({"challenge": challenge})

    response = await slack.url_verification(challenge)

    assert json.loads(app.received[0].body)["type"] == "url_verification"
    assert response.json == {"challenge": challenge}


async def test_driver_needs_an_app_url(slack):
    with pytest.raises(RuntimeError, match="app_url"):
        await slack.send_command("demo-120")


async def test_a_real_bolt_app_works_against_the_standin(slack):
    """Bolt verifies the driver's signatures, parses its payloads, and its respond()/client reach the stand-in."""
    bolt = AsyncApp(signing_secret=SECRET, client=AsyncWebClient(token=TOKEN, base_url=slack.api_base_url))

    @bolt.command("/roomusers")
    async def command(ack, respond, command):
        await ack(text=f"Fetching room {command['text']}…")
        await respond(text="page 1", blocks=PAGE, replace_original=False)

    @bolt.action("next")
    async def next_page(ack, respond, body):
        await ack()
        await respond(text=f"page {body['actions'][0]['value']}", blocks=[section("*p2*")], replace_original=True)

    @bolt.event("app_mention")
    async def mention(event, client):
        await client.chat_postMessage(channel=event["channel"], thread_ts=event["ts"], text="42 users")

    runner = web.AppRunner(bolt.web_app(path="/slack/events"), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    slack.app_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        assert (await slack.send_command("demo-120")).status == 200
        ack, page = await slack.next_message(), await slack.next_message()
        assert (ack.origin, ack.text, page.origin, page.text) == (
            "ack",
            "Fetching room demo-120…",
            "response_url",
            "page 1",
        )

        await slack.click(page, "next")
        replaced = await slack.next_message()
        assert (replaced.ts, replaced.text, replaced.replaced_count) == (page.ts, "page p2", 1)

        event = (await slack.mention("demo-120")).sent["event"]
        [reply] = await slack.wait_for(lambda: slack.thread("C0OPS", event["ts"]))
        assert reply.text == "42 users"

        forged = await slack.post_signed(
            b"command=%2Froomusers", "application/x-www-form-urlencoded", signature_override="v0=0"
        )
        assert forged.status == 401
        assert slack.warnings == []
    finally:
        await runner.cleanup()


# -- the Web API through slack_sdk ---------------------------------------------------------------------------


async def test_auth_and_unknown_methods(slack, client):
    auth = await client.auth_test()
    assert (auth["user_id"], auth["team_id"]) == ("UROOMUSERS", "T0DEMO")

    with pytest.raises(SlackApiError) as unknown:
        await client.api_call("chat.scheduleTeleport")
    assert unknown.value.response["error"] == "unknown_method"

    with pytest.raises(SlackApiError) as bad_token:
        await AsyncWebClient(token="xoxb-wrong", base_url=slack.api_base_url).auth_test()
    assert bad_token.value.response["error"] == "invalid_auth"
    assert "xoxb" not in repr(slack.api_calls)  # tokens are never recorded


async def test_post_update_and_ephemeral_messages(slack, client):
    posted = await client.chat_postMessage(channel="C0OPS", text="page 1", blocks=PAGE)
    second = await client.chat_postMessage(channel="C0OPS", text="another")
    assert posted["channel"] == "C0OPS"
    assert float(second["ts"]) > float(posted["ts"])
    assert posted["message"]["blocks"][0]["block_id"]  # Slack fills in missing block_ids

    updated = await client.chat_update(channel="C0OPS", ts=posted["ts"], text="page 2", blocks=[section("*page 2*")])

    assert updated["ts"] == posted["ts"]
    first = slack.messages("C0OPS")[0]
    assert (first.text, first.replaced_count, first.blocks[0]["text"]["text"]) == ("page 2", 1, "*page 2*")

    ephemeral = await client.chat_postEphemeral(channel="C0OPS", user="U0BOB", text="only you")
    [mine] = slack.ephemerals("U0BOB")
    assert (mine.ts, mine.ephemeral, mine.user) == (ephemeral["message_ts"], True, "U0BOB")
    assert len(slack.messages("C0OPS")) == 2

    for ts, error in ((ephemeral["message_ts"], "cant_update_message"), ("1.000001", "message_not_found")):
        with pytest.raises(SlackApiError) as refused:
            await client.chat_update(channel="C0OPS", ts=ts, text="edit")
        assert refused.value.response["error"] == error
    assert slack.warnings == []


async def test_direct_messages(slack, client):
    opened = await client.conversations_open(users="U0BOB")
    again = await client.conversations_open(users=["U0BOB"])
    posted = await client.chat_postMessage(channel="U0BOB", text="hi")

    assert opened["channel"]["id"] == again["channel"]["id"] == posted["channel"]
    assert opened["channel"]["id"].startswith("D")
    assert [m.text for m in slack.messages(posted["channel"])] == ["hi"]


async def test_files_upload_v2_records_the_bytes(slack, client):
    csv = "user_id,user_name\nu1,Zoë\n"

    response = await client.files_upload_v2(
        content=csv, filename="demo-120.csv", title="demo-120", channel="C0OPS", initial_comment="Room demo-120"
    )

    [stored] = slack.files
    assert stored.content == csv.encode()
    assert (stored.filename, stored.title, stored.channel_id) == ("demo-120.csv", "demo-120", "C0OPS")
    assert stored.initial_comment == "Room demo-120"
    assert response["file"]["id"] == stored.id
    methods = [call.method for call in slack.api_calls]
    assert methods == ["files.getUploadURLExternal", "files.completeUploadExternal"]


# -- Slack's message limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("blocks", "error"),
    [
        ([section(f"user {i}") for i in range(51)], "invalid_blocks"),
        ([section("x" * 3001)], "invalid_blocks"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "invalid_blocks"),
        ([pager(next_value="v" * 2001)], "invalid_blocks"),
        ([section("")], "invalid_blocks"),
        ([section("x" * 2500) for _ in range(5)], "msg_blocks_too_long"),
    ],
    ids=["51-blocks", "long-section", "long-header", "long-button-value", "empty-section", "12k-total"],
)
async def test_oversized_messages_are_refused(slack, client, blocks, error):
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel="C0OPS", text="fallback", blocks=blocks)

    assert refused.value.response["error"] == error
    assert slack.messages("C0OPS") == []
    assert slack.api_calls[-1].error == error


def test_limits_report_where_the_problem_is():
    long_button = pager()
    long_button["elements"][0]["text"]["text"] = "b" * 76
    with pytest.raises(MessageRejected) as rejected:
        check_message("fallback", [section("ok"), long_button])

    assert rejected.value.error == "invalid_blocks"
    assert rejected.value.details == [
        "[ERROR] must be less than 76 characters [json-pointer:/blocks/1/elements/0/text/text]"
    ]
    with pytest.raises(MessageRejected, match="no_text"):
        check_message("", [])
    duplicate = [pager(), pager()]
    with pytest.raises(MessageRejected, match="duplicate block_id"):
        check_message("fallback", duplicate)


async def test_blocks_without_fallback_text_are_flagged(slack, client):
    with pytest.warns(UserWarning, match="text"):  # slack_sdk warns too
        await client.chat_postMessage(channel="C0OPS", blocks=PAGE)
    with pytest.warns(UserWarning, match="text"), pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel="C0OPS", text="")

    [message] = slack.messages("C0OPS")
    assert message.missing_text
    assert slack.warnings == ["chat.postMessage to C0OPS: blocks without fallback text"]
    assert refused.value.response["error"] == "no_text"


async def test_link_names_is_recorded_and_flagged(slack, client):
    await client.chat_postMessage(channel="C0OPS", text="<!channel>", link_names=True)

    assert slack.messages("C0OPS")[0].link_names is True
    assert "link_names" in slack.warnings[0]


# -- response_url ----------------------------------------------------------------------------------------------


async def test_a_response_url_works_five_times_then_404(slack):
    webhook = AsyncWebhookClient(slack.new_response_url(ResponseContext(channel="C0OPS", user="U0ALICE")))

    statuses = [(await webhook.send(text=f"try {i}")).status_code for i in range(6)]

    assert statuses == [200] * 5 + [404]
    assert slack.response_url_posts[-1].body == "used_url"
    assert len(slack.ephemerals("U0ALICE")) == 5


async def test_a_response_url_expires_after_30_minutes():
    now = [1_700_000_000.0]
    standin = SlackStandIn(signing_secret=SECRET, bot_token=TOKEN, clock=lambda: now[0])
    async with standin:
        webhook = AsyncWebhookClient(standin.new_response_url(ResponseContext(channel="C0OPS", user="U0ALICE")))
        assert (await webhook.send(text="fresh")).status_code == 200
        now[0] += 30 * 60 + 1
        expired = await webhook.send(text="late")

    assert (expired.status_code, expired.body) == (404, "expired_url")


async def test_click_url_replace_original_edits_the_clicked_ephemeral_in_place(slack, app, client):
    await client.chat_postEphemeral(channel="C0OPS", user="U0ALICE", text="page 1", blocks=PAGE)
    [page] = slack.ephemerals("U0ALICE")
    url = (await slack.click(page, "next")).sent["response_url"]

    response = await AsyncWebhookClient(url).send(text="page 2", blocks=[section("*page 2*")], replace_original=True)

    assert (response.status_code, response.body) == (200, "ok")
    [edited] = slack.ephemerals("U0ALICE")
    assert (edited.ts, edited.text, edited.replaced_count, edited.ephemeral) == (page.ts, "page 2", 1, True)
    assert edited.blocks[0]["text"]["text"] == "*page 2*"
    assert slack.warnings == []


async def test_click_url_delete_original_deletes(slack, app, client):
    page = await post_page(client)
    url = (await slack.click(page, "next")).sent["response_url"]

    response = await AsyncWebhookClient(url).send_dict({"delete_original": True})

    assert response.status_code == 200
    assert slack.messages("C0OPS") == []


async def test_command_url_replace_original_posts_a_new_message(slack, app):
    url = (await slack.send_command("demo-120")).sent["response_url"]
    webhook = AsyncWebhookClient(url)

    await webhook.send(text="page 1", blocks=PAGE, replace_original=True)
    await webhook.send(text="page 1 again", blocks=PAGE, replace_original=True)
    await webhook.send(text="for everyone", response_type="in_channel")

    assert [m.text for m in slack.ephemerals("U0ALICE")] == ["page 1", "page 1 again"]
    assert [m.text for m in slack.messages("C0OPS")] == ["for everyone"]
    assert [m.text for m in slack.visible_to("U0ALICE", "C0OPS")] == ["page 1", "page 1 again", "for everyone"]
    assert [m.text for m in slack.visible_to("U0BOB", "C0OPS")] == ["for everyone"]
    assert {m.origin for m in slack.ephemerals("U0ALICE")} == {"response_url"}


async def test_response_url_refuses_invalid_messages(slack):
    webhook = AsyncWebhookClient(slack.new_response_url(ResponseContext(channel="C0OPS", user="U0ALICE")))

    too_many = await webhook.send(text="x", blocks=[section("u")] * 51)
    empty = await webhook.send_dict({"response_type": "ephemeral"})

    assert (too_many.status_code, too_many.body) == (400, "invalid_blocks")
    assert (empty.status_code, empty.body) == (400, "no_text")
    assert slack.ephemerals("U0ALICE") == []


async def test_click_url_without_explicit_replace_original_is_flagged(slack, app, client):
    page = await post_page(client)
    url = (await slack.click(page, "next")).sent["response_url"]

    await AsyncWebhookClient(url).send(text="page 2")

    assert len(slack.messages("C0OPS")) == 1  # not replaced: a new ephemeral instead
    assert slack.warnings == [f"response_url for message {page.ts}: replace_original not set explicitly"]


# -- fault knobs --------------------------------------------------------------------------------------------


async def test_response_url_failures_and_delays(slack):
    webhook = AsyncWebhookClient(slack.new_response_url(ResponseContext(channel="C0OPS", user="U0ALICE")))
    slack.fail_next_response_urls(500, count=1)
    failed = await webhook.send(text="first")

    slack.delay_next_response_urls(0.2, count=1)
    started = time.perf_counter()
    delayed = await webhook.send(text="second")
    elapsed = time.perf_counter() - started

    assert (failed.status_code, failed.body) == (500, "internal_error")
    assert delayed.status_code == 200
    assert elapsed >= 0.2
    assert [m.text for m in slack.ephemerals("U0ALICE")] == ["second"]


async def test_rate_limits_are_honoured_by_the_retry_handler(slack, client, monkeypatch):
    slept: list[float] = []

    async def record_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(builtin_async_handlers, "asyncio", SimpleNamespace(sleep=record_sleep))
    slack.rate_limit_next_api_calls("chat.postMessage", count=2, retry_after=3)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))

    response = await client.chat_postMessage(channel="C0OPS", text="hello")

    assert response["ok"]
    assert [call.status for call in slack.api_calls] == [429, 429, 200]
    assert len(slept) == 2
    assert all(3 <= seconds < 4 for seconds in slept)  # Retry-After plus slack_sdk's jitter


async def test_rate_limit_without_a_retry_handler_raises(slack, client):
    slack.rate_limit_next_api_calls("*", count=1, retry_after=7)

    with pytest.raises(SlackApiError) as limited:
        await client.auth_test()

    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    assert limited.value.response["error"] == "ratelimited"


async def test_injected_api_errors(slack, client):
    slack.fail_next_api_calls("chat.postMessage", "not_in_channel")

    with pytest.raises(SlackApiError, match="not_in_channel"):
        await client.chat_postMessage(channel="C0OPS", text="hi")
    await client.chat_postMessage(channel="C0OPS", text="hi")
    assert len(slack.messages("C0OPS")) == 1


# -- waiting for the app ------------------------------------------------------------------------------------


async def test_next_message_returns_new_and_replaced_messages_in_order(slack, client):
    async def app_side() -> None:
        posted = await client.chat_postMessage(channel="C0OPS", text="page 1")
        await client.chat_update(channel="C0OPS", ts=posted["ts"], text="page 2")

    task = asyncio.create_task(app_side())
    first = await slack.next_message(timeout=2)
    second = await slack.next_message(timeout=2)
    await task

    assert (first.text, first.replaced_count) == ("page 1", 0)  # a snapshot, not changed by the update
    assert (second.text, second.replaced_count, second.ts) == ("page 2", 1, first.ts)
    assert slack.unread() == []  # the app side has finished: nothing else is on its way


async def test_wait_for_returns_the_predicate_value(slack, client):
    task = asyncio.create_task(client.chat_postMessage(channel="C0OPS", text="hello"))

    messages = await slack.wait_for(lambda: slack.messages("C0OPS"), timeout=2)
    await task

    assert [m.text for m in messages] == ["hello"]


async def test_ts_values_increase_even_when_the_clock_stands_still():
    standin = SlackStandIn(signing_secret=SECRET, bot_token=TOKEN, clock=lambda: 1_700_000_000.0)
    async with standin:
        client = AsyncWebClient(token=TOKEN, base_url=standin.api_base_url)
        stamps = [(await client.chat_postMessage(channel="C0OPS", text=str(i)))["ts"] for i in range(3)]

    assert stamps == ["1700000000.000000", "1700000000.000100", "1700000000.000200"]


# -- rendering ----------------------------------------------------------------------------------------------

SAMPLE = {
    "text": "Room demo-hostile: 3 users",
    "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "Room demo-hostile"}},
        section("1. &lt;!channel&gt; (`u1`)\n2. a &amp; b &lt; c &gt; d\n3. *Zoë*\u202eevil"),
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": "As of <!date^1700000000^{time}|12:13 UTC> · <https://zego.im|docs>"},
            ],
        },
        {"type": "divider"},
        pager(),
    ],
}


def test_render_message_shows_what_a_user_sees():
    rendered = render_message(SAMPLE, width=60)

    assert rendered.splitlines() == [
        "══ Room demo-hostile ══",
        "1. <!channel> (`u1`)",
        "2. a & b < c > d",
        "3. *Zoë*\N{REPLACEMENT CHARACTER}evil",
        "  ┆ As of 12:13 UTC · docs (https://zego.im)",
        "─" * 60,
        "[1] ◀ Prev   [2] Next ▶",
    ]
    assert buttons(SAMPLE) == [("◀ Prev", "prev"), ("Next ▶", "next")]


def test_render_message_resolves_mentions_and_marks_ephemerals():
    message = StoredMessage(
        channel="C0OPS",
        ts="1.000100",
        text="<@U0ALICE> see <#C0OPS|ops>, <!here>\x1b[2J",
        blocks=[],
        user="U0ALICE",
        ephemeral=True,
    )

    assert render_message(message) == "(only visible to you)\n@U0ALICE see #ops, @here\N{REPLACEMENT CHARACTER}[2J"
    assert render_message(message, ansi=True).startswith("\x1b[2m(only visible to you)\x1b[0m")


# -- Slack's membership, Messages tab, invisible ephemerals, rate limits and payload shapes (issue 11) ---------


async def api_error(call: Any) -> str:
    with pytest.raises(SlackApiError) as refused:
        await call
    return str(refused.value.response["error"])


async def test_posts_where_the_bot_is_not_are_refused_as_slack_refuses_them(slack, client):
    slack.add_conversation("C0PUBLIC", bot_member=False, members=["U0ALICE"])
    slack.add_conversation("G0PRIVATE", bot_member=False, members=["U0ALICE"])
    slack.add_conversation("D0HUMANS", bot_member=False, members=["U0ALICE"])
    assert await api_error(client.chat_postMessage(channel="C0PUBLIC", text="x")) == "not_in_channel"
    assert await api_error(client.chat_postEphemeral(channel="C0PUBLIC", user="U0ALICE", text="x")) == "not_in_channel"
    assert await api_error(client.files_upload_v2(content="a,b", filename="a.csv", channel="C0PUBLIC")) == (
        "not_in_channel"
    )
    for hidden in ("G0PRIVATE", "D0HUMANS", "C0NEVERSEEN"):
        assert await api_error(client.chat_postMessage(channel=hidden, text="x")) == "channel_not_found"
    # In a channel the bot is in, an ephemeral needs its viewer there too.
    assert await api_error(client.chat_postEphemeral(channel="C0OPS", user="U0CAROL", text="x")) == (
        "user_not_in_channel"
    )
    assert slack.messages("C0PUBLIC") == [] and slack.files == []


async def test_a_response_url_works_where_the_bot_is_not_a_member(slack):
    slack.add_conversation("D0HUMANS", bot_member=False, members=["U0ALICE"])
    url = slack.new_response_url(ResponseContext(channel="D0HUMANS", user="U0ALICE"))
    response = await AsyncWebhookClient(url).send_dict({"text": "answer", "response_type": "ephemeral"})
    assert response.status_code == 200
    (shown,) = slack.visible_to("U0ALICE", "D0HUMANS")
    assert shown.text == "answer"


async def test_the_dm_with_the_app_needs_the_messages_tab(client):
    off = SlackStandIn(signing_secret=SECRET, bot_token=TOKEN, manifest=ManifestFacts(messages_tab_enabled=False))
    async with off:
        client = AsyncWebClient(token=TOKEN, base_url=off.api_base_url)
        dm = (await client.conversations_open(users="U0ALICE"))["channel"]["id"]
        assert await api_error(client.chat_postMessage(channel=dm, text="x")) == "messages_tab_disabled"
        assert await api_error(client.files_upload_v2(content="a", filename="a.csv", channel=dm)) == (
            "messages_tab_disabled"
        )
    on = SlackStandIn(signing_secret=SECRET, bot_token=TOKEN, manifest=ManifestFacts(messages_tab_enabled=True))
    async with on:
        client = AsyncWebClient(token=TOKEN, base_url=on.api_base_url)
        assert (await client.chat_postMessage(channel="U0ALICE", text="x"))["ok"]


def test_the_repo_manifest_turns_the_messages_tab_on():
    facts = ManifestFacts.load()
    assert facts.messages_tab_enabled is True
    assert {"chat:write", "im:write", "files:write"} <= facts.scopes


async def test_an_ephemeral_in_a_thread_without_replies_is_invisible_and_flagged(slack, client):
    root = await client.chat_postMessage(channel="C0OPS", text="root")
    posted = await client.chat_postEphemeral(channel="C0OPS", user="U0ALICE", text="lost", thread_ts=root["ts"])
    assert posted["ok"] and posted["message_ts"]  # Slack answers ok all the same
    assert slack.ephemerals("U0ALICE") == []
    assert [m.text for m in slack.invisible] == ["lost"]
    assert "no replies" in slack.warnings.pop()
    # Boundary: once the thread has a reply, ephemerals in it are shown.
    await client.chat_postMessage(channel="C0OPS", text="reply", thread_ts=root["ts"])
    await client.chat_postEphemeral(channel="C0OPS", user="U0ALICE", text="seen", thread_ts=root["ts"])
    assert [m.text for m in slack.ephemerals("U0ALICE")] == ["seen"]
    assert slack.warnings == []


def test_chat_update_allows_50_in_any_60_s_then_429_with_retry_after():
    now = [1000.0]
    limiter = RateLimiter(RateLimits(), clock=lambda: now[0])
    for i in range(50):
        now[0] = 1000.0 + i * 0.5
        assert limiter.admit("chat.update", "C0OPS") is None
    now[0] = 1030.0
    assert limiter.admit("chat.update", "C0OPS") == 30  # until the oldest (t=1000) leaves the window
    assert limiter.admit("chat.update", "C0OTHER") == 30  # per app, not per channel
    now[0] = 1060.0
    assert limiter.admit("chat.update", "C0OPS") is None
    assert limiter.admit("chat.postEphemeral", "C0OPS") is None  # other methods are not limited here


def test_post_message_allows_about_one_a_second_per_channel_with_a_short_burst():
    now = [0.0]
    limiter = RateLimiter(RateLimits(post_burst=3), clock=lambda: now[0])
    assert [limiter.admit("chat.postMessage", "C0OPS") for _ in range(4)] == [None, None, None, 1]
    assert limiter.admit("chat.postMessage", "C0OTHER") is None
    now[0] = 1.0
    assert limiter.admit("chat.postMessage", "C0OPS") is None
    assert max_in_window([0, 10, 59.9, 60, 61, 200], 60) == 4


async def test_rate_limited_api_calls_answer_429_with_retry_after(slack, client):
    limited = SlackStandIn(signing_secret=SECRET, bot_token=TOKEN, limits=RateLimits(update_limit=1))
    async with limited:
        client = AsyncWebClient(token=TOKEN, base_url=limited.api_base_url)
        posted = await client.chat_postMessage(channel="C0OPS", text="x")
        await client.chat_update(channel="C0OPS", ts=posted["ts"], text="y")
        with pytest.raises(SlackApiError) as refused:
            await client.chat_update(channel="C0OPS", ts=posted["ts"], text="z")
        assert refused.value.response.status_code == 429
        assert int(refused.value.response.headers["Retry-After"]) >= 1
        assert limited.api_calls[-1].status == 429


# Copies of shared/reference/external/slack/payloads/ (captured from Slack's own SDK tests; see each "_source").
SAMPLES = Path(__file__).resolve().parent / "data" / "slack-payloads"


def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return loaded


async def test_mention_shapes_match_slacks_samples(slack, app):
    plain = await slack.mention("demo-1")
    org = await slack.mention("demo-1", user=ORG_USER, org=True)
    reference = sample("app_mention.events_api.org_install.json")["body"]
    assert set(reference) <= set(org.sent)
    assert org.sent["authorizations"][0] == {**reference["authorizations"][0], "user_id": "UROOMUSERS"} | {
        "enterprise_id": "E0ORG"
    }
    assert org.sent["event"]["user"] == ORG_USER
    connect = await slack.mention("demo-1", user="W0OTHER", from_team="T0OTHER", from_enterprise="E0OTHER")
    assert (connect.sent["team_id"], connect.sent["enterprise_id"]) == ("T0OTHER", "E0OTHER")
    assert connect.sent["authorizations"][0]["team_id"] == slack.identity.team_id  # the installing team
    assert connect.sent["event"]["user_team"] == "T0OTHER"
    bot = await slack.mention("demo-1", bot_id="B0OTHER")
    assert "user" not in bot.sent["event"] and bot.sent["event"]["bot_profile"]["id"] == "B0OTHER"
    edited = await slack.edit_mention(plain, "demo-2")
    assert edited.sent["event"]["ts"] == plain.sent["event"]["ts"]
    assert edited.sent["event_id"] != plain.sent["event_id"]
    assert edited.sent["event"]["edited"]["user"] == "U0ALICE"
    assert "demo-2" in edited.sent["event"]["text"]


async def test_org_install_click_shape_matches_slacks_sample(slack, client, app):
    posted = await client.chat_postMessage(channel="C0OPS", text="page 1", blocks=PAGE)
    message = slack.message(posted["ts"])
    assert message is not None
    clicked = await slack.click(message, "next", user_id=ORG_USER, org=True)
    reference = sample("block_actions.ephemeral.org_install.json")["payload"]
    assert set(reference) <= set(clicked.sent)
    assert clicked.sent["team"] is None and clicked.sent["enterprise"]["id"] == "E0ORG"
    assert clicked.sent["is_enterprise_install"] is True
    assert clicked.sent["user"]["team_id"] == slack.identity.team_id


async def test_mentions_come_only_from_conversations_the_bot_is_in(slack, app):
    slack.add_conversation("C0ELSEWHERE", bot_member=False)
    with pytest.raises(LookupError, match="not in C0ELSEWHERE"):
        await slack.mention("demo-1", channel="C0ELSEWHERE")
