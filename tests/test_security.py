"""Security, end to end: request authenticity (signatures, stale timestamps, replays), access control on forged
buttons, and secrets that never leak into logs, messages, exceptions or reprs.

Requests are real signed HTTP requests into the real Bolt app (served by `make_web_app` with the signing secret,
so the replay guard is on); answers are read back from the Slack stand-in; ZIM is the sandbox over loopback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from bot.dev.local_stack import LOOPBACK, LocalStack, local_stack
from bot.dev.slack_standin import AppResponse, ResponseContext, SlackStandIn, StoredMessage, payloads
from bot.dev.slack_standin.payloads import Person
from bot.dev.zim_sandbox import Fault, ZimSandbox
from bot.observability.logs import QUIET_LOGGERS, configure_logging
from bot.roster.view import RoomView
from bot.settings import (
    ConfigError,
    SlackSettings,
    ZegoProfiles,
    ZegoSettings,
    load_slack_settings,
    load_zego_profiles,
    load_zego_settings,
)
from bot.slack.access import AccessPolicy
from bot.slack.http import EVENTS_PATH, make_web_app, start_http
from bot.slack.render.buttons import encode_view
from bot.state.once import REPLAY_TTL_SECONDS, SIGNATURE_WINDOW_SECONDS, MemoryReplayGuard, ReplayGuard
from bot.state.pacer import SmoothPacer
from bot.web import start_site
from bot.zim import ZimClient, ZimCredentialsRejected

from .conftest import FAST_RETRY, run_cli
from .slack_helpers import all_text, answer_to, listed_user_ids

FORM = "application/x-www-form-urlencoded"


# -- a stack whose HTTP endpoint has the replay guard on ----------------------------------------------------


@asynccontextmanager
async def guarded_stack(
    sandbox: ZimSandbox,
    *,
    profiles: ZegoProfiles | None = None,
    access: AccessPolicy | None = None,
    replay_guard: ReplayGuard | None = None,
) -> AsyncIterator[LocalStack]:
    """`local_stack`, with the stand-in sending to an endpoint that has the signing secret (so the replay guard):
    `start_http(signing_secret=...)`, or `make_web_app(..., replay_guard=...)` when a guard is passed."""
    async with local_stack(sandbox=sandbox, profiles=profiles, access=access, retry=FAST_RETRY) as local:
        secret = local.slack_settings.signing_secret
        assert secret is not None
        if replay_guard is None:
            runner, port = await start_http(local.app, LOOPBACK, 0, signing_secret=secret)
        else:
            web_app = make_web_app(local.app, signing_secret=secret, replay_guard=replay_guard)
            runner, port = await start_site(web_app, LOOPBACK, 0)
        try:
            local.slack.app_url = f"http://{LOOPBACK}:{port}{EVENTS_PATH}"
            yield local
            assert local.slack.warnings == []
        finally:
            await runner.cleanup()


@pytest.fixture
async def guarded(sandbox: ZimSandbox) -> AsyncIterator[LocalStack]:
    async with guarded_stack(sandbox) as stack:
        yield stack


class RecordingGuard:
    """The in-process guard, recording which signatures reached it."""

    def __init__(self) -> None:
        self.inner = MemoryReplayGuard()
        self.asked: list[str] = []

    async def first_use(self, signature: str, timestamp: str) -> bool:
        self.asked.append(signature)
        return await self.inner.first_use(signature, timestamp)


def command_body(slack: SlackStandIn, text: str, *, user: str = "U0ALICE", channel: str = "C0OPS") -> bytes:
    """A slash command's form body exactly as Slack would send it (with a fresh response_url)."""
    person = Person(user_id=user, user_name=user.lower(), channel_id=channel, channel_name="ops")
    url = slack.new_response_url(ResponseContext(channel=channel, user=user))
    form = payloads.command_form(
        slack.identity, person, command="/roomusers", text=text, response_url=url, now=time.time()
    )
    return urlencode(form).encode()


