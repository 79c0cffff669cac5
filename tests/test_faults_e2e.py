"""End to end under faults: ZIM misbehaving, Slack misbehaving, odd clicks. Every request still gets exactly
ONE clear answer (two for a big room whose rest could not be read: the "still loading" first page, then why).

Signed requests go into the real Bolt app over loopback HTTP; what the user sees is read back from the Slack
stand-in. "Exactly one" is counted after the app has no work left (its in-flight tracker is empty), so a late
second message cannot slip past the count, and it is cross-checked against what reached Slack's endpoints.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from slack_bolt.context.respond import async_respond
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot import runtime as runtime_module
from bot.dev.local_stack import local_replicas
from bot.dev.slack_standin import ResponseContext, SlackStandIn, StoredMessage, payloads
from bot.dev.zim_sandbox import Fault, ZimSandbox
from bot.roster.view import RoomView
from bot.runtime import RunningApp
from bot.slack.render.buttons import encode_view
from bot.state import memory_state
from bot.zim import RetryPolicy, new_http_client

from .conftest import FAST_RETRY
from .slack_helpers import action_ids, all_text, listed_user_ids, tool_ids, wait_for_message

CHANNEL = "C0OPS"
ALICE = "U0ALICE"
STILL_LOADING = "still loading"
ZIM_TIMEOUT_SECONDS = 0.4  # the app's ZIM HTTP timeout in the timeout tests (12 s in production)
RESPOND_TIMEOUT_SECONDS = 0.25  # Bolt's response_url timeout in the slow response_url tests (30 s in production)


# -- the stack, and counting what the user got ---------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    """The product on loopback (as `local_stack` builds it), plus the app's in-flight tracker."""

    sandbox: ZimSandbox
    slack: SlackStandIn
    running: RunningApp

    @property
    def idle(self) -> bool:
        """No answer is being worked on: nothing more will be posted unless Slack sends something new."""
        return len(self.running.deps.pending) == 0

    def users(self, room: str) -> list[str]:
        return [uid for uid, _ in self.sandbox.rooms[room].users]


@asynccontextmanager
async def stack_on(sandbox: ZimSandbox, *, retry: RetryPolicy = FAST_RETRY) -> AsyncIterator[Stack]:
    async with local_replicas(1, sandbox=sandbox, state=memory_state(), retry=retry) as local:
        yield Stack(sandbox, local.slack, local.replicas[0].running)
        assert local.slack.warnings == []


@pytest.fixture
async def stack(sandbox: ZimSandbox) -> AsyncIterator[Stack]:
    async with stack_on(sandbox) as running:
        yield running


