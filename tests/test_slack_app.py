"""End to end, in both modes: signed Slack requests into the real Bolt app over HTTP, or envelopes over its Socket
Mode WebSocket; answers read from the Slack stand-in."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.dev.local_stack import LocalStack, Mode, local_stack, sandbox_profile
from bot.dev.slack_standin import ResponseContext, StoredMessage
from bot.dev.zim_sandbox import Fault, ZimSandbox
from bot.settings import ZegoProfiles
from bot.slack.access import AccessPolicy
from bot.slack.render.buttons import decode_view
from bot.state.snapshots import MemorySnapshotStore

from .conftest import FAST_RETRY
from .slack_helpers import action_ids, all_text, answer_to, listed_user_ids

pytestmark = pytest.mark.both_modes


async def test_command_acks_at_once_then_answers_ephemerally_with_count_and_first_page(local: LocalStack):
    response = await local.slack.send_command("demo-120")
    assert response.acked_in_time
    ack = await local.slack.next_message()
    assert "Fetching" in (ack.text or "")
    answer = await local.slack.next_message()
    assert answer.ephemeral
    assert answer.user == "U0ALICE"
    assert answer.origin == "response_url"
    assert "120 users" in all_text(answer)
    assert listed_user_ids(answer) == [uid for uid, _ in local.sandbox.rooms["demo-120"].users[:20]]
    assert action_ids(answer) == ["roomusers_next"]
    assert "Page 1 of 6" in all_text(answer)
    assert answer.text  # fallback text for notifications and screen readers


async def test_paging_visits_every_user_exactly_once_and_prev_goes_back(local: LocalStack):
    message = await answer_to(local, "demo-120")
    requests_after_first_answer = local.sandbox.stats.requests
    pages = [listed_user_ids(message)]
    while "roomusers_next" in action_ids(message):
        await local.slack.click(message, "roomusers_next")
        message = await local.slack.next_message()
        assert message.replaced_count == len(pages)  # replaced in place, not posted anew
        pages.append(listed_user_ids(message))
    assert action_ids(message) == ["roomusers_prev"]
    seen = [uid for page in pages for uid in page]
    assert seen == [uid for uid, _ in local.sandbox.rooms["demo-120"].users]
    await local.slack.click(message, "roomusers_prev")
    back = await local.slack.next_message()
    assert listed_user_ids(back) == pages[-2]
    assert local.sandbox.stats.requests == requests_after_first_answer  # clicks read the snapshot
    assert len(local.slack.ephemerals("U0ALICE")) == 2  # the ack and the one answer, paged in place


async def test_twenty_concurrent_commands_all_ack_in_time_and_all_get_answers(local: LocalStack):
    rooms = [f"demo-{n}" for n in (1, 12, 120, 499, 500)] * 4
    responses = await asyncio.gather(*(local.slack.send_command(room) for room in rooms))
    assert all(r.status == 200 and r.acked_in_time for r in responses)

    def all_answered() -> list[StoredMessage]:
        # Five rooms at once and four readers (ROOMUSERS_MAX_CONCURRENT_READS): a queued room's askers are told
        # their place in line first, then get the list.
        found = [
            m
            for m in local.slack.ephemerals("U0ALICE")
            if m.origin == "response_url" and "Waiting for a free reader" not in all_text(m)
        ]
        return found if len(found) == 20 else []

    answers = await local.slack.wait_for(all_answered, timeout=20)
    assert sorted(len(listed_user_ids(m)) for m in answers) == sorted([1, 12, 20, 20, 20] * 4)
    # One fetch per room, however many asked at once.
    assert local.sandbox.stats.requests == 5


@pytest.mark.parametrize("text", ["", "help", "  --help "])
async def test_empty_text_or_help_gives_usage_without_any_zim_call(local: LocalStack, text):
    response = await local.slack.send_command(text)
    assert response.acked_in_time
    usage = await local.slack.next_message()
    assert "/roomusers" in all_text(usage)
    assert "--reverse" in all_text(usage)
    assert local.sandbox.stats.requests == 0


async def test_invalid_room_id_says_what_is_wrong_without_any_zim_call(local: LocalStack):
    await local.slack.send_command("bad/room")
    answer = await local.slack.next_message()
    assert "not a valid room ID" in all_text(answer)
    assert "“/” (U+002F)" in all_text(answer)
    assert local.sandbox.stats.requests == 0


@pytest.mark.parametrize(
    ("room", "expected"),
    [
        ("no-such-room", "does not exist"),
        ("demo-broken", "could not load room"),
        ("demo-empty", "This room is empty"),
    ],
)
async def test_room_problems_get_a_specific_sentence(local: LocalStack, room, expected):
    answer = await answer_to(local, room)
    assert expected in all_text(answer)
    if room != "demo-empty":
        assert "RequestId" in all_text(answer)


async def test_upstream_unavailable_after_retries_is_answered(local: LocalStack):
    local.sandbox.inject(Fault(kind="http_status", status=503, count=1000))
    answer = await answer_to(local, "demo-12")
    assert "could not be read" in all_text(answer)
    assert "Try again" in all_text(answer)


async def test_rejected_credentials_name_the_setting_to_fix(sandbox: ZimSandbox, mode: Mode):
    wrong = replace(sandbox_profile(sandbox), server_secret="0" * 32)
    profiles = ZegoProfiles(default=wrong.profile, by_name={wrong.profile: wrong})
    async with local_stack(mode=mode, sandbox=sandbox, profiles=profiles, retry=FAST_RETRY) as local:
        answer = await answer_to(local, "demo-1")
    assert "ZEGO_SERVER_SECRET" in all_text(answer)
    assert "0" * 32 not in all_text(answer)


async def test_names_cannot_ping_or_link(local: LocalStack):
    answer = await answer_to(local, "demo-hostile")
    text = all_text(answer)
    for live in ("<!channel>", "<!here>", "<!everyone>", "<@U123ABC>", "<https://evil.example|click me>"):
        assert live not in text
    assert "&lt;!channel&gt;" in text
    (post,) = local.slack.response_url_posts
    assert post.payload is not None
    assert not post.payload.get("link_names")
    # A mention is answered through the Web API: the same holds for what the app posts there.
    await local.slack.mention("demo-hostile")
    posted = await local.slack.next_message()
    assert "&lt;!channel&gt;" in all_text(posted)
    posts = [call for call in local.slack.api_calls if call.method == "chat.postMessage"]
    assert posts
    assert not any(call.args.get("link_names") for call in posts)


async def test_mention_answers_visibly_in_a_new_thread(local: LocalStack):
    response = await local.slack.mention("demo-12")
    assert response.status == 200
    answer = await local.slack.next_message()
    mention_ts = response.sent["event"]["ts"]
    assert answer.thread_ts == mention_ts
    assert not answer.ephemeral
    assert len(listed_user_ids(answer)) == 12


async def test_mention_inside_a_thread_answers_in_that_thread_with_working_paging(local: LocalStack):
    root = await local.slack.mention("help")
    usage = await local.slack.next_message()
    assert "/roomusers" in all_text(usage)
    root_ts = root.sent["event"]["ts"]
    await local.slack.mention("demo-120", thread_ts=root_ts)
    answer = await local.slack.next_message()
    assert answer.thread_ts == root_ts
    await local.slack.click(answer, "roomusers_next")
    page_two = await local.slack.next_message()
    assert page_two.ts == answer.ts
    assert listed_user_ids(page_two)[0] == local.sandbox.rooms["demo-120"].users[20][0]


async def test_a_retried_event_is_answered_once(local: LocalStack):
    first = await local.slack.mention("demo-1")
    await local.slack.next_message()
    event_id = first.sent["event_id"]
    for retry in (1, 2, 3):
        again = await local.slack.mention("", event_id=event_id, retry_num=retry)
        assert again.status == 200
    await local.until_idle()
    assert local.slack.unread() == []
    replies = [m for m in local.slack.messages("C0OPS") if m.origin == "api"]
    assert len(replies) == 1


@pytest.mark.http_only
async def test_forged_signature_is_refused_and_nothing_is_posted(local: LocalStack):
    payload = b"command=%2Froomusers&text=demo-1&response_url=http%3A%2F%2F127.0.0.1%3A1%2Fx"
    response = await local.slack.post_signed(
        payload, "application/x-www-form-urlencoded", signature_override="v0=" + "0" * 64
    )
    assert response.status == 401
    stale = await local.slack.post_signed(
        payload, "application/x-www-form-urlencoded", timestamp_override=1_000_000_000
    )
    assert stale.status == 401
    await local.until_idle()
    assert local.slack.response_url_posts == []
    assert local.sandbox.stats.requests == 0


async def test_a_click_after_the_snapshot_expired_refetches_and_says_so(sandbox: ZimSandbox, mode: Mode):
    now = [0.0]
    store = MemorySnapshotStore(ttl=60, timer=lambda: now[0])
    async with local_stack(mode=mode, sandbox=sandbox, store=store, retry=FAST_RETRY) as local:
        first = await answer_to(local, "demo-120")
        now[0] = 120
        await local.slack.click(first, "roomusers_next")
        page_two = await local.slack.next_message()
    assert "read again" in all_text(page_two)
    assert len(listed_user_ids(page_two)) == 20


async def test_a_button_from_an_older_version_gets_a_polite_answer(local: LocalStack):
    answer = await answer_to(local, "demo-120")
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ALICE"},
        "team": {"id": "T0DEMO"},
        "api_app_id": "A0ROOMUSERS",
        "container": {"type": "message", "message_ts": answer.ts, "is_ephemeral": True},
        "channel": {"id": "C0OPS"},
        "response_url": local.slack.new_response_url(
            ResponseContext(channel="C0OPS", user="U0ALICE", message_ts=answer.ts)
        ),
        "actions": [{"action_id": "roomusers_next", "block_id": "roomusers_paging", "value": "2", "type": "button"}],
    }
    response = await local.slack.click_raw(payload)
    assert response.status == 200
    reply = await local.slack.next_message()
    assert "older version" in all_text(reply)


async def test_healthz(local: LocalStack):
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(local.ops_url + "/healthz") as r:
        assert r.status == 200
        body = await r.json()
    assert body["live"] is True
    assert body["checks"]["event_loop"].startswith("ok")


async def scrape(local: LocalStack) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample /metrics serves, by name and labels."""
    import aiohttp

    metrics_url = local.ops_url + "/metrics"
    async with aiohttp.ClientSession() as session, session.get(metrics_url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_count_commands_zim_codes_and_cache_in_prometheus_format(local: LocalStack):
    # The registry is process-wide (earlier tests count too): what this test did is the difference.
    before = await scrape(local)
    answer = await answer_to(local, "demo-120")
    await local.slack.click(answer, "roomusers_next")
    await local.slack.next_message()
    await local.until_idle()
    after = await scrape(local)

    def grew(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("roomusers_commands_total", outcome="ok", surface="command") == 1
    assert grew("roomusers_commands_total", outcome="ok", surface="action:roomusers_next") == 1
    assert grew("roomusers_zim_requests_total", code="0") >= 1  # demo-120 fits one page; the meeting may add one
    assert grew("roomusers_snapshot_lookups_total", result="hit") >= 1  # the click read the snapshot
    assert grew("roomusers_fetch_duration_seconds_count") == 1
    assert grew("roomusers_limiter_wait_seconds_count") == grew("roomusers_zim_requests_total", code="0")


async def test_a_command_whose_text_contains_payload_is_answered(local: LocalStack):
    """Bolt takes any form body containing "payload" for a click's `payload=` field (HTTP mode only)."""
    local.sandbox.add_room("payload-7", 7)
    answer = await answer_to(local, "payload-7")
    assert "7 users" in all_text(answer)
    assert len(listed_user_ids(answer)) == 7


async def two_profiles(sandbox: ZimSandbox) -> ZegoProfiles:
    default, eu = sandbox_profile(sandbox), sandbox_profile(sandbox, name="eu")
    return ZegoProfiles(default=default.profile, by_name={default.profile: default, "eu": eu})


async def test_profile_names_ignore_case_and_buttons_carry_the_configured_name(sandbox: ZimSandbox):
    async with local_stack(sandbox=sandbox, profiles=await two_profiles(sandbox), retry=FAST_RETRY) as local:
        answer = await answer_to(local, "demo-12 --app EU")
        assert "app eu" in all_text(answer)
        values = [e["value"] for b in answer.blocks if b["type"] == "actions" for e in b["elements"]]
        assert values
        assert {decode_view(value).profile for value in values} == {"eu"}
        await local.slack.mention("demo-12 --app Eu")
        mentioned = await local.slack.next_message()
        assert "app eu" in all_text(mentioned)


async def test_an_unknown_profile_is_refused_in_the_ack_before_any_zim_call(sandbox: ZimSandbox):
    async with local_stack(sandbox=sandbox, profiles=await two_profiles(sandbox), retry=FAST_RETRY) as local:
        await local.slack.send_command("demo-12 --app nope")
        refused = await local.slack.next_message()
        assert refused.origin == "ack"
        assert "There is no app profile `nope`; this roomusers knows `default`, `eu`." in all_text(refused)
        await local.slack.mention("demo-12 --app nope")
        in_thread = await local.slack.next_message()
        assert "There is no app profile `nope`" in all_text(in_thread)
        everything = [all_text(m) for m in local.slack.ephemerals("U0ALICE") + local.slack.messages("C0OPS")]
        assert not [text for text in everything if "Fetching" in text]
    assert sandbox.stats.requests == 0


async def test_a_user_who_is_not_allowed_never_sees_fetching(sandbox: ZimSandbox):
    policy = AccessPolicy(users=["U0BOB"])
    async with local_stack(sandbox=sandbox, access=policy, retry=FAST_RETRY) as local:
        await local.slack.send_command("demo-12")
        refused = await local.slack.next_message()
        assert refused.origin == "ack"
        assert "Not allowed" in all_text(refused)
        assert len(local.slack.ephemerals("U0ALICE")) == 1
    assert sandbox.stats.requests == 0


class SlowPolicy(AccessPolicy):
    """An access check that is still undecided when the ack must go (a first, slow user-group lookup)."""

    def __init__(self) -> None:
        super().__init__(users=["U0BOB"])
        self.release = asyncio.Event()

    async def refusal(self, *, user_id: str, channel_id: str, client: Any) -> str | None:
        await self.release.wait()
        return await super().refusal(user_id=user_id, channel_id=channel_id, client=client)


async def test_a_refusal_decided_after_the_ack_comes_without_fetching_first(sandbox: ZimSandbox):
    policy = SlowPolicy()
    async with local_stack(sandbox=sandbox, access=policy, retry=FAST_RETRY) as local:
        response = await local.slack.send_command("demo-12")
        assert response.acked_in_time
        assert not response.body.strip()  # acknowledged silently: no "Fetching…" promise
        policy.release.set()
        refused = await local.slack.next_message()
        assert refused.origin == "response_url"
        assert "Not allowed" in all_text(refused)
        assert len(local.slack.ephemerals("U0ALICE")) == 1
    assert sandbox.stats.requests == 0


@pytest.mark.parametrize("text", ["'demo-120", "a`b", "'a/b'"])
async def test_quoted_input_keeps_code_spans_whole(local: LocalStack, text: str):
    await local.slack.send_command(text)
    answer = await local.slack.next_message()
    body = answer.blocks[0]["text"]["text"]
    assert body.count("`") % 2 == 0
    assert "'" * 3 not in body
    assert "``" not in body


async def test_a_quoted_room_id_lists_the_room(local: LocalStack):
    answer = await answer_to(local, "\u2018demo-12\u2019")
    assert "*12 users* in this room" in all_text(answer)
