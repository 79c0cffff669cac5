"""The ZIM client against the sandbox over real loopback HTTP: paging, codes, faults, pacing, coalescing."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from bot.dev.zim_sandbox import Fault, ZimSandbox
from bot.roster.service import SnapshotService
from bot.state.snapshots import MemorySnapshotStore
from bot.zim import (
    InvalidRoomId,
    RetryPolicy,
    RoomNotFound,
    RoomUnavailable,
    ZimCredentialsRejected,
    ZimUnavailable,
    fetch_roster,
)
from bot.zim.codes import ROOM_RATE_LIMITED
from bot.zim.paging import NEWEST_FIRST

from .conftest import ClientFactory


def expected_users(sandbox: ZimSandbox, room_id: str) -> list[tuple[str, str]]:
    return list(sandbox.rooms[room_id].users)


@pytest.mark.parametrize("size", [1, 499, 500, 501, 1234])
async def test_whole_rooms_arrive_complete_in_join_order(sandbox, make_client: ClientFactory, size):
    room_id = f"size-{size}"
    sandbox.add_room(room_id, size)
    roster = await fetch_roster(make_client(), room_id)
    assert [tuple(user) for user in roster.users] == expected_users(sandbox, room_id)
    assert roster.reported_count == size
    assert not roster.being_destroyed
    assert roster.complete
    assert roster.problem == ""
    assert roster.shortfall == 0
    # One page when it fits; otherwise two chains that stop where they meet (at most one page of overlap each).
    assert roster.pages <= -(-size // 500) + 2
    assert sandbox.stats.rate_limited == 0


async def test_the_seeded_rooms_including_hostile_names_and_special_room_ids(sandbox, make_client: ClientFactory):
    client = make_client()
    for room_id in ("demo-1", "demo-120", "demo-hostile", "room#1+a&b"):
        roster = await fetch_roster(client, room_id)
        assert [tuple(user) for user in roster.users] == expected_users(sandbox, room_id), room_id


async def test_empty_room_being_destroyed_is_an_empty_roster_not_an_error(make_client: ClientFactory):
    roster = await fetch_roster(make_client(), "demo-empty")
    assert roster.users == ()
    assert roster.being_destroyed
    assert roster.complete
    assert roster.reported_count == 0


async def test_room_that_does_not_exist(sandbox, make_client: ClientFactory):
    with pytest.raises(RoomNotFound) as raised:
        await fetch_roster(make_client(), "no-such-room")
    assert raised.value.request_id
    assert raised.value.request_id in str(raised.value)


async def test_room_zim_cannot_load_is_not_retried(sandbox, make_client: ClientFactory):
    with pytest.raises(RoomUnavailable):
        await fetch_roster(make_client(), "demo-broken")
    assert sandbox.stats.requests == 1


async def test_wrong_secret_names_the_setting_and_is_not_retried(sandbox, make_client: ClientFactory):
    with pytest.raises(ZimCredentialsRejected, match="ZEGO_SERVER_SECRET") as raised:
        await fetch_roster(make_client(secret="f" * 32), "demo-1")
    assert raised.value.code == 100000005
    assert sandbox.stats.requests == 1


async def test_unknown_app_id_names_the_setting(make_client: ClientFactory):
    with pytest.raises(ZimCredentialsRejected, match="ZEGO_APP_ID"):
        await fetch_roster(make_client(app_id=42), "demo-1")


async def test_expired_signature_is_resigned_once_then_reported(sandbox, make_client: ClientFactory):
    with pytest.raises(ZimCredentialsRejected, match="clock"):
        await fetch_roster(make_client(clock=lambda: time.time() - 3600), "demo-1")
    assert sandbox.stats.by_code[100000004] == 2


async def test_invalid_room_id_is_refused_before_any_request(sandbox, make_client: ClientFactory):
    with pytest.raises(InvalidRoomId, match="space"):
        await fetch_roster(make_client(), "has space")
    assert sandbox.stats.requests == 0


@pytest.mark.parametrize(
    "fault",
    [
        Fault(kind="code", code=ROOM_RATE_LIMITED, count=2),
        Fault(kind="code", code=660300005, count=2),
        Fault(kind="code", code=1, count=2),
        Fault(kind="code", code=7, count=2),
        Fault(kind="http_status", status=503, count=2),
        Fault(kind="http_status", status=500, body='{"Code":1,"Message":"busy"}', count=1),
        Fault(kind="drop", count=2),
        Fault(kind="garbage", count=2),
    ],
    ids=lambda fault: f"{fault.kind}-{fault.code if fault.kind == 'code' else fault.status}",
)
async def test_transient_faults_are_retried_to_a_complete_list(sandbox, make_client: ClientFactory, fault):
    injected = fault.count
    sandbox.inject(fault)
    roster = await fetch_roster(make_client(), "demo-1234")
    assert [tuple(user) for user in roster.users] == expected_users(sandbox, "demo-1234")
    assert sum(sandbox.stats.faults_applied.values()) == injected


async def test_timeouts_are_retried(sandbox, make_client: ClientFactory):
    sandbox.inject(Fault(kind="delay", seconds=2.0, count=1))
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.3)) as short_timeout:
        roster = await fetch_roster(make_client(http_client=short_timeout), "demo-120")
    assert len(roster.users) == 120
    assert sandbox.stats.faults_applied["delay"] == 1
    assert sandbox.stats.requests == 2  # the timed-out attempt and its retry


async def test_persistent_failure_gives_up_within_budget_with_request_id(sandbox, make_client: ClientFactory):
    sandbox.inject(Fault(kind="code", code=1, count=1000))
    retry = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.02, total_budget=2.0)
    started = time.monotonic()
    with pytest.raises(ZimUnavailable) as raised:
        await fetch_roster(make_client(retry=retry), "demo-120")
    assert time.monotonic() - started < 2.0
    assert raised.value.attempts == 4
    assert sandbox.stats.requests == 4
    assert raised.value.request_id
    assert "gave up after 4 attempts" in str(raised.value)


async def test_persistent_drops_give_up_as_unavailable(sandbox, make_client: ClientFactory):
    sandbox.inject(Fault(kind="drop", count=1000))
    retry = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, total_budget=2.0)
    with pytest.raises(ZimUnavailable, match="connection"):
        await fetch_roster(make_client(retry=retry), "demo-120")


async def test_a_cursor_repeating_on_one_chain_is_covered_by_the_other(sandbox, make_client: ClientFactory):
    sandbox.inject(Fault(kind="repeat_cursor", mode=0, count=100))
    roster = await fetch_roster(make_client(), "demo-1234")
    assert [tuple(user) for user in roster.users] == expected_users(sandbox, "demo-1234")


async def test_cursors_repeating_on_both_chains_return_an_incomplete_roster(sandbox, make_client: ClientFactory):
    sandbox.add_room("big", 3000)
    sandbox.inject(Fault(kind="repeat_cursor", count=100))
    roster = await fetch_roster(make_client(), "big")
    assert not roster.complete
    assert roster.incomplete_reason == "cursor_repeated"
    assert len(roster.users) < roster.reported_count == 3000
    assert roster.problem == f"ZIM's paging cursor repeated: {len(roster.users):,} of 3,000 users read"
    assert_no_duplicates(roster)


async def test_endless_cursor_and_short_pages_alone_still_complete(sandbox, make_client: ClientFactory):
    sandbox.add_room("odd", 1600)
    sandbox.inject(Fault(kind="short_page", size=120, count=3))
    sandbox.inject(Fault(kind="endless_cursor", count=50))
    roster = await fetch_roster(make_client(), "odd")
    assert [tuple(user) for user in roster.users] == expected_users(sandbox, "odd")
    assert roster.complete
    assert sandbox.stats.faults_applied["short_page"] == 3


async def test_drifting_count_is_a_sign_of_change(sandbox, make_client: ClientFactory):
    sandbox.add_room("drift", 1600)
    sandbox.inject(Fault(kind="count_drift", delta=9, count=2))
    roster = await fetch_roster(make_client(), "drift")
    assert sandbox.stats.faults_applied["count_drift"] == 2
    assert not roster.complete
    assert roster.incomplete_reason == "changed"
    assert "the room changed while it was read" in roster.problem


async def test_cursors_that_never_end_are_stopped_and_reported():
    """A server whose cursors lead nowhere forever (empty pages, fresh cursors): stop, and say so."""
    import itertools
    import json

    counter = itertools.count()

    def endless(request: httpx.Request) -> httpx.Response:
        n = next(counter)
        users = [{"UserId": "first", "UserName": "F"}] if n == 0 else []
        body = {"Code": 0, "RequestId": str(n), "Count": 5, "NextFlag": f"c{n}", "UserList": users}
        return httpx.Response(200, content=json.dumps(body).encode())

    async with httpx.AsyncClient(transport=httpx.MockTransport(endless)) as http:
        from bot.state.pacer import SmoothPacer
        from bot.zim import ZimClient

        client = ZimClient(
            app_id=1, server_secret="a" * 32, base_url="http://zim.test", pacer=SmoothPacer(1000), http=http
        )
        roster = await fetch_roster(client, "loop")
    assert not roster.complete
    assert roster.incomplete_reason == "cursor_endless"
    assert roster.problem == "ZIM's paging cursor did not end: 1 of 5 users read"
    assert next(counter) < 12


def assert_no_duplicates(roster) -> None:
    ids = [user.user_id for user in roster.users]
    assert len(ids) == len(set(ids)), "a user listed twice"


async def test_a_reconnect_after_page_1_does_not_end_the_read(sandbox, make_client: ClientFactory):
    """The issue's case: user 1 reconnects right after page 1 (moving to the newest end, where the Mode-1
    chain's first page meets it). That coincidence must not end the read: it goes on to the real meeting,
    and the roster says it is not the whole room."""
    sandbox.add_room("churn", 10_000)
    first = sandbox.rooms["churn"].users[0][0]
    sandbox.schedule("churn", after=(0, 1), ops=[{"op": "reconnect", "index": 0}])
    roster = await fetch_roster(make_client(), "churn")
    assert [op for kind, op, _ in sandbox.events("churn") if kind == "op"] == ["reconnect"]
    assert roster.pages >= 20
    assert_no_duplicates(roster)
    assert len(roster.users) in (9_999, 10_000)
    assert first in {user.user_id for user in roster.users}
    assert not roster.complete
    assert roster.incomplete_reason == "changed"
    assert roster.problem == f"the room changed while it was read: {len(roster.users):,} of 10,000 users"
    assert roster.shortfall == 10_000 - len(roster.users)


async def test_join_leave_and_rejoin_between_pages(sandbox, make_client: ClientFactory):
    sandbox.add_room("moving", 3000, record_history=True)
    leaver = sandbox.rooms["moving"].users[4][0]
    sandbox.schedule(
        "moving",
        after=(1, 1),
        ops=[{"op": "join", "user_id": "late", "user_name": "Late"}, {"op": "leave", "user_id": leaver}],
    )
    sandbox.schedule("moving", after=(0, 3), ops=[{"op": "join", "user_id": leaver, "user_name": "Back"}])
    roster = await fetch_roster(make_client(), "moving")
    applied = [(op, user) for kind, op, user in sandbox.events("moving") if kind == "op"]
    assert applied == [("join", "late"), ("leave", leaver), ("join", leaver)]
    assert_no_duplicates(roster)
    assert not roster.complete
    assert roster.incomplete_reason == "changed"
    assert roster.problem == f"the room changed while it was read: {len(roster.users):,} of 3,001 users"
    # Everyone who was there the whole time is listed, but for at most one user skipped by the leave.
    history = sandbox.rooms["moving"].history
    assert history is not None
    stable = set(history[0]).intersection(*map(set, history))
    assert len(stable - {user.user_id for user in roster.users}) <= 1


async def test_destroyed_part_way_is_incomplete_with_the_last_count(sandbox, make_client: ClientFactory):
    sandbox.add_room("doomed", 10_000)
    sandbox.schedule("doomed", after=(0, 4), ops=[{"op": "destroy", "state": "destroying"}])
    roster = await fetch_roster(make_client(), "doomed")
    assert roster.being_destroyed
    assert not roster.complete
    assert roster.incomplete_reason == "destroyed"
    assert roster.reported_count == 10_000
    assert 2_000 <= len(roster.users) < 10_000
    assert roster.problem == f"the room is being destroyed: {len(roster.users):,} of 10,000 read"
    assert_no_duplicates(roster)


async def test_room_gone_part_way_is_incomplete(sandbox, make_client: ClientFactory):
    sandbox.add_room("vanishing", 5000)
    sandbox.schedule("vanishing", after=(0, 2), ops=[{"op": "destroy", "state": "gone"}])
    roster = await fetch_roster(make_client(), "vanishing")
    assert not roster.complete
    assert roster.incomplete_reason == "destroyed"
    assert roster.reported_count == 5000
    assert 1_000 <= len(roster.users) < 5_000


async def test_reverse_first_reads_mode_1_first(sandbox, make_client: ClientFactory):
    sandbox.add_room("rev", 1234)
    roster = await fetch_roster(make_client(), "rev", first_mode=NEWEST_FIRST)
    assert sandbox.events("rev")[0][:2] == ("page", 1)
    assert roster.complete
    assert [tuple(user) for user in roster.users] == expected_users(sandbox, "rev")


async def test_pacing_keeps_every_one_second_window_under_the_limit(sandbox, make_client: ClientFactory):
    client = make_client(qps=20)
    rooms = [f"load-{n}" for n in (6000, 7000, 8000)]
    rosters = await asyncio.gather(*(fetch_roster(client, room) for room in rooms))
    assert [len(r.users) for r in rosters] == [6000, 7000, 8000]
    assert sandbox.stats.rate_limited == 0
    assert sandbox.stats.max_in_window(1.0) <= 20


async def test_concurrent_requests_for_one_room_cause_one_fetch(sandbox, make_client: ClientFactory):
    client = make_client()
    service = SnapshotService(
        store=MemorySnapshotStore(),
        fetch=lambda room, progress: fetch_roster(client, room, progress=progress),
        namespace="test",
    )
    snapshots = await asyncio.gather(*(service.get("demo-1234") for _ in range(10)))
    single = await fetch_roster(make_client(), "demo-1234")
    assert sandbox.stats.requests == 2 * single.pages
    assert all(len(s.roster.users) == 1234 for s in snapshots)


async def test_rejected_credentials_of_another_profile_name_its_own_variables(make_client: ClientFactory):
    client = make_client(secret="f" * 32, settings_prefix="ZEGO_STAGING_")
    with pytest.raises(ZimCredentialsRejected, match="ZEGO_STAGING_SERVER_SECRET and ZEGO_STAGING_APP_ID"):
        await fetch_roster(client, "demo-1")