@pytest.fixture(autouse=True)
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Faults are expected here: none may surface as an ERROR or a traceback in the logs."""
    caplog.set_level(logging.INFO)
    yield
    for phase in ("setup", "call"):
        bad = [r for r in caplog.get_records(phase) if r.levelno >= logging.ERROR or r.exc_info]
        assert bad == [], [f"{r.name}: {r.getMessage()}" for r in bad]


def _flag(value: Any) -> bool:
    return value is True or value in ("true", "1", 1)


def seen_by(slack: SlackStandIn, user: str = ALICE) -> list[StoredMessage]:
    """Every message from the app that `user` can see after the ack: response_url posts (ephemeral or in
    channel), chat.postEphemeral and chat.postMessage. Edits in place (chat.update, replace_original) are the
    same message, not another one."""
    return [m for m in slack.visible_to(user, CHANNEL) if m.origin in ("response_url", "api")]


def deliveries(slack: SlackStandIn) -> int:
    """Posts that reached Slack and made a new message: response_url 200s that did not replace or delete the
    clicked message, plus successful chat.postMessage / chat.postEphemeral calls."""
    by_url = sum(
        1
        for post in slack.response_url_posts
        if post.status == 200
        and not _flag((post.payload or {}).get("replace_original"))
        and not _flag((post.payload or {}).get("delete_original"))
    )
    by_api = sum(
        1
        for call in slack.api_calls
        if call.method in ("chat.postMessage", "chat.postEphemeral") and call.error is None
    )
    return by_url + by_api


async def settled(stack: Stack, *, at_least: int, user: str = ALICE, within: float = 20) -> list[StoredMessage]:
    """Wait until `user` has `at_least` messages from the app and the app has nothing left in flight."""
    deadline = time.monotonic() + within
    while True:
        seen = seen_by(stack.slack, user)
        if len(seen) >= at_least and stack.idle:
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"not settled after {within} s: {[all_text(m) for m in seen]}")
        await asyncio.sleep(0.01)


async def until_idle(stack: Stack, *, within: float = 20) -> None:
    """Wait until the app has no answer in flight (call it once the app has certainly started one)."""
    deadline = time.monotonic() + within
    while not stack.idle:
        if time.monotonic() > deadline:
            raise AssertionError(f"the app is still busy after {within} s")
        await asyncio.sleep(0.01)


async def exactly(stack: Stack, count: int = 1, *, user: str = ALICE, within: float = 20) -> list[StoredMessage]:
    """The messages `user` got from the app once it is idle, asserting there are exactly `count` of them."""
    seen = await settled(stack, at_least=count, user=user, within=within)
    assert len(seen) == count, [all_text(m) for m in seen]
    assert deliveries(stack.slack) == count
    # Each message as it looks now (a mention's answer is edited in place until it is final).
    current = [stack.slack.message(m.ts) for m in seen]
    assert all(m is not None for m in current)
    return [m for m in current if m is not None]


async def first_seen(stack: Stack, *, user: str = ALICE, within: float = 10) -> StoredMessage:
    """The first message from the app that `user` sees after the ack (waits on the stand-in's changes)."""
    return await wait_for_message(stack.slack, lambda: next(iter(seen_by(stack.slack, user)), None), within=within)


async def command(stack: Stack, text: str, *, user: str = ALICE) -> None:
    """Run the command and check Slack got its ack in time (the "Fetching…" line, not counted as an answer)."""
    response = await stack.slack.send_command(text, user_id=user, user_name=user.lower())
    assert response.status == 200
    assert response.acked_in_time
    acks = [m for m in stack.slack.ephemerals(user) if m.origin == "ack"]
    assert "Fetching" in (acks[-1].text or "")


async def mention(stack: Stack, text: str, *, user: str = ALICE) -> str:
    """Mention the bot; return the mention's ts (the answer's thread)."""
    response = await stack.slack.mention(text, user=user)
    assert response.status == 200
    assert response.acked_in_time
    return str(response.sent["event"]["ts"])


def header(message: StoredMessage) -> str:
    return next((b["text"]["text"] for b in message.blocks if b["type"] == "header"), "")


def complete_summary(users: int) -> str:
    return f"*{users:,} users* in this room"


async def exported_ids(stack: Stack, message: StoredMessage) -> list[str]:
    """Press "Export CSV" under `message` and read the user IDs back from the uploaded file."""
    files_before = len(stack.slack.files)
    await stack.slack.click(message, "roomusers_export")
    await stack.slack.wait_for(lambda: len(stack.slack.files) > files_before, timeout=10)
    rows = list(csv.reader(io.StringIO(stack.slack.files[-1].content.decode("utf-8-sig"))))
    assert rows[0] == ["user_id", "user_name"]
    return [row[0] for row in rows[1:]]  # IDs are written exactly as ZIM returns them


def forged_click(
    stack: Stack, message: StoredMessage, value: Any, *, action_id: str = "roomusers_next"
) -> dict[str, Any]:
    """A block_actions payload for a click on `message` whose button carries `value` (any JSON value)."""
    person = payloads.Person(ALICE, "alice", message.channel, "ops")
    button = {"action_id": action_id, "text": {"type": "plain_text", "text": "Next ▶"}, "value": value}
    url = stack.slack.new_response_url(ResponseContext(channel=message.channel, user=ALICE, message_ts=message.ts))
    return payloads.block_actions_payload(
        stack.slack.identity,
        person,
        message,
        block_id="roomusers_paging",
        button=button,
        response_url=url,
        now=time.time(),
    )


def use_zim_timeout(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Stacks built from now on time out ZIM requests after `seconds` instead of 12 s (there is no setting for it,
    so the factory `open_zego_apps` calls is swapped for one with a shorter timeout)."""
    timeout = httpx.Timeout(seconds, connect=1.0)
    monkeypatch.setattr(runtime_module, "new_http_client", lambda: new_http_client(timeout))


@pytest.fixture
def short_zim_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    use_zim_timeout(monkeypatch, ZIM_TIMEOUT_SECONDS)


# -- ZIM faults ------------------------------------------------------------------------------------------------

TRANSIENT_FAULTS = [
    pytest.param({"kind": "http_status", "status": 500}, id="http-500"),
    pytest.param({"kind": "http_status", "status": 503}, id="http-503"),
    pytest.param({"kind": "drop"}, id="dropped-connection"),
    pytest.param({"kind": "garbage"}, id="non-json-body"),
    pytest.param({"kind": "garbage", "body": '{"Code": 0, "Data": {"Count": 1'}, id="truncated-json"),
]


@pytest.mark.parametrize("fault", TRANSIENT_FAULTS)
async def test_a_burst_of_transient_zim_faults_still_gives_the_whole_room_once(stack: Stack, fault: dict[str, Any]):
    stack.sandbox.inject(Fault(**fault, count=3))
    await command(stack, "demo-120")
    (answer,) = await exactly(stack, 1)
    assert complete_summary(120) in all_text(answer)
    assert listed_user_ids(answer) == stack.users("demo-120")[:20]
    assert "Page 1 of 6" in all_text(answer)
    assert stack.sandbox.stats.faults_applied[fault["kind"]] == 3
    assert stack.sandbox.stats.requests == 4  # three faulted attempts, then the page


async def test_bursts_of_both_qps_limit_codes_still_give_every_request_its_whole_room_once(sandbox: ZimSandbox):
    """Three requests at once, each meeting three rate-limit answers: 660300005 (app QPS) on one room's only page,
    660300006 (per-API QPS) on another's, and 660300006 in the middle of a 3,000-user room. Every answer pauses
    all senders for a second, so the three bursts share their pauses and the whole test takes about 3 s."""
    sandbox.add_room("big", 3_000)
    sandbox.inject(Fault(kind="code", code=660300005, room_id="demo-120", count=3))
    sandbox.inject(Fault(kind="code", code=660300006, room_id="demo-12", count=3))
    sandbox.inject(Fault(kind="code", code=660300006, room_id="big", mode=1, count=3))
    async with stack_on(sandbox) as stack:
        started = time.monotonic()
        thread, *_ = await asyncio.gather(mention(stack, "big"), command(stack, "demo-120"), command(stack, "demo-12"))
        answers = await exactly(stack, 3)  # one per request
        elapsed = time.monotonic() - started
        (in_thread,) = [m for m in answers if m.thread_ts == thread]
        assert await exported_ids(stack, in_thread) == stack.users("big")
    (room_120,) = [m for m in answers if header(m) == "Room demo-120"]
    (room_12,) = [m for m in answers if header(m) == "Room demo-12"]
    assert listed_user_ids(room_120) == stack.users("demo-120")[:20]
    assert complete_summary(120) in all_text(room_120)
    assert listed_user_ids(room_12) == stack.users("demo-12")
    assert complete_summary(3_000) in all_text(in_thread)
    assert STILL_LOADING not in all_text(in_thread)
    assert sandbox.stats.by_code[660300005] == 3
    assert sandbox.stats.by_code[660300006] == 6
    assert elapsed < FAST_RETRY.total_budget  # the pauses overlapped: about 3 x 1 s, not 9 s


async def test_zim_timeouts_are_retried_and_the_whole_room_comes_once(sandbox: ZimSandbox, short_zim_timeout: None):
    sandbox.inject(Fault(kind="delay", seconds=30, count=2))  # far longer than the app's timeout
    async with stack_on(sandbox) as stack:
        started = time.monotonic()
        await command(stack, "demo-120")
        (answer,) = await exactly(stack, 1)
        assert time.monotonic() - started < 2 * ZIM_TIMEOUT_SECONDS + 2
    assert complete_summary(120) in all_text(answer)
    assert listed_user_ids(answer) == stack.users("demo-120")[:20]
    assert sandbox.stats.faults_applied["delay"] == 2
    assert sandbox.stats.requests == 3


MID_LIST_FAULTS = [
    pytest.param({"kind": "http_status", "status": 502, "count": 3}, id="http-502"),
    pytest.param({"kind": "drop", "count": 3}, id="dropped-connection"),
    pytest.param({"kind": "garbage", "count": 3}, id="non-json-body"),
    pytest.param({"kind": "count_drift", "delta": -40, "count": 2}, id="count-drift"),
    pytest.param({"kind": "count_drift", "delta": 25, "count": 1}, id="count-drift-up"),
    pytest.param({"kind": "short_page", "size": 120, "count": 2}, id="short-page"),
]


@pytest.mark.parametrize("fault", MID_LIST_FAULTS)
async def test_faults_in_the_middle_of_a_big_room_still_give_every_user(sandbox: ZimSandbox, fault: dict[str, Any]):
    """A mention's answer for a 3,000-user room is edited in place until complete; the faults hit the newest-first
    chain only, i.e. after ZIM's first page, in the middle of the list. The CSV export proves every user is there."""
    sandbox.add_room("big", 3_000)
    sandbox.inject(Fault(**fault, mode=1))
    async with stack_on(sandbox) as stack:
        await mention(stack, "big")
        (answer,) = await exactly(stack, 1)
        assert STILL_LOADING not in all_text(answer)
        assert complete_summary(3_000) in all_text(answer)
        assert "Page 1 of 150" in all_text(answer)
        assert listed_user_ids(answer) == stack.users("big")[:20]
        assert sandbox.stats.faults_applied[fault["kind"]] == fault["count"]
        assert await exported_ids(stack, answer) == stack.users("big")


PERSISTENT_FAULTS = [
    pytest.param({"kind": "http_status", "status": 503}, id="http-503"),
    pytest.param({"kind": "http_status", "status": 500}, id="http-500"),
    pytest.param({"kind": "drop"}, id="dropped-connection"),
    pytest.param({"kind": "garbage"}, id="non-json-body"),
]


@pytest.mark.parametrize("fault", PERSISTENT_FAULTS)
async def test_a_persistent_zim_failure_is_one_try_again_answer_within_the_retry_budget(
    stack: Stack, fault: dict[str, Any]
):
    stack.sandbox.inject(Fault(**fault, count=10_000))
    started = time.monotonic()
    await command(stack, "demo-120")
    (answer,) = await exactly(stack, 1)
    assert time.monotonic() - started < FAST_RETRY.total_budget
    text = all_text(answer)
    assert "could not be read" in text
    assert "Try again" in text
    assert listed_user_ids(answer) == []
    assert action_ids(answer) == []
    # One chain (the room is one page): exactly the policy's attempts, never more than attempts x chains.
    assert stack.sandbox.stats.requests == FAST_RETRY.max_attempts
    assert stack.sandbox.stats.requests <= FAST_RETRY.max_attempts * 2


async def test_zim_failing_for_good_after_the_first_page_is_the_loading_page_then_one_try_again(sandbox: ZimSandbox):
    """ZIM's first page arrives (the "still loading" answer goes out), then every later request fails: the user
    gets exactly one more message saying the room could not be read, and the retries stay bounded."""
    sandbox.add_room("big", 20_000)
    sandbox.faults.set_latency(latency_ms=50)
    async with stack_on(sandbox) as stack:
        await command(stack, "big")
        first = await first_seen(stack)
        assert STILL_LOADING in all_text(first)
        sandbox.inject(Fault(kind="http_status", status=503, count=10_000))
        requests_before = sandbox.stats.requests
        assert requests_before < 40  # far from done: both chains are mid-list
        started = time.monotonic()
        progressive, failure = await exactly(stack, 2)
        assert time.monotonic() - started < FAST_RETRY.total_budget
    assert progressive.ts == first.ts
    assert "could not be read" in all_text(failure)
    assert "Try again" in all_text(failure)
    assert listed_user_ids(failure) == []
    # Requests decided after the fault went in: each chain retries at most max_attempts times.
    assert sandbox.stats.requests - requests_before <= FAST_RETRY.max_attempts * 2


def assert_never_complete_looking(messages: list[StoredMessage]) -> None:
    """No message presents a list as the whole room: any list shown says it is still loading, and the tools
    that act on a whole roster (export, share, order, refresh) are absent."""
    for message in messages:
        text = all_text(message)
        assert not listed_user_ids(message) or STILL_LOADING in text
        assert "in this room" not in text or STILL_LOADING in text
        assert tool_ids(message) == []


async def test_a_cursor_repeating_on_both_chains_is_reported_incomplete_never_shown_as_whole(sandbox: ZimSandbox):
    sandbox.add_room("big", 3_000)
    sandbox.inject(Fault(kind="repeat_cursor", count=100))
    async with stack_on(sandbox) as stack:
        await command(stack, "big")
        progressive, failure = await exactly(stack, 2)
        cached = await stack.running.zego_apps.pick("").snapshots.cached("big")  # type: ignore[union-attr]
    assert STILL_LOADING in all_text(progressive)
    assert listed_user_ids(progressive) == stack.users("big")[:20]
    assert_never_complete_looking([progressive])
    text = all_text(failure)
    assert "Incomplete:" in text
    assert "ZIM's paging cursor repeated: 2,000 of 3,000 users read" in text
    assert "ZIM reports" not in text
    assert "roomusers_refresh" in tool_ids(failure)
    # The incomplete list is kept briefly for clicks on it, and says so wherever it is shown.
    assert cached is not None
    assert not cached.complete
    assert sandbox.stats.faults_applied["repeat_cursor"] == 2  # once per chain, then each chain stopped


async def test_a_mention_of_a_room_whose_cursor_repeats_ends_as_one_incomplete_message(sandbox: ZimSandbox):
    sandbox.add_room("big", 3_000)
    sandbox.inject(Fault(kind="repeat_cursor", count=100))
    async with stack_on(sandbox) as stack:
        thread = await mention(stack, "big")
        (answer,) = await exactly(stack, 1)
    assert answer.thread_ts == thread
    assert "Incomplete:" in all_text(answer)
    assert "ZIM's paging cursor repeated: 2,000 of 3,000 users read" in all_text(answer)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"kind": "delay", "seconds": 30.0}, id="timeouts"),
        pytest.param({"kind": "code", "code": 660300006}, id="rate-limited"),
    ],
)
async def test_the_answer_comes_within_the_retry_budget_whatever_the_failure(
    sandbox: ZimSandbox, monkeypatch: pytest.MonkeyPatch, fault: dict[str, Any]
):
    """An attempt that ends with budget left starts another, and that one lasts as long as it likes: with 0.5 s
    timeouts and a 0.6 s budget the answer comes after two timeouts (1 s); with 660300006 and a 0.05 s budget it
    comes after the 1 s cool-down the second attempt waits out. Each attempt (its wait for a send slot included)
    should be cut to what is left of the budget."""
    use_zim_timeout(monkeypatch, 0.5)
    budget = 0.6 if fault["kind"] == "delay" else 0.05
    retry = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.01, total_budget=budget)
    sandbox.inject(Fault(**fault, count=10_000))
    async with stack_on(sandbox, retry=retry) as stack:
        started = time.monotonic()
        await command(stack, "demo-120")
        (answer,) = await exactly(stack, 1)
        elapsed = time.monotonic() - started
    assert "could not be read" in all_text(answer)
    assert elapsed < budget + 0.5, f"answered after {elapsed:.2f} s with a {budget} s retry budget"


