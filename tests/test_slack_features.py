"""End to end, the features beyond the list: filter, order, refresh, export, share, progressive answers,
access control, several ZEGO apps, audit, help. Signed requests in; what Slack would show read back."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging

import pytest

from bot.dev.local_stack import LocalStack, Mode, local_stack, sandbox_profile
from bot.dev.slack_standin import ResponseContext
from bot.dev.zim_sandbox import ZimSandbox
from bot.roster.model import RoomUser
from bot.roster.view import filter_users
from bot.settings import ZegoProfiles
from bot.slack.access import AccessPolicy
from bot.slack.export import roster_csv

from .conftest import FAST_RETRY
from .slack_helpers import action_ids, all_text, answer_to, listed_user_ids, tool_ids

pytestmark = pytest.mark.both_modes


def users_of(sandbox: ZimSandbox, room: str) -> list[tuple[str, str]]:
    return list(sandbox.rooms[room].users)


async def test_filter_is_case_insensitive_unicode_and_pages_within_matches(local: LocalStack):
    local.sandbox.add_room(
        "filtered", [(f"u{i}", f"Zoë Ångström {i}" if i % 3 == 0 else f"Bob {i}") for i in range(90)]
    )
    answer = await answer_to(local, "filtered ZOË ångSTRÖM")
    assert "*30 of 90 users* match" in all_text(answer)
    pages = [listed_user_ids(answer)]
    message = answer
    while "roomusers_next" in action_ids(message):
        await local.slack.click(message, "roomusers_next")
        message = await local.slack.next_message()
        pages.append(listed_user_ids(message))
    assert [uid for page in pages for uid in page] == [f"u{i}" for i in range(0, 90, 3)]


async def test_order_toggle_and_reverse_option(local: LocalStack):
    users = users_of(local.sandbox, "demo-120")
    answer = await answer_to(local, "demo-120")
    assert "roomusers_order" in tool_ids(answer)
    await local.slack.click(answer, "roomusers_order")
    newest = await local.slack.next_message()
    assert listed_user_ids(newest)[:3] == [uid for uid, _ in users[::-1][:3]]
    assert "most recent first" in all_text(newest)
    await local.slack.click(newest, "roomusers_order")
    oldest = await local.slack.next_message()
    assert listed_user_ids(oldest)[0] == users[0][0]
    reverse = await answer_to(local, "demo-120 --reverse")
    assert listed_user_ids(reverse)[0] == users[-1][0]


async def test_refresh_refetches_and_says_so(local: LocalStack):
    answer = await answer_to(local, "demo-120")
    await local.slack.send_command("demo-120")
    await local.slack.next_message()  # the ack
    cached = await local.slack.next_message()
    assert "from cache" in all_text(cached)
    requests = local.sandbox.stats.requests
    await local.slack.click(answer, "roomusers_refresh")
    refreshing = await local.slack.next_message()  # at once: the page shown, marked, without its buttons
    assert "↻ Refreshing… started" in all_text(refreshing)
    assert listed_user_ids(refreshing) == listed_user_ids(answer)
    assert action_ids(refreshing) == [] and tool_ids(refreshing) == []
    refreshed = await local.slack.next_message()
    assert "Refreshing" not in all_text(refreshed)
    assert local.sandbox.stats.requests == requests + 1
    assert "fresh" in all_text(refreshed)
    assert "from cache" not in all_text(refreshed)


async def test_export_of_an_ephemeral_answer_goes_to_a_direct_message(local: LocalStack):
    local.sandbox.add_room(
        "csv", [("u1", '=HYPERLINK("http://evil")'), ("u2", "+1 Ann"), ("-3", "@bob"), ("u4", 'Zoë, "Z"')]
    )
    answer = await answer_to(local, "csv")
    await local.slack.click(answer, "roomusers_export")
    confirmation = await local.slack.next_message()
    assert "direct messages" in all_text(confirmation)
    assert ":white_check_mark:" in all_text(confirmation) and ":warning:" not in all_text(confirmation)
    (upload,) = local.slack.files
    assert upload.channel_id is not None and upload.channel_id.startswith("D")
    expected = (
        'user_id,user_name\r\nu1,"\'=HYPERLINK(""http://evil"")"\r\nu2,\'+1 Ann\r\n-3,\'@bob\r\nu4,"Zoë, ""Z"""\r\n'
    )
    assert upload.content == expected.encode("utf-8-sig")  # IDs verbatim, names neutralised, BOM first
    assert upload.content == roster_csv(RoomUser(*user) for user in users_of(local.sandbox, "csv"))
    assert all(m.channel != "C0OPS" or m.ephemeral or m.origin == "user" for m in local.slack.messages("C0OPS"))


