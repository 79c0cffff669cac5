"""An incomplete list says so everywhere: Slack (every page), the CSV export, the audit line and the metrics,
the snapshot stores; and what the roster model, the packed users and the sandbox's change controls promise."""

from __future__ import annotations

import asyncio
import json
import logging
import zlib

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.dev.local_stack import LocalStack
from bot.dev.zim_sandbox import ZimSandbox
from bot.dev.zim_sandbox.rooms import SandboxRoom
from bot.roster.model import RoomUser, Roster
from bot.roster.packed import GrowingUsers, PackedUsers, joined
from bot.roster.service import SnapshotService
from bot.roster.view import filter_users
from bot.slack.export import csv_filename
from bot.slack.render.blocks import MAX_TEXT_CHARS, roster_message
from bot.state.snapshots import (
    MemorySnapshotStore,
    RedisSnapshotStore,
    SnapshotDecodeError,
    decode_roster,
    encode_roster,
)
from bot.zim import RoomNotFound, fetch_roster

from .conftest import ClientFactory
from .slack_helpers import all_text, answer_to, listed_user_ids, tool_ids

NOW = 1_700_000_100.0
PROBLEM = "the room changed while it was read: 59 of 60 users"
USERS = tuple(RoomUser(f"u{i:03d}", f"Name <!here> {i}") for i in range(59))


def incomplete(users=USERS, *, count=60, problem=PROBLEM, reason="changed") -> Roster:
    return Roster(
        room_id="r1",
        users=users,
        reported_count=count,
        fetched_at=NOW - 5,
        complete=False,
        problem=problem,
        incomplete_reason=reason,
    )


# -- the model ---------------------------------------------------------------------------------------------


def test_incomplete_needs_a_problem_and_a_reason():
    with pytest.raises(ValueError, match="problem"):
        Roster("r", (), 0, 0.0, complete=False)
    with pytest.raises(ValueError, match="problem"):
        Roster("r", (), 0, 0.0, problem="x")
    with pytest.raises(ValueError, match="problem"):
        Roster("r", (), 0, 0.0, complete=False, problem="x")


def test_shortfall_is_the_users_missing_against_the_count():
    assert incomplete().shortfall == 1
    assert Roster("r", USERS, 10, 0.0).shortfall == 0  # more read than ZIM counted: nothing is missing


def test_growing_users_match_packed_and_joined_reverses_the_backward_part():
    forward = [RoomUser("a", "Ann"), RoomUser("\ud800x", "lone \udfff surrogate"), RoomUser("c", "🎉")]
    backward = [RoomUser("z", "Zoë"), RoomUser("y", "李娜")]
    grow_f, grow_b = GrowingUsers(), GrowingUsers()
    grow_f.extend(forward)
    grow_b.extend(backward)
    assert list(grow_f) == forward
    assert grow_f[-1] == forward[-1]
    assert list(grow_f[1:]) == forward[1:]
    assert grow_f.freeze() == PackedUsers(forward)
    both = joined(grow_f, grow_b)
    assert list(both) == [*forward, *reversed(backward)]
    assert PackedUsers.from_bytes(both.to_bytes()) == both


# -- Slack -------------------------------------------------------------------------------------------------


def note_of(message) -> str:
    notes = [
        element["text"]
        for block in message.blocks
        if block["type"] == "context"
        for element in block["elements"]
        if "Incomplete" in element["text"]
    ]
    assert len(notes) == 1, message.blocks
    return str(notes[0])


@pytest.mark.parametrize(
    ("page", "newest_first", "filter_text"),
    [(1, False, ""), (2, False, ""), (3, False, ""), (1, True, ""), (1, False, "1"), (2, True, "1")],
)
def test_incomplete_roster_shows_the_note_on_every_page(page, newest_first, filter_text):
    roster = incomplete(problem="the room changed <!channel> while it was read: 59 of 60 users")
    message = roster_message(roster, page=page, newest_first=newest_first, now=NOW, filter_text=filter_text)
    note = note_of(message)
    assert "the room changed &lt;!channel&gt; while it was read: 59 of 60 users" in note
    assert "<!channel>" not in json.dumps(message.blocks)
    assert "Refresh" in note
    assert message.text.startswith("Incomplete list: ")
    assert "ZIM reports" not in all_blocks_text(message)
    actions = [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]
    assert "roomusers_refresh" in actions
    assert len(message.blocks) <= 50
    assert all(len(json.dumps(block)) < 2 * MAX_TEXT_CHARS for block in message.blocks)
    if filter_text:
        assert len(filter_users(roster.users, filter_text)) < len(roster.users)