# -- Slack faults ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 410, 500])
async def test_a_failing_response_url_still_gets_the_answer_to_the_user_by_chat_post_ephemeral(
    stack: Stack, status: int
):
    stack.slack.fail_next_response_urls(status, count=1)
    await command(stack, "demo-120")
    (answer,) = await exactly(stack, 1)
    assert answer.ephemeral
    assert answer.user == ALICE
    assert answer.origin == "api"
    assert complete_summary(120) in all_text(answer)
    assert listed_user_ids(answer) == stack.users("demo-120")[:20]
    assert [post.status for post in stack.slack.response_url_posts] == [status]
    (fallback,) = [call for call in stack.slack.api_calls if call.method == "chat.postEphemeral"]
    assert fallback.error is None
    assert (fallback.args["channel"], fallback.args["user"]) == (CHANNEL, ALICE)


async def test_a_failing_response_url_and_a_rate_limited_fallback_still_answer_once(stack: Stack):
    stack.slack.fail_next_response_urls(500, count=1)
    stack.slack.rate_limit_next_api_calls("chat.postEphemeral", 1, retry_after=1)
    await command(stack, "demo-120")
    (answer,) = await exactly(stack, 1)
    assert answer.origin == "api"
    assert listed_user_ids(answer) == stack.users("demo-120")[:20]
    posts = [call.status for call in stack.slack.api_calls if call.method == "chat.postEphemeral"]
    assert posts == [429, 200]


