"""The delivery ladder (response_url, then chat.postEphemeral, then the requester's DM) against the Slack stand-in.

The Web API side is real (slack_sdk over loopback to the stand-in, with its membership rules); only the
response_url side is a stand-in callable, to make it answer, fail or time out on demand.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook import WebhookResponse

from bot.dev.slack_standin import SlackStandIn
from bot.dev.slack_standin.manifest import ManifestFacts
from bot.slack.delivery import Delivery, Requester, deliver, post_in_thread
from bot.slack.render.blocks import problem_message

TOKEN = "xoxb-delivery-test"
MESSAGE = problem_message("The answer.", title="Answer")


class Respond:
    """A response_url that answers `status`, or raises `error`; records what it was sent."""

    def __init__(self, status: int = 200, error: BaseException | None = None) -> None:
        self.status, self.error = status, error
        self.sent: list[dict[str, Any]] = []

    async def __call__(self, **payload: Any) -> WebhookResponse:
        self.sent.append(payload)
        if self.error is not None:
            raise self.error
        return WebhookResponse(url="http://hooks.invalid/x", status_code=self.status, body="no", headers={})


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(signing_secret="s" * 32, bot_token=TOKEN) as standin:
        standin.add_conversation("C0OPS", name="ops", members=["U0ALICE"])
        yield standin


def alice(slack: SlackStandIn, channel: str = "C0OPS") -> Requester:
    return Requester(AsyncWebClient(token=TOKEN, base_url=slack.api_base_url), "U0ALICE", channel, "command")


def posted(slack: SlackStandIn) -> list[str]:
    return [call.method for call in slack.api_calls]


async def test_a_working_response_url_is_all_it_takes(slack):
    respond = Respond(200)
    assert await deliver(respond, MESSAGE, alice(slack)) == Delivery("response_url")  # type: ignore[arg-type]
    assert respond.sent[0]["replace_original"] is False and respond.sent[0]["response_type"] == "ephemeral"
    assert posted(slack) == []


async def test_a_failing_response_url_falls_back_to_an_ephemeral(slack):
    delivery = await deliver(Respond(500), MESSAGE, alice(slack))  # type: ignore[arg-type]
    assert (delivery.route, delivery.ok) == ("ephemeral", True)
    assert [m.text for m in slack.ephemerals("U0ALICE")] == [MESSAGE.text]


async def test_where_the_bot_is_not_the_answer_goes_to_the_dm_saying_where_from(slack):
    slack.add_conversation("G0SECRET", bot_member=False, members=["U0ALICE"])
    delivery = await deliver(Respond(404), MESSAGE, alice(slack, "G0SECRET"))  # type: ignore[arg-type]
    assert delivery.route == "dm" and delivery.ts is not None
    (dm,) = slack.messages(slack.dm_channel("U0ALICE"))
    assert "<#G0SECRET>" in str(dm.blocks) and "The answer." in str(dm.blocks)
    assert delivery.audit() == {"delivered_via": "dm"}


@pytest.mark.parametrize("error", [TimeoutError(), aiohttp.ServerDisconnectedError()])
async def test_a_response_url_that_may_have_landed_is_never_sent_again(slack, error):
    delivery = await deliver(Respond(error=error), MESSAGE, alice(slack))  # type: ignore[arg-type]
    assert (delivery.ok, delivery.unconfirmed) == (False, True)
    assert delivery.outcome("ok") == "unconfirmed"
    assert posted(slack) == []


async def test_a_response_url_that_never_connected_falls_back(slack):
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None), OSError()
    )
    delivery = await deliver(Respond(error=refused), MESSAGE, alice(slack))  # type: ignore[arg-type]
    assert delivery.route == "ephemeral"


async def test_any_other_response_url_failure_falls_back(slack):
    delivery = await deliver(Respond(error=ValueError("no response_url")), MESSAGE, alice(slack))  # type: ignore[arg-type]
    assert delivery.route == "ephemeral"


async def test_a_channel_post_does_not_fall_back(slack):
    delivery = await deliver(Respond(500), MESSAGE, alice(slack), response_type="in_channel", fall_back=False)  # type: ignore[arg-type]
    assert (delivery.ok, delivery.unconfirmed, delivery.error) == (False, False, "http_500")
    assert delivery.outcome("ok") == "undelivered"
    assert posted(slack) == []


async def test_when_the_dm_fails_too_it_is_undelivered_with_slacks_error():
    facts = ManifestFacts(messages_tab_enabled=False)
    async with SlackStandIn(signing_secret="s" * 32, bot_token=TOKEN, manifest=facts) as slack:
        slack.add_conversation("G0SECRET", bot_member=False)
        delivery = await deliver(Respond(500), MESSAGE, alice(slack, "G0SECRET"))  # type: ignore[arg-type]
    assert (delivery.ok, delivery.error) == (False, "messages_tab_disabled")
    assert delivery.audit() == {"slack_error": "messages_tab_disabled"}


async def test_a_thread_post_waits_out_rate_limits(slack):
    root = await alice(slack).client.chat_postMessage(channel="C0OPS", text="root")
    slack.rate_limit_next_api_calls("chat.postMessage", count=3, retry_after=1)  # beyond slack_sdk's 2 retries
    to = Requester(alice(slack).client, "U0ALICE", "C0OPS", "mention", thread_ts=str(root["ts"]))
    delivery = await post_in_thread(MESSAGE, to)
    assert (delivery.route, delivery.channel) == ("thread", "C0OPS")
    assert [m.text for m in slack.thread("C0OPS", str(root["ts"]))] == [MESSAGE.text]


class Sequenced(Respond):
    """A response_url whose successive posts answer or fail as listed."""

    def __init__(self, *outcomes: int | BaseException) -> None:
        super().__init__()
        self.outcomes = list(outcomes)

    async def __call__(self, **payload: Any) -> WebhookResponse:
        outcome = self.outcomes.pop(0)
        self.status, self.error = (outcome, None) if isinstance(outcome, int) else (200, outcome)
        return await super().__call__(**payload)


@pytest.mark.parametrize(
    ("first", "outcome", "said"),
    [(TimeoutError(), "share_unconfirmed", "may already be"), (500, "share_failed", "try Share again")],
)
async def test_a_share_that_timed_out_is_unconfirmed_and_only_a_refused_one_says_try_again(
    sandbox, first, outcome, said
):
    from bot.dev.local_stack import local_replicas
    from bot.observability.audit import AuditRecord
    from bot.roster.view import RoomView
    from bot.slack.access import Installation
    from bot.slack.listeners.actions import _Click, share
    from bot.slack.render.buttons import encode_view

    from .conftest import FAST_RETRY

    async with local_replicas(1, sandbox=sandbox, retry=FAST_RETRY) as local:
        deps = local.replicas[0].running.deps
        client = AsyncWebClient(token=local.slack_settings.bot_token, base_url=local.slack.api_base_url)
        body = {
            "user": {"id": "U0ALICE", "team_id": "T0DEMO"},
            "team": {"id": "T0DEMO"},
            "channel": {"id": "C0OPS"},
            "container": {"type": "message", "message_ts": "1.000001", "channel_id": "C0OPS", "is_ephemeral": True},
        }
        view = {"action_id": "roomusers_share", "value": encode_view(RoomView("demo-12"))}
        click = _Click(body, view, client, Installation("T0DEMO", None))  # a user of the installation's workspace
        respond = Sequenced(first, 200)
        record = AuditRecord("action:roomusers_share", "U0ALICE", "C0OPS")
        await share(click, deps, respond, client, record)  # type: ignore[arg-type]
    assert record.emitted == outcome
    shared, notice = respond.sent
    assert shared["response_type"] == "in_channel" and shared["replace_original"] is False
    assert said in str(notice["blocks"]) and notice["response_type"] == "ephemeral"
    assert [c.method for c in local.slack.api_calls if c.method != "auth.test"] == []  # no fallback post