def forged_click(
    slack: SlackStandIn, action_id: str, value: str, *, user: str = "U0ALICE", shown: StoredMessage | None = None
) -> dict[str, Any]:
    """A block_actions payload for a button with any `value`, as if on `shown` (or on a message never shown)."""
    if shown is None:
        shown = StoredMessage(channel="C0OPS", ts="1700000000.000100", text="", blocks=[], ephemeral=True)
    url = slack.new_response_url(ResponseContext(channel="C0OPS", user=user, message_ts=shown.ts))
    button = {"action_id": action_id, "type": "button", "value": value, "text": {"type": "plain_text", "text": "x"}}
    person = Person(user_id=user, user_name=user.lower(), channel_id="C0OPS", channel_name="ops")
    block_id = "roomusers_paging" if action_id in ("roomusers_prev", "roomusers_next") else "roomusers_tools"
    return payloads.block_actions_payload(
        slack.identity, person, shown, block_id=block_id, button=button, response_url=url, now=time.time()
    )


async def settle(local: LocalStack) -> None:
    """Wait until the app has finished everything it took on (response_url posts, ZIM fetches), so what did
    not happen by then is not going to."""
    await local.until_idle()


def app_api_calls(local: LocalStack) -> list[str]:
    return [call.method for call in local.slack.api_calls if call.method != "auth.test"]


# -- 1. request authenticity --------------------------------------------------------------------------------


async def test_forged_signatures_are_refused_and_nothing_is_posted_or_fetched(sandbox: ZimSandbox):
    guard = RecordingGuard()
    async with guarded_stack(sandbox, replay_guard=guard) as local:
        slack = local.slack
        forged = "v0=" + "0" * 64
        command = await slack.post_signed(command_body(slack, "demo-12"), FORM, signature_override=forged)
        click = await slack.click_raw(
            forged_click(slack, "roomusers_next", encode_view(RoomView("demo-12", 1))), signature_override=forged
        )
        mention = await slack.post_event(
            payloads.app_mention_envelope(
                slack.identity,
                StoredMessage(channel="C0OPS", ts="1700000000.000200", text="<@UROOMUSERS> demo-12", blocks=[]),
                event_id="Ev0FORGED",
                now=time.time(),
            ),
            signature_override=forged,
        )
        # Signed with another app's secret: a well-formed signature that does not verify.
        other = SlackStandIn(signing_secret="another-apps-secret", bot_token="xoxb-other")
        body = command_body(slack, "demo-12")
        wrong_key = await slack.post_signed(body, FORM, headers=other.sign(body))
        for response in (command, click, mention, wrong_key):
            assert response.status == 401
            assert response.json == {"error": "invalid request"}
        await settle(local)
    assert slack.response_url_posts == []
    assert app_api_calls(local) == []
    assert sandbox.stats.requests == 0
    assert guard.asked == []  # signatures that do not verify are never remembered


MALFORMED = [
    (b'{"a":', "application/json"),
    (b"payload=%7Bx", FORM),
    (b"[1]", "application/json"),
    (b"payload=%5B1%5D", FORM),
]


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text


async def test_unsigned_malformed_bodies_get_401_without_traceback(guarded: LocalStack, http, caplog):
    caplog.set_level(logging.INFO)
    for body, content_type in MALFORMED:
        response = await guarded.slack.post_signed(body, content_type, signature_override="v0=" + "0" * 64)
        assert (response.status, response.json) == (401, {"error": "invalid request"})
    # Bytes that are not UTF-8 cannot even be signed (Slack signs text): refused before anything else.
    assert guarded.slack.app_url is not None
    raw = await http.post(guarded.slack.app_url, content=b"text=\xff\xfe", headers={"Content-Type": FORM})
    assert (raw.status_code, raw.json()) == (400, {"error": "malformed request"})
    no_tracebacks(caplog)


async def test_signed_malformed_bodies_get_400_without_traceback(guarded: LocalStack, caplog):
    caplog.set_level(logging.INFO)
    for body, content_type in MALFORMED:
        response = await guarded.slack.post_signed(body, content_type)
        assert (response.status, response.json) == (400, {"error": "malformed request"}), body
    no_tracebacks(caplog)
    # The endpoint still serves Slack afterwards.
    assert listed_user_ids(await answer_to(guarded, "demo-12"))