def all_blocks_text(message) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


def test_a_complete_roster_has_no_note():
    message = roster_message(Roster("r1", USERS, 60, NOW - 5), page=1, now=NOW)
    assert "Incomplete" not in all_blocks_text(message)
    assert "(ZIM reports 60)" in all_blocks_text(message)


async def test_an_incomplete_room_end_to_end_note_export_audit_and_metrics(
    local: LocalStack, caplog: pytest.LogCaptureFixture
):
    """A reconnect after page 1 of a 1,200-user room: every page says so, the export says so, the audit
    line and the metrics record the shortfall of the one read."""
    caplog.set_level(logging.INFO, logger="roomusers.audit")
    local.sandbox.add_room("moving", 1_200)
    local.sandbox.schedule("moving", after=(0, 1), ops=[{"op": "reconnect", "index": 0}])
    before = await scrape(local)
    loading = await answer_to(local, "moving")  # ZIM's first page, while the rest is read
    assert "still loading" in all_text(loading)
    answer = await local.slack.next_message()  # the command's second message: the list turned out incomplete
    await local.until_idle()
    text = all_text(answer)
    assert "Incomplete:" in text
    assert "the room changed while it was read: " in text
    await local.slack.click(answer, "roomusers_next")
    page_two = await local.slack.next_message()
    assert "Incomplete:" in all_text(page_two)
    assert listed_user_ids(page_two) and "roomusers_refresh" in tool_ids(page_two)
    await local.slack.click(page_two, "roomusers_export")
    sent = await local.slack.next_message()
    assert "incomplete" in all_text(sent)
    await local.until_idle()
    [stored] = local.slack.files
    assert stored.filename.endswith("-incomplete.csv")
    assert "incomplete:" in (stored.initial_comment or "")
    after = await scrape(local)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "roomusers.audit"]
    command = next(line for line in lines if line["surface"] == "command" and line.get("room") == "moving")
    assert command["complete"] is False
    assert command["shortfall"] == command["zim_count"] - command["room_users"]
    assert command["incomplete"] == "changed"

    def grew(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("roomusers_roster_shortfall_users_count") == 1  # one read, however many answers it served
    assert grew("roomusers_roster_shortfall_users_sum") == command["shortfall"]
    assert grew("roomusers_roster_reads_total", result="changed") == 1


async def test_a_complete_read_records_no_shortfall(local: LocalStack, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="roomusers.audit")
    before = await scrape(local)
    answer = await answer_to(local, "demo-120")
    assert "Incomplete" not in all_text(answer)
    await local.until_idle()
    after = await scrape(local)
    line = next(json.loads(r.getMessage()) for r in caplog.records if r.name == "roomusers.audit")
    assert (line["complete"], line["shortfall"]) == (True, 0)
    key: tuple[str, frozenset[tuple[str, str]]] = ("roomusers_roster_shortfall_users_count", frozenset())
    assert after[key] - before.get(key, 0.0) == 1
    bucket = ("roomusers_roster_shortfall_users_bucket", frozenset({("le", "0.0")}))
    assert after[bucket] - before.get(bucket, 0.0) == 1


async def scrape(local: LocalStack) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    metrics_url = local.ops_url + "/metrics"
    async with aiohttp.ClientSession() as session, session.get(metrics_url) as response:
        text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_incomplete_csv_name():
    assert (
        csv_filename("demo-120", 1_795_847_460.0, complete=False)
        == "roomusers-demo-120-20261128-063100Z-incomplete.csv"
    )
    assert csv_filename("demo-120", float("nan"), complete=False) == "roomusers-demo-120-incomplete.csv"


# -- the snapshot stores -----------------------------------------------------------------------------------


def old_decode_roster(value: bytes) -> Roster:
    """A copy of decode_roster as older replicas have it (RUS2 only), to prove what they read."""
    if not value.startswith(b"RUS2"):
        raise SnapshotDecodeError("not a roster snapshot (unknown tag)")
    body = zlib.decompress(value[4:])
    header_size = int.from_bytes(body[:4], "little")
    document = json.loads(body[4 : 4 + header_size])
    return Roster(
        room_id=document["room"],
        users=PackedUsers.from_bytes(body[4 + header_size :]),
        reported_count=document["count"],
        fetched_at=float(document["at"]),
        pages=document["pages"],
        being_destroyed=document["destroying"],
        request_ids=tuple(document["requests"]),
    )


def test_complete_value_is_rus2_and_readable_by_the_old_decoder():
    whole = Roster("r1", USERS, 59, NOW, pages=2, request_ids=("1", "2"))
    value = encode_roster(whole)
    assert value.startswith(b"RUS2")
    assert b"complete" not in zlib.decompress(value[4:])  # the header is today's, key for key
    assert old_decode_roster(value) == whole == decode_roster(value)


def test_incomplete_is_rus3_round_trips_and_the_old_decoder_misses_it():
    value = encode_roster(incomplete())
    assert value.startswith(b"RUS3")
    with pytest.raises(SnapshotDecodeError):
        old_decode_roster(value)
    assert decode_roster(value) == incomplete()


def test_rus3_that_claims_complete_is_corrupt():
    value = encode_roster(incomplete())
    body = zlib.decompress(value[4:])
    forged = body.replace(b'"complete":false', b'"complete":true ')
    with pytest.raises(SnapshotDecodeError):
        decode_roster(b"RUS3" + zlib.compress(forged))


async def test_redis_keeps_an_incomplete_roster_at_most_30_s(redis_url: str):
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    try:
        store = RedisSnapshotStore(redis, ttl=300)
        await store.put("k", incomplete())
        await store.put("whole", Roster("r1", USERS, 59, NOW))
        assert 0 < await redis.pttl(store.redis_key("k")) <= 30_000
        assert 30_000 < await redis.pttl(store.redis_key("whole")) <= 300_000
        assert await store.get("k") == incomplete()
    finally:
        await redis.aclose()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_memory_store_keeps_an_incomplete_roster_at_most_30_s():
    clock = Clock()
    store = MemorySnapshotStore(ttl=300, timer=clock)
    await store.put("k", incomplete())
    await store.put("whole", Roster("r1", USERS, 59, NOW))
    clock.now = 29.0
    assert await store.get("k") == incomplete()
    clock.now = 31.0
    assert await store.get("k") is None
    assert await store.get("whole") is not None


async def test_incomplete_is_not_served_to_new_commands_from_cache():
    reads: list[Roster] = [incomplete(), Roster("r1", USERS, 59, NOW)]

    async def fetch(room_id, progress):
        return reads.pop(0)

    service = SnapshotService(store=MemorySnapshotStore(), fetch=fetch, namespace="t")
    first = await service.get("r1")
    assert not first.roster.complete
    assert (await service.cached("r1")) == first.roster  # a click on that answer pages the same list
    second = await service.get("r1")  # a new command reads the room again
    assert second.roster.complete and not second.from_cache
    assert reads == []


async def test_room_not_found_is_cached_for_10_s_per_profile(sandbox: ZimSandbox, make_client: ClientFactory):
    clock = Clock()
    client, other_client = make_client(), make_client()

    def service_for(zim) -> SnapshotService:
        return SnapshotService(
            store=MemorySnapshotStore(),
            fetch=lambda room, progress: fetch_roster(zim, room, progress=progress),
            namespace="p",
            timer=clock,
        )

    prod, staging = service_for(client), service_for(other_client)
    for _ in range(3):
        with pytest.raises(RoomNotFound):
            await prod.get("mistyped")
    assert sandbox.stats.per_room["mistyped"] == 1
    with pytest.raises(RoomNotFound):
        await staging.get("mistyped")  # another profile asks its own ZIM app
    assert sandbox.stats.per_room["mistyped"] == 2
    with pytest.raises(RoomNotFound):
        await prod.get("mistyped", refresh=True)  # an explicit retry asks again
    assert sandbox.stats.per_room["mistyped"] == 3
    clock.now = 10.5
    with pytest.raises(RoomNotFound):
        await prod.get("mistyped")
    assert sandbox.stats.per_room["mistyped"] == 4


# -- the sandbox's change controls -------------------------------------------------------------------------


def test_reconnect_moves_to_the_newest_end_and_invalidates_pages():
    room = SandboxRoom("r", [("a", "A"), ("b", "B"), ("c", "C")], record_history=True)
    assert room.encoded(reverse=True)[0] == room.encoded(reverse=True)[0]  # cached
    assert room.reconnect(0) == "a"
    users, count, end = room.page(1, 0, 2)
    assert (users, count, end) == ([("a", "A"), ("c", "C")], 3, 2)
    assert b'"a"' in room.encoded(reverse=True)[0]
    assert room.leave(-1) == "a"
    assert room.leave("zz") is None
    room.destroy("gone")
    assert room.gone
    assert room.history == [("a", "b", "c"), ("b", "c", "a"), ("b", "c"), ("b", "c")]


async def test_changes_api_validates_and_applies_after_page_k(sandbox: ZimSandbox, make_client: ClientFactory):
    sandbox.add_room("ctl", 1_600)
    base = f"{sandbox.base_url}/_sandbox/rooms/ctl/changes"
    async with aiohttp.ClientSession() as session:
        for bad in (
            {"after": {"mode": 0, "page": 2}, "ops": [{"op": "explode"}]},
            {"after": {"mode": 3, "page": 2}, "ops": [{"op": "join", "count": 1}]},
            {"after": "now", "ops": [{"op": "leave", "index": 5000}]},
            {"after": {"mode": 0, "page": 2}, "ops": [{"op": "leave"}]},
            {"after": {"mode": 0, "page": 2}, "ops": [{"op": "join", "count": 1}, {"op": "leave", "zz": 1}]},
        ):
            async with session.post(base, json=bad) as response:
                assert response.status == 400, bad
                assert "error" in await response.json()
        async with session.get(base) as response:
            assert await response.json() == {"pending": [], "applied": []}
        change = {"after": {"mode": 0, "page": 2}, "ops": [{"op": "leave", "user_id": "u000701"}]}
        async with session.post(base, json=change) as response:
            assert response.status == 200
            assert (await response.json())["pending"] == [change]
        await fetch_roster(make_client(), "ctl")
        async with session.get(base) as response:
            listed = await response.json()
        async with session.get(f"{sandbox.base_url}/_sandbox/events", params={"room_id": "ctl"}) as response:
            events = (await response.json())["events"]
    assert listed["pending"] == []
    assert listed["applied"] == [{**change, "count_after": 1_599}]
    mode_0_pages = [i for i, event in enumerate(events) if event[:2] == ["page", 0]]
    op_at = events.index(["op", "leave", "u000701"])
    assert mode_0_pages[1] < op_at  # applied right after the second page of Mode 0 was answered...
    assert all(event[0] == "page" for event in events[:op_at])
    assert len(mode_0_pages) < 3 or mode_0_pages[2] > op_at  # ...and before the next one


async def test_changes_at_once_and_cleared(sandbox: ZimSandbox):
    sandbox.add_room("ctl", 10)
    base = f"{sandbox.base_url}/_sandbox/rooms/ctl/changes"
    async with aiohttp.ClientSession() as session:
        async with session.post(base, json={"after": "now", "ops": [{"op": "join", "user_id": "x", "user_name": "X"}]}):
            pass
        async with session.post(base, json={"after": {"mode": 1, "page": 4}, "ops": [{"op": "destroy"}]}):
            pass
        async with session.delete(base) as response:
            assert (await response.json())["pending"] == []
    assert len(sandbox.rooms["ctl"]) == 11
    assert sandbox.rooms["ctl"].state == "ok"
    await asyncio.sleep(0)


# -- query's output and progress bar -----------------------------------------------------------------------


@pytest.mark.parametrize("newest_first", [False, True])
def test_streamed_json_is_the_same_object_in_chunks(newest_first):
    import io

    from bot.query import roster_json, write_roster_json

    users = tuple(RoomUser(f"id-{i}", f'Näme "{i}" <!here> 🎉\\') for i in range(3_000))  # several 64 KiB chunks
    for roster in (Roster("r1", users, 3_000, NOW), incomplete(users, count=3_100)):
        out = io.StringIO()
        write_roster_json(roster, out, newest_first=newest_first)
        assert out.getvalue().endswith("\n")
        assert json.loads(out.getvalue()) == json.loads(roster_json(roster, newest_first=newest_first))
        assert list(json.loads(out.getvalue())) == list(json.loads(roster_json(roster, newest_first=newest_first)))


def test_progress_bar_draws_only_on_a_terminal():
    import io

    from bot.progress import progress_bar

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    pipe, terminal = io.StringIO(), Terminal()
    for stream in (pipe, terminal):
        with progress_bar(file=stream) as update:
            update(500, 0)
            update(1_000, 3_000)
            update(3_000, 3_000)
    assert pipe.getvalue() == ""
    assert "3.00k" in terminal.getvalue() or "3000" in terminal.getvalue()


async def test_reverse_answers_from_mode_1_first_page(sandbox: ZimSandbox):
    """`--reverse` reads the newest end first: its first answer needs one round trip, whatever the room size."""
    from bot.dev.local_stack import local_stack

    from .conftest import FAST_RETRY

    sandbox.add_room("big", 5_000)
    sandbox.faults.set_latency(latency_ms=50)
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY) as local:
        first = await answer_to(local, "big --reverse")
        requests_when_answered = sandbox.stats.requests
        assert sandbox.events("big")[0][:2] == ("page", 1)  # the read began with Mode=1
        assert requests_when_answered <= 3  # the first page, and at most the two that went out with the answer
        assert "still loading" in all_text(first)
        assert "most recent first" in all_text(first)
        assert listed_user_ids(first) == [uid for uid, _ in sandbox.rooms["big"].users[::-1][:20]]
        await local.until_idle()