async def test_export_of_a_mention_answer_goes_to_its_thread(local: LocalStack):
    mention = await local.slack.mention("demo-120")
    answer = await local.slack.next_message()
    await local.slack.click(answer, "roomusers_export")
    notice = await local.slack.next_message()
    # The click's notice goes where the answer is: the mention's thread (it has replies, so it is shown).
    assert notice.ephemeral and notice.thread_ts == mention.sent["event"]["ts"]
    assert "Exported" in all_text(notice)
    (upload,) = local.slack.files
    assert upload.channel_id == "C0OPS"
    assert upload.thread_ts == mention.sent["event"]["ts"]
    rows = list(csv.reader(io.StringIO(upload.content.decode("utf-8-sig"))))
    assert rows[0] == ["user_id", "user_name"]
    assert len(rows) == 121


async def test_export_that_cannot_be_uploaded_gets_a_clear_answer(local: LocalStack):
    answer = await answer_to(local, "demo-12")
    local.slack.fail_next_api_calls("files.completeUploadExternal", "file_uploads_disabled")
    await local.slack.click(answer, "roomusers_export")
    reply = await local.slack.next_message()
    assert "disabled" in all_text(reply)
    assert local.slack.files == []


async def test_share_posts_the_current_page_visibly_crediting_the_requester(local: LocalStack):
    answer = await answer_to(local, "demo-120")
    assert "roomusers_share" in tool_ids(answer)
    await local.slack.click(answer, "roomusers_next")
    page_two = await local.slack.next_message()
    await local.slack.click(page_two, "roomusers_share")
    shared = await local.slack.next_message()
    assert not shared.ephemeral
    assert shared.channel == "C0OPS"
    assert "requested by <@U0ALICE>" in all_text(shared)
    assert listed_user_ids(shared) == listed_user_ids(page_two)
    assert "roomusers_share" not in tool_ids(shared)


async def test_big_room_answers_after_the_first_page_and_next_is_served_from_what_is_read(
    sandbox: ZimSandbox, mode: Mode
):
    sandbox.add_room("big", 20_000)  # 40 pages: about 2 s at 20 requests/s
    sandbox.faults.set_latency(latency_ms=50)
    async with local_stack(mode=mode, sandbox=sandbox, retry=FAST_RETRY) as local:
        await local.slack.send_command("big")
        await local.slack.next_message()  # the ack
        first = await local.slack.next_message()
        requests_when_answered = sandbox.stats.requests
        assert requests_when_answered <= 3  # about one round trip in, far from the 40 pages
        assert "*20,000 users* in this room" in all_text(first)
        assert "still loading" in all_text(first)
        assert listed_user_ids(first) == [uid for uid, _ in sandbox.rooms["big"].users[:20]]
        await local.slack.click(first, "roomusers_next")
        # Users 21-40 came with the first page of 500: page 2 is served at once, saying the read goes on...
        second = await local.slack.next_message(timeout=30)
        assert sandbox.stats.requests < 40
        assert listed_user_ids(second) == [uid for uid, _ in sandbox.rooms["big"].users[20:40]]
        assert "still loading" in all_text(second)
        assert "Page 2 of 1,000" in all_text(second)
        # ...and replaced by the whole room's page 2 when the read ends.
        final = await local.slack.next_message(timeout=30)
        assert listed_user_ids(final) == [uid for uid, _ in sandbox.rooms["big"].users[20:40]]
        assert "still loading" not in all_text(final)
        assert sandbox.stats.requests >= 40