async def test_a_retry_header_cannot_bypass_the_replay_guard(guarded: LocalStack):
    slack = guarded.slack
    answer = await answer_to(guarded, "demo-120")
    payload = forged_click(slack, "roomusers_next", encode_view(RoomView("demo-120", 2)), shown=answer)
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = int(time.time())
    assert (await slack.post_signed(body, FORM, timestamp_override=stamp)).status == 200
    await slack.next_message()
    # The header is not covered by the signature: adding it to a captured request must not make it new.
    for retry in ("1", "2"):
        again = await slack.post_signed(body, FORM, timestamp_override=stamp, headers={"X-Slack-Retry-Num": retry})
        assert (again.status, again.headers.get("X-Slack-No-Retry")) == (200, "1")
    assert (await slack.post_signed(body, FORM, timestamp_override=stamp)).status == 401
    # A later request is answered; by then a handled copy would have posted its page too.
    await answer_to(guarded, "demo-12")
    assert len(slack.response_url_posts) == 3  # demo-120's answer, the one click, demo-12's answer


@pytest.mark.parametrize("offset", [-(SIGNATURE_WINDOW_SECONDS + 60), SIGNATURE_WINDOW_SECONDS + 60, -86_400])
async def test_stale_or_future_timestamps_are_refused(sandbox: ZimSandbox, offset: int):
    guard = RecordingGuard()
    async with guarded_stack(sandbox, replay_guard=guard) as local:
        stamp = int(time.time()) + offset
        response = await local.slack.post_signed(command_body(local.slack, "demo-12"), FORM, timestamp_override=stamp)
        assert response.status == 401
        await settle(local)
    assert local.slack.response_url_posts == []
    assert sandbox.stats.requests == 0
    assert guard.asked == []


JUNK_HEADERS = [
    {"X-Slack-Request-Timestamp": "abc"},
    {"X-Slack-Request-Timestamp": ""},
    {"X-Slack-Request-Timestamp": "1" + "0" * 400},  # int() works, float arithmetic overflows
    {"X-Slack-Request-Timestamp": "9" * 5000},  # beyond int()'s digit limit
    {"X-Slack-Request-Timestamp": "1e9"},
    {"X-Slack-Signature": ""},
    {"X-Slack-Signature": "v0=\xe9\xe9"},  # non-ASCII: hmac.compare_digest raises on it
]


async def test_junk_signing_headers_get_401_not_a_server_error(guarded: LocalStack):
    for headers in JUNK_HEADERS:
        response = await guarded.slack.post_signed(command_body(guarded.slack, "demo-12"), FORM, headers=headers)
        assert response.status == 401, headers
    await settle(guarded)
    assert guarded.sandbox.stats.requests == 0
    assert guarded.slack.response_url_posts == []


async def test_an_exact_replay_of_a_command_is_refused_and_answered_once(guarded: LocalStack):
    slack = guarded.slack
    body = command_body(slack, "demo-12")
    stamp = int(time.time())
    first = await slack.post_signed(body, FORM, timestamp_override=stamp)
    assert first.status == 200
    assert "Fetching" in first.body
    answer = await slack.next_message()
    assert len(listed_user_ids(answer)) == 12
    for _ in range(3):  # the same bytes and headers again, as someone who captured them would send them
        replay = await slack.post_signed(body, FORM, timestamp_override=stamp)
        assert replay.status == 401
        assert replay.json == {"error": "replayed request"}
    await settle(guarded)
    assert len(slack.response_url_posts) == 1
    assert guarded.sandbox.stats.requests == 1
    # A new request (new timestamp, so a new signature) with the same text is of course still answered.
    again = await slack.post_signed(body, FORM, timestamp_override=stamp - 1)
    assert again.status == 200
    await slack.next_message()


async def test_concurrent_copies_of_one_request_get_exactly_one_through(guarded: LocalStack):
    body = command_body(guarded.slack, "demo-1")
    stamp = int(time.time())
    responses = await asyncio.gather(
        *(guarded.slack.post_signed(body, FORM, timestamp_override=stamp) for _ in range(8))
    )
    assert sorted(r.status for r in responses) == [200] + [401] * 7
    await guarded.slack.next_message()
    await settle(guarded)
    assert len(guarded.slack.response_url_posts) == 1


async def test_a_replayed_click_is_refused(guarded: LocalStack):
    slack = guarded.slack
    answer = await answer_to(guarded, "demo-120")
    payload = forged_click(slack, "roomusers_next", encode_view(RoomView("demo-120", 2)), shown=answer)
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = int(time.time())
    assert (await slack.post_signed(body, FORM, timestamp_override=stamp)).status == 200
    await slack.next_message()
    assert (await slack.post_signed(body, FORM, timestamp_override=stamp)).status == 401
    await settle(guarded)
    assert len(slack.response_url_posts) == 2  # the command's answer and the one click


