"""`--changes` and the history of complete reads: through the sandbox (rooms changing under it) and the strict Slack
stand-in, two replicas sharing history in a real redis-server, and the diff rule as a property."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.dev.local_stack import LocalStack, local_replicas, local_stack
from bot.dev.zim_sandbox import SANDBOX_APP_ID, ZimSandbox
from bot.roster.diff import KeptChanges, diff_users
from bot.roster.model import RoomUser, Roster
from bot.roster.service import SnapshotService
from bot.settings import LimitSettings
from bot.state import build_shared_state, memory_state
from bot.state.connection import DEFAULT_PREFIX
from bot.state.history import redis_history
from bot.state.snapshots import MemorySnapshotStore, RedisSnapshotStore
from bot.zim.paging import FetchProgress

from .conftest import FAST_RETRY
from .redis_server import RedisServer
from .slack_helpers import all_text, answer_to, answers_to, listed_user_ids, tool_ids, wait_for_message
from .test_limits import metric

HOSTILE = "<!channel> *Eve* <@U0BOSS> &amp;"


def changes_paging(message) -> list[str]:
    return [
        e["action_id"] for b in message.blocks if b.get("block_id") == "roomusers_changes_paging" for e in b["elements"]
    ]


@pytest.mark.both_modes
async def test_first_changes_says_there_is_no_baseline_then_shows_who_joined_and_left(local: LocalStack):
    room = local.sandbox.add_room("churn", [(f"u{i}", f"User {i}") for i in range(30)])
    first = await answer_to(local, "churn --changes")
    assert "No earlier complete read of room `churn` is kept (baselines are kept up to 24 h)" in all_text(first)
    assert "is now the baseline" in all_text(first)
    room.leave("u3")
    room.leave("u7")
    room.join("x1", HOSTILE)
    room.join("x2", "Zoë")
    second = await answer_to(local, "churn --changes")
    text = all_text(second)
    assert "*+2 joined, −2 left* since <!date^" in text
    assert "s ago)" in text
    assert listed_user_ids(second) == ["x1", "x2", "u3", "u7"]
    assert "*Joined* (2)" in text and "*Left* (2)" in text
    # The hostile name is shown, never as a broadcast, a mention or bold text.
    assert "<!channel>" not in text and "<@U0BOSS>" not in text
    assert "&lt;!channel&gt;" in text
    # The second read is the next baseline: nothing changed since.
    third = await answer_to(local, "churn --changes")
    assert "*No one joined or left* since" in all_text(third)
    await local.until_idle()


async def test_a_fresh_read_that_comes_out_incomplete_is_never_diffed_and_keeps_the_baseline(local: LocalStack):
    local.sandbox.add_room("moving", 1_200)
    first = await answer_to(local, "moving --changes")
    assert "is now the baseline" in all_text(first)
    snapshots = local.rosters.by_profile[local.rosters.default].snapshots
    baseline = await snapshots.baseline("moving")
    assert baseline is not None and baseline.complete
    local.sandbox.rooms["moving"].leave(5)  # a real change, which this read must not report half-read
    local.sandbox.schedule("moving", after=(0, 1), ops=[{"op": "reconnect", "index": 0}])
    changed = await answer_to(local, "moving --changes")
    text = all_text(changed)
    assert "could not be read completely" in text
    assert "stays the baseline" in text
    assert "joined" not in text and listed_user_ids(changed) == []
    kept = await snapshots.baseline("moving")
    assert kept is not None and kept.fetched_at == baseline.fetched_at
    settled = await answer_to(local, "moving --changes")
    assert "*+0 joined, −1 left*" in all_text(settled)
    await local.until_idle()


async def test_a_big_diff_is_paged_from_the_kept_changes(local: LocalStack):
    room = local.sandbox.add_room("growing", [(f"u{i}", f"User {i}") for i in range(10)])
    await answer_to(local, "growing")  # an ordinary command's read is a baseline too
    for i in range(30):
        room.join(f"n{i:02d}", f"New {i}")
    room.leave("u0")
    page_one = await answer_to(local, "growing --changes")
    assert "*+30 joined, −1 left*" in all_text(page_one)
    assert listed_user_ids(page_one) == [f"n{i:02d}" for i in range(20)]
    assert changes_paging(page_one) == ["roomusers_changes_next"]
    requests = local.sandbox.stats.requests
    await local.slack.click(page_one, "roomusers_changes_next")
    page_two = await local.slack.next_message()
    assert page_two.ts == page_one.ts  # replaced in place
    assert listed_user_ids(page_two) == [*(f"n{i:02d}" for i in range(20, 30)), "u0"]
    assert changes_paging(page_two) == ["roomusers_changes_prev"]
    assert local.sandbox.stats.requests == requests  # paging reads the kept diff, not the room
    await local.until_idle()


async def test_the_what_changed_button_comes_once_an_earlier_read_exists_and_runs_changes_for_the_clicker(
    local: LocalStack,
):
    room = local.sandbox.add_room("watched", [(f"u{i}", f"User {i}") for i in range(5)])
    first = await answer_to(local, "watched")
    assert "roomusers_changes" not in tool_ids(first)  # the room's first kept read: nothing earlier to compare with
    await local.slack.click(first, "roomusers_refresh")
    await local.slack.next_message()  # the "Refreshing…" placeholder
    answer = await local.slack.next_message()
    assert answer.ts == first.ts and "Refreshing" not in all_text(answer)
    assert "roomusers_changes" in tool_ids(answer)  # this read replaced an earlier one
    room.join("late", "Late Comer")
    await local.slack.click(answer, "roomusers_changes")
    reading = await local.slack.next_message()
    assert reading.ephemeral and reading.ts != answer.ts
    assert "Reading room `watched` again to compare with the read of <!date^" in all_text(reading)
    changes = await local.slack.next_message()
    assert changes.ephemeral and changes.ts != answer.ts  # beside the answer, only for the clicker
    assert "*+1 joined, −0 left*" in all_text(changes)
    assert listed_user_ids(changes) == ["late"]
    await local.until_idle()


async def test_changes_sooner_than_refresh_min_after_the_last_read_answers_without_a_read(sandbox: ZimSandbox):
    sandbox.add_room("busy", [(f"u{i}", f"User {i}") for i in range(5)])
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, limits=LimitSettings(refresh_min=30)) as local:
        await answer_to(local, "busy")
        too_soon = metric("roomusers_changes_answers_total", profile="default", outcome="too_soon")
        requests = sandbox.stats.requests
        answer = await answer_to(local, "busy --changes")
        text = all_text(answer)
        assert "The last complete read of room `busy` was " in text and "s ago; try again in " in text
        assert sandbox.stats.requests == requests  # no read of the room
        assert metric("roomusers_changes_answers_total", profile="default", outcome="too_soon") == too_soon + 1
        await local.until_idle()


async def test_a_mention_shows_that_it_reads_again_then_the_changes_replace_it(local: LocalStack):
    room = local.sandbox.add_room("thread-churn", [("a", "Ann"), ("b", "Bob")])
    await answer_to(local, "thread-churn")
    room.leave("b")
    await local.slack.mention("thread-churn --changes")
    reading = await local.slack.next_message()
    assert "Reading room `thread-churn` again to compare with the read of <!date^" in all_text(reading)
    answer = await local.slack.next_message()
    assert answer.ts == reading.ts and answer.replaced_count == 1  # replaced in place, nothing left "reading"
    assert "*+0 joined, −1 left*" in all_text(answer)
    await local.until_idle()


async def test_changes_does_not_answer_from_a_read_begun_before_it_was_asked(local: LocalStack):
    room = local.sandbox.add_room("early", 1_200)
    await answer_to(local, "early")  # the baseline, once its read has ended
    await local.until_idle()
    local.sandbox.faults.set_latency(latency_ms=30)
    snapshots = local.rosters.by_profile[local.rosters.default].snapshots
    begun = snapshots.start_read("early")  # a read already under way when --changes comes
    await local.slack.send_command("early --changes", user_id="U0BOB")
    await begun.roster()
    after_that_read = local.sandbox.stats.requests
    room.leave(3)  # after the read under way ended: only a read begun for --changes can see it
    answer = await wait_for_message(local.slack, lambda: next(iter(answers_to(local.slack, "U0BOB")), None))
    assert "*+0 joined, −1 left*" in all_text(answer)
    assert local.sandbox.stats.requests > after_that_read
    await local.until_idle()


async def test_a_diff_the_store_cannot_keep_gets_no_paging_buttons():
    async def never(room_id: str, progress: FetchProgress) -> Roster:
        raise AssertionError("not read")

    service = SnapshotService(store=MemorySnapshotStore(max_users=10), fetch=never, namespace="zim:1")
    changes = KeptChanges(tuple(RoomUser(f"n{i}", "") for i in range(30)), (), since=1.0, read_at=2.0, users_now=30)
    assert not await service.keep_changes("0123456789ab", "r", changes)
    assert await service.kept_changes("0123456789ab", users_now=30) is None
    small = KeptChanges((RoomUser("n", ""),), (), since=1.0, read_at=2.0, users_now=1)
    assert await service.keep_changes("0123456789ac", "r", small)
    kept = await service.kept_changes("0123456789ac", users_now=1)
    assert kept is not None and list(kept.joined) == [RoomUser("n", "")] and (kept.since, kept.read_at) == (1.0, 2.0)


async def test_an_incomplete_first_read_offers_no_what_changed(local: LocalStack):
    local.sandbox.add_room("unsettled", 1_200)
    local.sandbox.schedule("unsettled", after=(0, 1), ops=[{"op": "reconnect", "index": 0}])
    await answer_to(local, "unsettled")  # the first page, while the rest is read
    final = await local.slack.next_message()
    assert "Incomplete:" in all_text(final)
    assert "roomusers_changes" not in tool_ids(final)
    await local.until_idle()


async def test_a_mention_with_changes_answers_in_its_thread(local: LocalStack):
    local.sandbox.add_room("threaded", [("a", "Ann")])
    mention = await local.slack.mention("threaded --changes")
    said = await local.slack.next_message()
    assert said.thread_ts == mention.sent["event"]["ts"] and not said.ephemeral
    assert "is now the baseline" in all_text(said)
    await local.until_idle()


async def test_history_in_redis_is_shared_by_replicas_and_expires(sandbox: ZimSandbox, redis_url: str, clients):
    """A read on replica A is replica B's baseline; the baseline is one key with a TTL of ROOMUSERS_HISTORY_HOURS."""
    room = sandbox.add_room("shared", [(f"u{i}", f"User {i}") for i in range(8)])
    async with local_replicas(2, sandbox=sandbox, redis_url=redis_url, retry=FAST_RETRY) as local:
        local.route(0)
        await local.slack.send_command("shared", user_id="U0ALICE")
        await wait_for_message(local.slack, lambda: next(iter(answers_to(local.slack, "U0ALICE")), None))
        room.leave("u1")
        room.join("b1", "Bea")
        local.route(1)
        await local.slack.send_command("shared --changes", user_id="U0BOB")
        answer = await wait_for_message(local.slack, lambda: next(iter(answers_to(local.slack, "U0BOB")), None))
        assert "*+1 joined, −1 left*" in all_text(answer)
        assert listed_user_ids(answer) == ["b1", "u1"]
        await local.until_idle()
    redis = clients()
    key = f"{DEFAULT_PREFIX}history:zim:{SANDBOX_APP_ID}:shared"
    ttl = await redis.pttl(key)
    assert 23 * 3600 * 1000 < ttl <= 24 * 3600 * 1000
    assert await redis.keys(f"{DEFAULT_PREFIX}history:*") == [key.encode()]  # one baseline per room