async def test_big_room_mention_is_updated_in_place_when_loaded(sandbox: ZimSandbox, mode: Mode):
    sandbox.add_room("big", 12_000)
    sandbox.faults.set_latency(latency_ms=50)
    async with local_stack(mode=mode, sandbox=sandbox, retry=FAST_RETRY) as local:
        await local.slack.mention("big")
        partial = await local.slack.next_message()
        assert "still loading" in all_text(partial)
        final = partial
        while "still loading" in all_text(final):
            final = await local.slack.next_message(timeout=30)
        assert final.ts == partial.ts
        assert "*12,000 users* in this room" in all_text(final)
        assert "roomusers_export" in tool_ids(final)


async def test_refused_users_get_one_sentence_and_no_data_for_commands_mentions_and_clicks(
    sandbox: ZimSandbox, mode: Mode
):
    access = AccessPolicy(users=["U0ALICE"], usergroups=["S0ONCALL"])
    async with local_stack(mode=mode, sandbox=sandbox, access=access, retry=FAST_RETRY) as local:
        local.slack.workspace.usergroups["S0ONCALL"] = ["U0CAROL"]
        alice = await answer_to(local, "demo-120")
        assert len(listed_user_ids(alice)) == 20
        requests = sandbox.stats.requests

        await local.slack.send_command("demo-120", user_id="U0MALLORY", user_name="mallory")
        refused = await local.slack.next_message()  # the ack itself: no "Fetching…" first
        assert refused.origin == "ack"
        assert "not on the list" in all_text(refused)
        assert listed_user_ids(refused) == []

        await local.slack.send_command("demo-12", user_id="U0CAROL", user_name="carol")
        await local.slack.next_message()
        carol = await local.slack.next_message()
        assert len(listed_user_ids(carol)) == 12

        await local.slack.mention("demo-120", user="U0MALLORY")
        refused_mention = await local.slack.next_message()
        assert refused_mention.ephemeral
        assert listed_user_ids(refused_mention) == []

        # A button is data too: someone else pressing Alice's button is checked like a command.
        clicked = await local.slack.click_raw(
            {
                "type": "block_actions",
                "user": {"id": "U0MALLORY"},
                "team": {"id": "T0DEMO"},
                "container": {"type": "message", "message_ts": alice.ts, "is_ephemeral": False, "channel_id": "C0OPS"},
                "channel": {"id": "C0OPS"},
                "response_url": local.slack.new_response_url(ResponseContext(channel="C0OPS", user="U0MALLORY")),
                "actions": [
                    {
                        "action_id": "roomusers_next",
                        "block_id": "roomusers_paging",
                        "type": "button",
                        "value": next(
                            e["value"]
                            for b in alice.blocks
                            if b.get("block_id") == "roomusers_paging"
                            for e in b["elements"]
                        ),
                    }
                ],
            }
        )
        assert clicked.status == 200
        refused_click = await local.slack.next_message()
        assert "not on the list" in all_text(refused_click)
        assert listed_user_ids(refused_click) == []
        assert sandbox.stats.requests == requests + 1  # only Carol's room was read


async def test_several_zego_apps_are_picked_with_app_and_named_in_the_answer(sandbox: ZimSandbox, mode: Mode):
    async with ZimSandbox(app_id=777, secret="ab" * 16) as staging:
        staging.add_room("only-in-staging", 3)
        prod = sandbox_profile(sandbox, name="prod")
        stage = sandbox_profile(staging, name="staging")
        profiles = ZegoProfiles(default="prod", by_name={"prod": prod, "staging": stage})
        async with local_stack(mode=mode, sandbox=sandbox, profiles=profiles, retry=FAST_RETRY) as local:
            from_staging = await answer_to(local, "only-in-staging --app staging")
            assert "*3 users*" in all_text(from_staging)
            assert "app staging" in all_text(from_staging)
            missing_in_prod = await answer_to(local, "only-in-staging")
            assert "does not exist" in all_text(missing_in_prod)
            default = await answer_to(local, "demo-12")
            assert "app prod" in all_text(default)
            await local.slack.send_command("demo-12 --app nope")
            unknown = await local.slack.next_message()
            assert unknown.origin == "ack"  # refused before "Fetching…"
            assert "no app profile `nope`" in all_text(unknown)
            assert "`prod`, `staging`" in all_text(unknown)
            await local.slack.click(from_staging, "roomusers_refresh")
            refreshed = await local.slack.next_message()
            assert "app staging" in all_text(refreshed)
            assert "*3 users*" in all_text(refreshed)