async def test_slack_retries_of_an_event_are_not_refused_and_are_answered_once(guarded: LocalStack):
    slack = guarded.slack
    first = await slack.mention("demo-1")
    assert first.status == 200
    await slack.next_message()
    envelope = first.sent
    now = int(time.time())
    for retry in (1, 2, 3):
        # Slack re-sends the identical envelope later: a new timestamp, hence a new signature.
        again = await slack.post_event(
            envelope,
            headers={"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"},
            timestamp_override=now + 2 * retry,
        )
        assert again.status == 200
    # An exact copy of the last retry is not handled again: it is answered so that Slack stops retrying.
    copied = await slack.post_event(
        envelope, headers={"X-Slack-Retry-Num": "3", "X-Slack-Retry-Reason": "http_timeout"}, timestamp_override=now + 6
    )
    assert copied.status == 200
    assert copied.headers.get("X-Slack-No-Retry") == "1"
    # Without the retry header, an exact copy is a replay.
    replayed = await slack.post_event(envelope, timestamp_override=now + 6)
    assert replayed.status == 401
    await settle(guarded)
    assert slack.unread() == []
    replies = [m for m in slack.messages("C0OPS") if m.origin == "api"]
    assert len(replies) == 1
    assert guarded.sandbox.stats.requests == 1


async def test_start_http_without_a_signing_secret_leaves_verification_to_bolt(sandbox: ZimSandbox):
    """Socket Mode (no signing secret) has no HTTP endpoint for Slack; without a secret there is no guard."""
    async with guarded_stack(sandbox) as local:
        runner, port = await start_http(local.app, LOOPBACK, 0)
        try:
            async with httpx.AsyncClient() as client:
                body = command_body(local.slack, "help")
                headers = {"Content-Type": FORM, **local.slack.sign(body)}
                url = f"http://{LOOPBACK}:{port}{EVENTS_PATH}"
                statuses = [(await client.post(url, content=body, headers=headers)).status_code for _ in range(2)]
        finally:
            await runner.cleanup()
    assert statuses == [200, 200]


async def test_memory_replay_guard_forgets_after_the_ttl_and_stays_bounded():
    assert REPLAY_TTL_SECONDS >= 2 * SIGNATURE_WINDOW_SECONDS  # a signature can verify for up to 600 s
    now = [0.0]
    guard = MemoryReplayGuard(timer=lambda: now[0], max_signatures=3)
    assert await guard.first_use("v0=a", "1")
    assert not await guard.first_use("v0=a", "1")
    now[0] = REPLAY_TTL_SECONDS - 1
    assert not await guard.first_use("v0=a", "1")
    now[0] = REPLAY_TTL_SECONDS + 1
    assert await guard.first_use("v0=a", "1")
    for n in range(10):
        assert await guard.first_use(f"v0={n}", "1")
    assert len(guard._seen) <= 3


# -- access control and forged button values ----------------------------------------------------------------

CLICKABLE = ("roomusers_prev", "roomusers_next", "roomusers_order", "roomusers_refresh", "roomusers_share")


@pytest.mark.parametrize(
    "ref", [RoomView("demo-120", 2, fetched_at=1_800_000_000), RoomView("demo-12", 1, True, 0.0, "a", "default")]
)
async def test_a_refused_user_clicking_any_button_gets_one_sentence_and_no_zim_request(
    sandbox: ZimSandbox, ref: RoomView
):
    access = AccessPolicy(users=["U0ALICE"])
    async with guarded_stack(sandbox, access=access) as local:
        for action_id in (*CLICKABLE, "roomusers_export"):
            response = await local.slack.click_raw(
                forged_click(local.slack, action_id, encode_view(ref), user="U0MALLORY")
            )
            assert response.status == 200
            refusal = await local.slack.next_message()
            assert "not on the list" in all_text(refusal)
            assert refusal.ephemeral and refusal.user == "U0MALLORY"
            assert listed_user_ids(refusal) == []
        await settle(local)
    assert sandbox.stats.requests == 0
    assert local.slack.files == []
    assert [m for m in local.slack.messages("C0OPS") if m.origin != "user"] == []