async def test_a_slow_response_url_still_gets_exactly_one_answer(stack: Stack):
    stack.slack.delay_next_response_urls(1.0, count=1)  # well under respond()'s 30 s timeout
    started = time.monotonic()
    await command(stack, "demo-120")
    (answer,) = await exactly(stack, 1)
    assert time.monotonic() - started >= 1.0
    assert answer.origin == "response_url"
    assert listed_user_ids(answer) == stack.users("demo-120")[:20]
    assert not [call for call in stack.slack.api_calls if call.method == "chat.postEphemeral"]


@pytest.fixture
def short_respond_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bolt's respond() gives up on a response_url after 30 s; make that RESPOND_TIMEOUT_SECONDS."""
    # slack_sdk annotates `timeout` as int but hands it to aiohttp.ClientTimeout, which takes seconds as a float.
    patched = functools.partial(AsyncWebhookClient, timeout=RESPOND_TIMEOUT_SECONDS)  # type: ignore[arg-type]
    monkeypatch.setattr(async_respond, "AsyncWebhookClient", patched)


async def test_a_response_url_slower_than_the_apps_timeout_does_not_answer_twice(
    sandbox: ZimSandbox, short_respond_timeout: None
):
    async with stack_on(sandbox) as stack:
        stack.slack.delay_next_response_urls(4 * RESPOND_TIMEOUT_SECONDS, count=1)
        await command(stack, "demo-120")
        # Slack finishes the slow post after the app stopped waiting for it; only then is the count final.
        # The app does not post again (the slow post may still land, as it does here): one answer, not two.
        await stack.slack.wait_for(lambda: stack.slack.response_url_posts, timeout=5)
        (answer,) = await exactly(stack, 1)
        assert answer.origin == "response_url"
        assert listed_user_ids(answer) == stack.users("demo-120")[:20]