async def test_filter_while_loading_answers_with_matches_so_far_and_mentions_update_in_place(sandbox: ZimSandbox):
    from bot.dev.local_stack import local_stack

    from .conftest import FAST_RETRY

    sandbox.add_room("big", 12_000)
    sandbox.faults.set_latency(latency_ms=50)
    everyone = [uid for uid, _ in sandbox.rooms["big"].users]
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY) as local:
        command = await answer_to(local, "big u0001")
        text = all_text(command)
        assert "for “u0001” in the 500 of 12,000 users read so far · still loading" in text
        assert listed_user_ids(command) == [uid for uid in everyone[:500] if "u0001" in uid][:20]
        await local.until_idle()
        sandbox.add_room("other", sandbox.rooms["big"].users)  # the same users in a room not read yet
        await local.slack.mention("other u0001")
        partial = await local.slack.next_message()
        assert "still loading" in all_text(partial)
        final = partial
        while "still loading" in all_text(final) or "still loading" in all_text(final):
            final = await local.slack.next_message(timeout=30)
        assert final.ts == partial.ts  # updated in place
        matches = [uid for uid in everyone if "u0001" in uid]
        assert f"*{len(matches):,} of 12,000 users* match" in all_text(final)
        assert listed_user_ids(final) == matches[:20]


async def test_a_failed_refresh_puts_the_page_back_with_its_buttons(local: LocalStack):
    from bot.dev.zim_sandbox import Fault

    answer = await answer_to(local, "demo-120")
    local.sandbox.inject(Fault(kind="code", code=660300007, count=100))  # ZIM cannot load the room
    await local.slack.click(answer, "roomusers_refresh")
    refreshing = await local.slack.next_message()
    assert "Refreshing" in all_text(refreshing)
    restored = await local.slack.next_message()
    assert restored.ts == answer.ts
    assert "Refreshing" not in all_text(restored)
    assert "roomusers_refresh" in tool_ids(restored)
    failure = await local.slack.next_message()
    assert "could not load room" in all_text(failure)
    assert failure.ts != answer.ts


def test_shared_progress_round_trips_and_foreign_values_are_ignored():
    from bot.state.progress import SharedProgress, decode_progress, encode_progress

    shared = SharedProgress(20_000, 1_000, 1, PackedUsers(USERS[:3]), NOW)
    assert decode_progress(encode_progress(shared)) == shared
    assert decode_progress(b"RUS2" + encode_progress(shared)[4:]) is None
    assert decode_progress(encode_progress(shared)[:-3]) is None