async def test_forged_button_values_get_a_sentence_and_no_traceback(
    guarded: LocalStack, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    slack = guarded.slack
    unknown_profile = encode_view(RoomView("demo-12", 1, profile="nope"))
    junk_values = ("not json", '{"v":1,"r":"demo-12","p":"1"}', '{"v":1,"r":"a b","p":1}', '{"v":99}', "[" * 5000)
    for action_id in ("roomusers_next", "roomusers_share", "roomusers_export", "roomusers_refresh"):
        await slack.click_raw(forged_click(slack, action_id, unknown_profile))
        reply = all_text(await slack.next_message())
        assert "There is no app profile `nope`" in reply
        assert "`default`" in reply
        for junk in junk_values:
            await slack.click_raw(forged_click(slack, action_id, junk))
            assert "older version of roomusers" in all_text(await slack.next_message())
        # A valid room ID that looks like a broadcast is just a room that does not exist.
        await slack.click_raw(forged_click(slack, action_id, encode_view(RoomView("<!channel>", 1))))
        if action_id == "roomusers_refresh":  # first "Reading room … again…", then why, in its place
            assert "Refreshing" in all_text(await slack.next_message())
        broadcast = all_text(await slack.next_message())
        assert "&lt;!channel&gt;" in broadcast
        assert "<!channel>" not in broadcast
    await settle(guarded)
    assert slack.files == []
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text


# -- 2. secrets never leak ----------------------------------------------------------------------------------

ZEGO_SECRET = "feedfacecafebeef" * 2  # the sandbox's (correct) ServerSecret
WRONG_ZEGO_SECRET = "0ddba11c0ffee000" * 2  # a well-formed secret ZIM does not know
MALFORMED_ZEGO_SECRET = "5ecre7" + "deadbeef" * 4  # 38 characters, and an "r": not a ServerSecret
BOT_TOKEN = "xoxb-4242-4242-b07b07b07b07b07b07b07b07"
SIGNING_SECRET = "516n516n" + "0badc0de" * 3
APP_TOKEN = "xapp-1-A0ROOMUSERS-4242-a99a99a99a99a99a99a9"
SECRETS = (ZEGO_SECRET, WRONG_ZEGO_SECRET, MALFORMED_ZEGO_SECRET, BOT_TOKEN, SIGNING_SECRET, APP_TOKEN)
# Distinctive pieces too, so a secret cut, split or re-cased in a message is still caught.
FRAGMENTS = (
    "feedfacecafe",
    "FEEDFACECAFE",
    "0ddba11c0ffee",
    "5ecre7",
    "b07b07b07b07",
    "516n516n",
    "0badc0de0bad",
    "a99a99a99",
)


def leaks(text: str, extra: tuple[str, ...] = ()) -> list[str]:
    return [piece for piece in (*SECRETS, *FRAGMENTS, *extra) if piece in text]


def slack_secrets(local: LocalStack) -> tuple[str, ...]:
    """The stack's own (random) bot token and signing secret, whole and as 12-character pieces."""
    settings = local.slack_settings
    values = [settings.bot_token, settings.signing_secret or "", settings.app_token or ""]
    return tuple(piece for value in values if value for piece in (value, value[-12:], value[-24:-12]))


@pytest.fixture
def debug_logging(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[str], None]]:
    """configure_logging(DEBUG, fmt) as `serve` does, with pytest's capture handler put back on the root logger."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_quiet = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}

    def configure(fmt: str) -> None:
        configure_logging(logging.DEBUG, fmt)
        root.addHandler(caplog.handler)
        caplog.handler.setLevel(logging.DEBUG)

    yield configure
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    for name, level in saved_quiet.items():
        logging.getLogger(name).setLevel(level)


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter()
    parts = [caplog.text]
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(vars(record)))  # args, extra fields (audit lines) and all
        if record.exc_info:
            parts.append(formatter.formatException(record.exc_info))
    return "\n".join(parts)


def everything_slack_received(local: LocalStack, responses: list[AppResponse]) -> str:
    slack = local.slack
    seen: list[Any] = [
        *slack.messages("C0OPS"),
        *slack.messages(slack.workspace.dm_channel("U0ALICE")),
        *slack.ephemerals("U0ALICE"),
        *slack.files,
        *(file.content.decode("utf-8", "replace") for file in slack.files),
        *slack.response_url_posts,
        *slack.api_calls,
        *(response.body for response in responses),
    ]
    return "\n".join(repr(item) for item in seen)


def two_profiles(sandbox: ZimSandbox) -> ZegoProfiles:
    good = ZegoSettings(app_id=sandbox.app_id, server_secret=ZEGO_SECRET, base_url=sandbox.base_url)
    wrong = ZegoSettings(
        app_id=sandbox.app_id, server_secret=WRONG_ZEGO_SECRET, base_url=sandbox.base_url, profile="staging"
    )
    return ZegoProfiles(default=good.profile, by_name={good.profile: good, "staging": wrong})


async def every_command_path(local: LocalStack) -> list[AppResponse]:
    """help, invalid room, an answer, paging, order, refresh, export, share, mention, unknown room and profile."""
    slack = local.slack
    responses = [await slack.send_command("help")]
    assert "/roomusers" in all_text(await slack.next_message())
    responses.append(await slack.send_command("bad/room"))
    assert "not a valid room ID" in all_text(await slack.next_message())
    responses.append(await slack.send_command("demo-120"))
    await slack.next_message()
    answer = await slack.next_message()
    assert len(listed_user_ids(answer)) == 20
    for action in ("roomusers_next", "roomusers_prev", "roomusers_order", "roomusers_refresh"):
        responses.append(await slack.click(answer, action))
        answer = await slack.next_message()
        if action == "roomusers_refresh":  # first the page marked "Refreshing…", then the new read
            assert "Refreshing" in all_text(answer)
            answer = await slack.next_message()
        assert len(listed_user_ids(answer)) == 20
    responses.append(await slack.click(answer, "roomusers_export"))
    assert "direct messages" in all_text(await slack.next_message())
    responses.append(await slack.click(answer, "roomusers_share"))
    assert "requested by <@U0ALICE>" in all_text(await slack.next_message())
    responses.append(await slack.mention("demo-12"))
    assert len(listed_user_ids(await slack.next_message())) == 12
    responses.append(await slack.send_command("no-such-room"))
    await slack.next_message()
    assert "does not exist" in all_text(await slack.next_message())
    responses.append(await slack.send_command("demo-12 --app nope"))  # refused in the ack itself
    assert "no app profile" in all_text(await slack.next_message())
    return responses


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_no_secret_reaches_logs_messages_exceptions_or_reprs(
    fmt: str, debug_logging: Callable[[str], None], caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
):
    debug_logging(fmt)
    logging.getLogger("bot.test").debug("the capture works")
    seen: list[str] = []
    async with ZimSandbox(secret=ZEGO_SECRET) as sandbox:
        # The default profile's secret is wrong: the sentence names the setting, never its value.
        wrong = ZegoSettings(app_id=sandbox.app_id, server_secret=WRONG_ZEGO_SECRET, base_url=sandbox.base_url)
        only_wrong = ZegoProfiles(default=wrong.profile, by_name={wrong.profile: wrong})
        async with guarded_stack(sandbox, profiles=only_wrong) as local:
            answer = await answer_to(local, "demo-1")
            assert "ZEGO_SERVER_SECRET" in all_text(answer)
            seen.append(everything_slack_received(local, []))
            runtime = slack_secrets(local)
        profiles = two_profiles(sandbox)
        async with guarded_stack(sandbox, profiles=profiles) as local:
            responses = await every_command_path(local)
            # The staging profile's secret is wrong too.
            responses.append(await local.slack.send_command("demo-1 --app staging"))
            await local.slack.next_message()
            assert "could not sign in to ZIM" in all_text(await local.slack.next_message())
            # ZIM unavailable (retries exhausted); demo-499 was never read, so nothing is cached.
            sandbox.inject(Fault(kind="http_status", status=503, count=1000))
            responses.append(await local.slack.send_command("demo-499"))
            await local.slack.next_message()
            assert "could not be read" in all_text(await local.slack.next_message())
            await settle(local)
            seen.append(everything_slack_received(local, responses))
            seen.append(repr(local))
            runtime += slack_secrets(local)
    seen.append(everything_logged(caplog))
    captured = capsys.readouterr()
    seen += [captured.out, captured.err]
    # configure_logging's handler really wrote here, and DEBUG records of the product and of slack_sdk (which
    # holds the bot token) were all captured.
    assert "the capture works" in captured.err
    loggers = {record.name for record in caplog.records if record.levelno == logging.DEBUG}
    assert {"bot.zim.client", "slack_sdk.web.async_base_client", "bot.slack.bolt"} <= loggers
    assert "roomusers.audit" in {record.name for record in caplog.records}
    settings_reprs = [
        repr(profiles),
        str(profiles),
        repr(only_wrong),
        repr(SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, app_token=APP_TOKEN)),
        str(SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, app_token=APP_TOKEN)),
    ]
    for text in [*seen, *settings_reprs]:
        assert leaks(text, runtime) == []


def test_settings_loaded_from_the_environment_do_not_show_their_secrets():
    env = {
        "ZEGO_APP_ID": "1234567890",
        "ZEGO_SERVER_SECRET": ZEGO_SECRET,
        "ZEGO_PROFILES": "staging",
        "ZEGO_STAGING_APP_ID": "777",
        "ZEGO_STAGING_SERVER_SECRET": WRONG_ZEGO_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_APP_TOKEN": APP_TOKEN,
    }
    shown = [
        repr(load_zego_settings(env)),
        repr(load_zego_profiles(env)),
        str(load_zego_profiles(env)),
        repr(load_slack_settings(env, http_mode=True)),
        repr(load_slack_settings(env, http_mode=False)),
    ]
    assert all(leaks(text) == [] for text in shown)


@pytest.mark.parametrize(
    "overrides",
    [
        {"ZEGO_SERVER_SECRET": MALFORMED_ZEGO_SECRET},
        {"ZEGO_PROFILES": "staging", "ZEGO_STAGING_APP_ID": "7", "ZEGO_STAGING_SERVER_SECRET": MALFORMED_ZEGO_SECRET},
        {"SLACK_BOT_TOKEN": "xoxp-" + BOT_TOKEN},  # a user token where a bot token belongs
        {"SLACK_APP_TOKEN": "xoxb-" + APP_TOKEN},
    ],
)
def test_config_errors_name_the_setting_and_never_echo_the_value(overrides: dict[str, str]):
    env = {
        "ZEGO_APP_ID": "1234567890",
        "ZEGO_SERVER_SECRET": ZEGO_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
        **overrides,
    }

    def load_all() -> None:
        load_zego_profiles(env)
        load_slack_settings(env, http_mode=False)

    with pytest.raises(ConfigError) as raised:
        load_all()
    assert leaks(str(raised.value)) == []
    assert leaks(repr(raised.value)) == []
    assert any(name in str(raised.value) for name in overrides)


async def test_the_zim_client_error_for_a_wrong_secret_does_not_carry_it():
    async with ZimSandbox(secret=ZEGO_SECRET) as sandbox, httpx.AsyncClient() as http:
        client = ZimClient(
            app_id=sandbox.app_id,
            server_secret=WRONG_ZEGO_SECRET,
            base_url=sandbox.base_url,
            pacer=SmoothPacer(20),
            http=http,
            retry=FAST_RETRY,
        )
        with pytest.raises(ZimCredentialsRejected) as raised:
            await client.query_page("demo-1", mode=0, cursor="0")
    error = raised.value
    assert "ZEGO_SERVER_SECRET" in str(error)
    for text in (str(error), repr(error), repr(error.args), repr(vars(error)), repr(client)):
        assert leaks(text) == []


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_the_query_cli_never_prints_a_secret(tmp_path: Path, fmt: str):
    async with ZimSandbox(secret=ZEGO_SECRET) as sandbox:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ZEGO_", "SLACK_", "LOG_"))}
        env.update(
            ZEGO_APP_ID=str(sandbox.app_id), ZEGO_API_BASE_URL=sandbox.base_url, LOG_LEVEL="DEBUG", LOG_FORMAT=fmt
        )
        wrong = await run_cli("query", "demo-12", cwd=tmp_path, env={**env, "ZEGO_SERVER_SECRET": WRONG_ZEGO_SECRET})
        malformed = await run_cli(
            "query", "demo-12", cwd=tmp_path, env={**env, "ZEGO_SERVER_SECRET": MALFORMED_ZEGO_SECRET}
        )
        right = await run_cli("query", "demo-12", cwd=tmp_path, env={**env, "ZEGO_SERVER_SECRET": ZEGO_SECRET})
    code, out, err = wrong
    assert code == 1
    assert "ZEGO_SERVER_SECRET" in err
    code, out, err = malformed
    assert code == 2
    assert "ZEGO_SERVER_SECRET" in err
    assert right[0] == 0
    assert "12 users" in right[1]
    for _, out, err in (wrong, malformed, right):
        assert leaks(out + err) == []