async def test_a_rate_limited_mention_answer_is_retried_after_retry_after_and_posted_once(stack: Stack):
    stack.slack.rate_limit_next_api_calls("chat.postMessage", 1, retry_after=1)
    thread = await mention(stack, "demo-120")
    (answer,) = await exactly(stack, 1)
    assert answer.thread_ts == thread
    assert not answer.ephemeral
    assert listed_user_ids(answer) == stack.users("demo-120")[:20]
    posts = [call.status for call in stack.slack.api_calls if call.method == "chat.postMessage"]
    assert posts == [429, 200]
    assert len(stack.slack.thread(CHANNEL, thread)) == 1


# -- clicks ----------------------------------------------------------------------------------------------------


async def click_value(stack: Stack, message: StoredMessage, value: Any) -> None:
    response = await stack.slack.click_raw(forged_click(stack, message, value))
    assert response.status == 200
    assert response.acked_in_time


@pytest.mark.parametrize(
    ("page", "fault"),
    [
        pytest.param(2, None, id="next-page"),
        pytest.param(7, None, id="page-7"),
        pytest.param(300, {"kind": "drop", "mode": 1, "count": 3}, id="last-page-while-zim-drops-connections"),
    ],
)
async def test_a_click_while_the_room_is_still_loading_shows_the_right_page(
    sandbox: ZimSandbox, page: int, fault: dict[str, Any] | None
):
    sandbox.add_room("big", 6_000)  # 12 pages of 500, six per chain: about 0.7 s at 100 ms a page
    sandbox.faults.set_latency(latency_ms=100)
    if fault is not None:
        sandbox.inject(Fault(**fault))
    async with stack_on(sandbox) as stack:
        await command(stack, "big")
        first = await first_seen(stack)
        assert STILL_LOADING in all_text(first)
        snapshots = stack.running.zego_apps.pick("").snapshots  # type: ignore[union-attr]
        assert snapshots.read_under_way("big") is not None
        await click_value(stack, first, encode_view(RoomView("big", page)))
        assert snapshots.read_under_way("big") is not None  # the click was taken while the room was still loading
        (shown,) = await exactly(stack, 1)  # the loading page, replaced in place
    assert shown.ts == first.ts
    # First with the page if it was already read (2 and 7 came with the first 500) or "not read yet" (300),
    # then with the whole room's page.
    assert shown.replaced_count == 2
    assert STILL_LOADING not in all_text(shown)
    assert complete_summary(6_000) in all_text(shown)
    assert f"Page {page} of 300" in all_text(shown)
    assert listed_user_ids(shown) == stack.users("big")[(page - 1) * 20 : page * 20]
    assert sandbox.stats.per_room["big"] >= 12