async def test_every_command_and_action_writes_one_audit_line(local: LocalStack, caplog):
    caplog.set_level(logging.INFO, logger="roomusers.audit")
    answer = await answer_to(local, "demo-120")
    await local.slack.click(answer, "roomusers_next")
    await local.slack.next_message()

    def audit_lines():
        return [json.loads(r.getMessage()) for r in caplog.records if r.name == "roomusers.audit"]

    async with asyncio.timeout(5):  # the click's line is written once its answer is delivered
        while len(audit_lines()) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    lines = audit_lines()
    assert [line["surface"] for line in lines] == ["command", "action:roomusers_next"]
    command = lines[0]
    assert command["user"] == "U0ALICE"
    assert command["channel"] == "C0OPS"
    assert command["room"] == "demo-120"
    assert command["outcome"] == "ok"
    assert command["room_users"] == 120
    assert command["cache_hit"] is False
    assert command["zim_request_ids"]
    assert isinstance(command["latency_ms"], int)
    assert lines[1]["cache_hit"] is True


async def test_help_lists_every_form_with_examples(local: LocalStack):
    await local.slack.send_command("help")
    usage = all_text(await local.slack.next_message())
    for form in ("/roomusers &lt;room-id&gt;`", "&lt;text&gt;", "--reverse", "--app", "@roomusers"):
        assert form in usage


@pytest.mark.parametrize("text", ["demo-120 " + "x" * 257])
async def test_overlong_filter_is_refused_without_a_zim_call(local: LocalStack, text):
    await local.slack.send_command(text)
    reply = await local.slack.next_message()
    assert "257 characters long; it can match nothing" in all_text(reply)
    assert local.sandbox.stats.requests == 0


async def test_a_filtered_answer_exports_just_its_matches(local: LocalStack):
    early = await answer_to(local, "demo-1234 li")
    # A 3-page room answers a filter with the matches read so far (no tools yet: the list is still growing);
    # once it is read, the same command is answered from the snapshot, whole, with its tools.
    assert "still loading" in all_text(early)
    await local.until_idle()
    answer = await answer_to(local, "demo-1234 li")
    assert "still loading" not in all_text(answer)
    users = [RoomUser(*user) for user in users_of(local.sandbox, "demo-1234")]
    matches = filter_users(users, "li")
    assert 0 < len(matches) < len(users)
    assert "roomusers_export_matches" in tool_ids(answer)
    await local.slack.click(answer, "roomusers_export_matches")
    done = await local.slack.next_message()
    assert f"The CSV of the {len(matches):,} users matching “li” was sent to your direct messages" in all_text(done)
    (upload,) = local.slack.files
    assert upload.filename.endswith("-matching.csv")
    assert upload.content == roster_csv(matches)
    assert upload.initial_comment is not None
    assert f"matching “li” ({len(matches):,} of 1,234 users" in upload.initial_comment
    whole = await answer_to(local, "demo-12")
    assert "roomusers_export_matches" not in tool_ids(whole)


async def test_a_curly_apostrophe_finds_the_straight_one(local: LocalStack):
    local.sandbox.add_room("quotes", [("u1", "Noah O'Brien"), ("u2", "Ann Lee"), ("u3", "José Díaz")])
    answer = await answer_to(local, "quotes O’Brien")
    assert "*1 of 3 users* matches" in all_text(answer)
    assert "Noah O'Brien" in all_text(answer)
    accents = await answer_to(local, "quotes jose")
    assert "José Díaz" in all_text(accents)