users = st.lists(
    st.tuples(st.sampled_from("abcdefgh"), st.sampled_from(["Ann", "Bob", ""])).map(lambda pair: RoomUser(*pair)),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(old=users, new=users)
def test_a_diff_is_the_set_differences_by_id_without_duplicates(old: list[RoomUser], new: list[RoomUser]):
    diff = diff_users(old, new)
    old_ids, new_ids = {u.user_id for u in old}, {u.user_id for u in new}
    joined = [u.user_id for u in diff.joined]
    left = [u.user_id for u in diff.left]
    assert set(joined) == new_ids - old_ids and len(joined) == len(set(joined))
    assert set(left) == old_ids - new_ids and len(left) == len(set(left))
    # In the order of the read each comes from, each at its first place there.
    assert joined == [i for i in dict.fromkeys(u.user_id for u in new) if i not in old_ids]
    assert left == [i for i in dict.fromkeys(u.user_id for u in old) if i not in new_ids]
    assert diff.unchanged == (old_ids == new_ids)


async def test_history_has_its_own_keys_and_budget_apart_from_snapshots(clients):
    redis = clients()
    history = redis_history(redis, hours=1, max_mb=1)
    snapshots = RedisSnapshotStore(redis, ttl=60)
    read = Roster("r", tuple(RoomUser(f"u{i}", f"User {i}") for i in range(100)), 100, 1_700_000_000.0)
    await history.put("zim:1:r", read)
    await snapshots.put("zim:1:r", read)
    assert await history.get("zim:1:r") == read and await history.contains("zim:1:r")
    await snapshots.discard("zim:1:r")  # a snapshot going does not take the baseline with it
    assert await history.get("zim:1:r") == read
    sizes = await redis.hgetall(f"{DEFAULT_PREFIX}history-bytes")
    assert set(sizes) == {f"{DEFAULT_PREFIX}history:zim:1:r".encode(), b"~total"}
    assert await redis.hget(f"{DEFAULT_PREFIX}snapshot-bytes", "~total") == b"0"
    assert 3_500_000 < await redis.pttl(f"{DEFAULT_PREFIX}history:zim:1:r") <= 3_600_000


async def test_changes_of_a_room_that_does_not_exist_says_so(local: LocalStack):
    answer = await answer_to(local, "no-such-room --changes")
    assert "Room `no-such-room` does not exist in ZIM" in all_text(answer)
    await local.until_idle()


async def test_history_falls_back_to_memory_while_redis_is_down(own_redis_server: RedisServer):
    server = own_redis_server
    state = await build_shared_state(server.url, probe_interval=0.2)
    try:
        before = Roster("r", (RoomUser("a", "Ann"),), 1, 1_700_000_000.0)
        await state.history.put("zim:1:r", before)
        assert await state.history.get("zim:1:r") == before
        server.stop()
        assert await state.history.get("zim:1:r") is None  # a miss (no baseline), not an error
        during = Roster("r", (RoomUser("b", "Bob"),), 1, 1_700_000_100.0)
        await state.history.put("zim:1:r", during)
        assert await state.history.contains("zim:1:r")
        assert await state.history.get("zim:1:r") == during
    finally:
        await state.aclose()


async def test_a_read_too_big_for_the_history_says_it_could_not_be_kept_as_a_baseline(sandbox: ZimSandbox):
    sandbox.add_room("roomy", [(f"u{i}", f"User {i}") for i in range(20)])
    small_history = MemorySnapshotStore(ttl=3600, max_users=10, kind="history")  # 20 users never fit
    state = replace(memory_state(), history=small_history)
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, state=state) as local:
        first = await answer_to(local, "roomy --changes")
        text = all_text(first)
        assert "No earlier complete read of room `roomy` is kept" in text
        assert "could not be kept as a baseline either" in text and "is now the baseline" not in text
        again = await answer_to(local, "roomy --changes")
        assert "No earlier complete read of room `roomy` is kept" in all_text(again)
        await local.until_idle()