async def test_a_click_while_loading_a_room_that_turns_out_incomplete_says_so_on_its_page(sandbox: ZimSandbox):
    sandbox.add_room("big", 3_000)
    sandbox.faults.set_latency(latency_ms=150)
    sandbox.inject(Fault(kind="repeat_cursor", count=100))
    async with stack_on(sandbox) as stack:
        await command(stack, "big")
        first = await first_seen(stack)
        assert STILL_LOADING in all_text(first)
        await stack.slack.click(first, "roomusers_next")
        # The click's page (replaced in place, twice: at once, then when the read ended) and the command's
        # second message, which says the list it began to show turned out incomplete.
        clicked, for_command = await exactly(stack, 2)
    assert clicked.ts == first.ts
    assert clicked.replaced_count == 2
    assert listed_user_ids(clicked) == stack.users("big")[20:40]
    for message in (clicked, for_command):
        assert "Incomplete:" in all_text(message)
        assert "ZIM's paging cursor repeated: 2,000 of 3,000 users read" in all_text(message)
        assert "roomusers_refresh" in tool_ids(message)
    assert listed_user_ids(for_command) == stack.users("big")[:20]


@pytest.mark.parametrize(
    "value",
    [
        "2",
        "{}",
        '{"v":99}',
        '{"v":99,"r":"demo-120","p":2}',
        '{"v":true,"r":"demo-120","p":2}',
        '{"v":1,"r":"demo-120","p":0}',
        '{"v":1,"r":"demo-120","p":1e999}',
        '{"v":1,"r":"demo-120","p":"2"}',
        '{"v":1,"r":"bad/room","p":2}',
        '{"v":1,"r":"demo-120","p":2,"zz":1}',
        "",
        "\x00\x1b[31mgarbage\u202e",
        "[" * 5000,
        "x" * 2001,
        2,
        None,
        {"v": 1, "r": "demo-120", "p": 2},
    ],
    ids=repr,
)
async def test_a_button_value_of_an_unknown_shape_gets_a_polite_older_version_answer(stack: Stack, value: Any):
    await command(stack, "demo-120")
    answer = await first_seen(stack)
    requests = stack.sandbox.stats.requests
    await click_value(stack, answer, value)
    original, reply = await exactly(stack, 2)
    assert original.ts == answer.ts
    assert original.replaced_count == 0
    assert "older version" in all_text(reply)
    assert "/roomusers" in all_text(reply)
    assert listed_user_ids(reply) == []
    assert stack.sandbox.stats.requests == requests


@pytest.mark.parametrize("status", [404, 500])
async def test_a_click_whose_response_url_fails_still_gets_its_page(stack: Stack, status: int):
    await command(stack, "demo-120")
    answer = await first_seen(stack)
    stack.slack.fail_next_response_urls(status, count=1)
    await stack.slack.click(answer, "roomusers_next")
    await stack.slack.wait_for(lambda: len(stack.slack.response_url_posts) == 2, timeout=5)  # the failed one
    await until_idle(stack)
    assert [post.status for post in stack.slack.response_url_posts] == [200, status]
    seen = seen_by(stack.slack)  # the app is done with the click: whatever it answered is here
    assert len(seen) == 2, "the click got no answer"
    assert listed_user_ids(seen[-1]) == stack.users("demo-120")[20:40]
