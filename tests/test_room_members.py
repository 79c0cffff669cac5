"""QueryRoomMembers end to end: the client against the sandbox over real loopback HTTP, and the sandbox's own
answers to requests signed by hand (its checks, codes, lists and its 5/s-per-room window)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.dev.zim_sandbox import SANDBOX_APP_ID, SANDBOX_SERVER_SECRET, Fault, ZimSandbox
from bot.dev.zim_sandbox.ratelimit import RoomWindows
from bot.dev.zim_sandbox.rooms import HOSTILE_NAMES
from bot.state.pacer import SmoothPacer
from bot.zim import (
    Absence,
    InvalidRoomId,
    InvalidUserIds,
    RetryPolicy,
    RoomNotFound,
    RoomUnavailable,
    ZimClient,
    ZimCredentialsRejected,
    ZimUnavailable,
    fetch_roster,
)
from bot.zim.members import members_query
from bot.zim.signing import common_params

from .conftest import FAST_RETRY, ClientFactory

NO_RETRY = RetryPolicy(max_attempts=1, total_budget=5.0)


class ManualClock:
    """The sandbox's monotonic clock, moved by the test: the rate windows see exactly these times."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingPacer:
    """A real SmoothPacer that also records which priority each send used and every cool-down."""

    def __init__(self) -> None:
        self.inner = SmoothPacer(1000)
        self.turns: list[str] = []
        self.cool_downs: list[float] = []

    async def wait_turn(self) -> float:
        self.turns.append("interactive")
        return await self.inner.wait_turn()

    async def wait_background_turn(self) -> float:
        self.turns.append("background")
        return await self.inner.wait_background_turn()

    async def cool_down(self, seconds: float) -> None:
        self.cool_downs.append(seconds)
        await self.inner.cool_down(seconds)


def client_for(sandbox: ZimSandbox, http: httpx.AsyncClient, *, pacer: Any = None, retry=FAST_RETRY) -> ZimClient:
    return ZimClient(
        app_id=SANDBOX_APP_ID,
        server_secret=SANDBOX_SERVER_SECRET,
        base_url=sandbox.base_url,
        pacer=pacer or SmoothPacer(1000),
        http=http,
        retry=retry,
    )


@pytest.fixture
async def clocked() -> AsyncIterator[tuple[ZimSandbox, ManualClock]]:
    clock = ManualClock()
    async with ZimSandbox(monotonic=clock) as sandbox:
        yield sandbox, clock


# ----- the client ---------------------------------------------------------------------------------------


async def test_everyone_asked_is_in_with_their_names(sandbox, make_client: ClientFactory):
    users = sandbox.rooms["demo-120"].users
    asked = [user_id for user_id, _ in users[:10]]
    result = await make_client().query_members("demo-120", asked)
    assert [(m.user_id, m.user_name) for m in result.present] == users[:10]
    assert result.absent == ()
    assert result.request_id.isdigit()
    assert all(m.avatar is None and m.extra is None for m in result.present)
    assert sandbox.stats.members_requests == 1


async def test_not_in_the_room_and_not_registered_are_told_apart(sandbox, make_client: ClientFactory):
    sandbox.add_room("stage", [("host", "Hôst"), ("guest", "Guest")])
    sandbox.add_room("lobby", [("waiting", "Waiting")])
    sandbox.logged_in.add("idle")  # logged in to ZIM, in no room
    result = await make_client().query_members("stage", ["guest", "waiting", "idle", "ghost", "host"])
    assert [(m.user_id, m.user_name) for m in result.present] == [("guest", "Guest"), ("host", "Hôst")]
    assert [(a.user_id, a.reason, a.sub_code) for a in result.absent] == [
        ("waiting", Absence.NOT_IN_ROOM, 660300012),
        ("idle", Absence.NOT_IN_ROOM, 660300012),
        ("ghost", Absence.NOT_LOGGED_IN, 660200001),
    ]
    assert result.is_in("host")
    assert not result.is_in("ghost")


async def test_none_in_is_an_answer_not_an_error(sandbox, make_client: ClientFactory):
    result = await make_client().query_members("demo-12", ["nobody", "u000001x"])
    assert result.present == ()
    assert {a.reason for a in result.absent} == {Absence.NOT_LOGGED_IN}
    assert sandbox.stats.by_code[660200001] == 1


async def test_hostile_names_and_ids_arrive_verbatim(sandbox, make_client: ClientFactory):
    client = make_client()
    hostile = sandbox.rooms["demo-hostile"].users
    for start in range(0, len(HOSTILE_NAMES), 10):
        chunk = hostile[start : start + 10]
        result = await client.query_members("demo-hostile", [user_id for user_id, _ in chunk])
        assert [(m.user_id, m.user_name) for m in result.present] == chunk
    # IDs with every character a query string could mangle, and multi-byte ones up to the 32-byte limit.
    odd = [("a&b=c", "amp"), ("x+y z", "plus space"), ("%20#?", "percent"), ("李" * 10, "hanzi"), ("<@U1>", "<!here>")]
    sandbox.add_room("odd", odd)
    result = await client.query_members("odd", [user_id for user_id, _ in odd])
    assert [(m.user_id, m.user_name) for m in result.present] == odd


async def test_duplicates_are_asked_once(sandbox, make_client: ClientFactory):
    result = await make_client().query_members("demo-12", ["u000001", "u000001", "nobody"])
    assert [m.user_id for m in result.present] == ["u000001"]
    assert [a.user_id for a in result.absent] == ["nobody"]


@pytest.mark.parametrize(
    ("room_id", "user_ids", "error", "fragment"),
    [
        ("demo-12", [f"u{i:06d}" for i in range(1, 12)], InvalidUserIds, "at most 10 user IDs at a time; 11"),
        ("demo-12", [], InvalidUserIds, "at least one"),
        ("demo-12", ["x" * 33], InvalidUserIds, "33 bytes"),
        ("demo-12", [""], InvalidUserIds, "empty"),
        ("has space", ["u1"], InvalidRoomId, "a space"),
        ("", ["u1"], InvalidRoomId, "empty"),
    ],
)
async def test_bad_input_is_refused_before_any_request(
    sandbox, make_client: ClientFactory, room_id, user_ids, error, fragment
):
    with pytest.raises(error, match=fragment):
        await make_client().query_members(room_id, user_ids)
    assert sandbox.stats.requests == 0


async def test_a_room_that_does_not_exist_is_room_not_found(sandbox, make_client: ClientFactory):
    with pytest.raises(RoomNotFound) as raised:
        await make_client().query_members("no-such-room", ["u1"])
    assert raised.value.code == 660300001
    assert raised.value.request_id
    assert raised.value.request_id in str(raised.value)


async def test_rooms_being_destroyed_empty_or_broken(sandbox, make_client: ClientFactory):
    client = make_client()
    destroyed = await client.query_members("demo-empty", ["u1", "u2"])
    assert destroyed.being_destroyed
    assert destroyed.present == ()
    assert {a.reason for a in destroyed.absent} == {Absence.ROOM_BEING_DESTROYED}
    sandbox.add_room("emptied", [])
    assert (await client.query_members("emptied", ["u1"])).being_destroyed
    with pytest.raises(RoomUnavailable):
        await client.query_members("demo-broken", ["u000001"])


async def test_the_signature_is_checked_like_every_other_call(sandbox, make_client: ClientFactory):
    with pytest.raises(ZimCredentialsRejected) as raised:
        await make_client(secret="f" * 32).query_members("demo-12", ["u000001"])
    assert raised.value.code == 100000005
    assert "f" * 32 not in str(raised.value)


async def test_a_rate_limited_answer_is_retried_without_holding_the_whole_app(sandbox, http):
    pacer = RecordingPacer()
    sandbox.inject(Fault("code", code=660300006, action="QueryRoomMembers"))
    result = await client_for(sandbox, http, pacer=pacer).query_members("demo-12", ["u000001"])
    assert result.is_in("u000001")
    assert sandbox.stats.members_requests == 2
    # The room-level limit of QueryRoomMembers backs this call off; it does not pause every other sender.
    assert pacer.cool_downs == []
    sandbox.inject(Fault("code", code=660300005, action="QueryRoomMembers"))  # the app-level limit does
    await client_for(sandbox, http, pacer=pacer).query_members("demo-12", ["u000001"])
    assert pacer.cool_downs == [1.0]


async def test_transient_failures_are_retried_then_reported_with_the_request_id(sandbox, make_client: ClientFactory):
    sandbox.inject(Fault("code", code=1, count=2, action="QueryRoomMembers"))
    assert (await make_client().query_members("demo-12", ["u000001"])).is_in("u000001")
    sandbox.inject(Fault("code", code=1, count=100, action="QueryRoomMembers"))
    with pytest.raises(ZimUnavailable) as raised:
        await make_client().query_members("demo-12", ["u000001"])
    assert raised.value.attempts == FAST_RETRY.max_attempts
    assert raised.value.request_id


async def test_faults_for_one_action_leave_the_other_alone(sandbox, make_client: ClientFactory):
    sandbox.inject(Fault("code", code=660300007, action="QueryRoomMembers", count=5))
    roster = await fetch_roster(make_client(), "demo-12")
    assert len(roster.users) == 12
    with pytest.raises(RoomUnavailable):
        await make_client().query_members("demo-12", ["u000001"])


async def test_priority_picks_the_pacer_queue(sandbox, http):
    pacer = RecordingPacer()
    client = client_for(sandbox, http, pacer=pacer)
    await client.query_members("demo-12", ["u000001"])
    await client.query_members("demo-12", ["u000001"], priority="background")
    await client.query_page("demo-12", mode=0, cursor="0", priority="background")
    await client.query_page("demo-12", mode=0, cursor="0")
    assert pacer.turns == ["interactive", "background", "background", "interactive"]


async def test_five_per_second_per_room_then_660300006(clocked, http):
    sandbox, clock = clocked
    client = client_for(sandbox, http, retry=NO_RETRY)
    for _ in range(5):
        assert (await client.query_members("demo-12", ["u000001"])).is_in("u000001")
    with pytest.raises(ZimUnavailable) as raised:
        await client.query_members("demo-12", ["u000001"])
    assert raised.value.code == 660300006
    # Per room: another room has its own window, and QueryRoomUserList is not held by this one.
    assert (await client.query_members("demo-120", ["u000001"])).is_in("u000001")
    assert len((await fetch_roster(client, "demo-12")).users) == 12
    clock.now += 0.999  # the refused arrival still counts: the window is still full
    with pytest.raises(ZimUnavailable):
        await client.query_members("demo-12", ["u000001"])
    clock.now += 1.0
    assert (await client.query_members("demo-12", ["u000001"])).is_in("u000001")
    assert sandbox.stats.by_code[660300006] == 2


# ----- the sandbox, signed by hand ----------------------------------------------------------------------


async def raw(sandbox: ZimSandbox, http: httpx.AsyncClient, query: str) -> dict[str, Any]:
    response = await http.get(f"{sandbox.base_url}/?{query}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["RequestId"].isdigit()
    return body


def signed(room_id: str | None, user_ids: list[str], *, secret: str = SANDBOX_SERVER_SECRET, **extra: str) -> str:
    common = common_params("QueryRoomMembers", SANDBOX_APP_ID, secret)
    query = members_query(common, room_id, tuple(user_ids)) if room_id is not None else members_query(common, "x", ())
    if room_id is None:
        query = query.replace("&RoomId=x", "")
    return query + "".join(f"&{key}={value}" for key, value in extra.items())


async def test_sandbox_answers_in_the_documented_shape(sandbox, http):
    body = await raw(sandbox, http, signed("demo-12", ["u000001", "nobody"]))
    assert body["Code"] != 0
    assert body["UserList"] == [
        {"user_id": "u000001", "user_name": sandbox.rooms["demo-12"].users[0][1], "avatar": None, "extra": None}
    ]
    assert body["ErrorList"] == [{"UserId": "nobody", "SubCode": 660200001}]
    everyone = await raw(sandbox, http, signed("demo-12", ["u000001", "u000002"]))
    assert (everyone["Code"], everyone["ErrorList"]) == (0, [])
    assert [u["user_id"] for u in everyone["UserList"]] == ["u000001", "u000002"]


@pytest.mark.parametrize(
    ("room_id", "user_ids", "extra", "code"),
    [
        ("demo-12", [f"u{i}" for i in range(11)], {}, 660000011),
        ("demo-12", [], {}, 660000002),
        ("demo-12", ["u1", "u1"], {}, 660000002),
        ("demo-12", [""], {}, 660000002),
        ("demo-12", ["x" * 33], {}, 660000012),
        ("demo-12", [], {"UserId": "u000001"}, 660000002),  # only the documented array form
        (None, ["u000001"], {}, 660000002),
        ("has%20space", [], {"UserId%5B%5D": "u1"}, 660000002),
        ("demo-12", ["u1"], {"RoomId": "demo-1"}, 660000002),  # a repeated scalar
        ("no-such-room", ["u1"], {}, 660300001),
        ("demo-empty", ["u1"], {}, 660300008),
        ("demo-broken", ["u1"], {}, 660300007),
    ],
)
async def test_sandbox_parameter_and_room_errors(sandbox, http, room_id, user_ids, extra, code):
    if room_id == "has%20space":
        query = signed("demo-12", [], **extra).replace("RoomId=demo-12", "RoomId=has%20space")
    else:
        query = signed(room_id, user_ids, **extra)
    body = await raw(sandbox, http, query)
    assert body["Code"] == code
    assert body.get("ErrorList", []) == []


async def test_sandbox_checks_the_signature_and_knows_the_action(sandbox, http):
    body = await raw(sandbox, http, signed("demo-12", ["u000001"], secret="0" * 32))
    assert body["Code"] == 100000005
    body = await raw(sandbox, http, signed("demo-12", ["u000001"]).replace("QueryRoomMembers", "QueryRoomMember"))
    assert body["Code"] == 100000007


async def test_sandbox_members_calls_count_toward_the_apps_window_too(clocked, http):
    sandbox, _clock = clocked
    # 4 rooms × 5 = 20 arrivals in one instant: each room's own window is full, not over...
    for room_id in ("demo-1", "demo-12", "demo-120", "demo-499"):
        for _ in range(5):
            assert (await raw(sandbox, http, signed(room_id, ["u000001"])))["Code"] == 0
    # ...but the app's 20/s is, for every action (the harsher reading of an unstated rule).
    assert (await raw(sandbox, http, signed("demo-500", ["u000001"])))["Code"] == 660300006
    assert sandbox.stats.max_in_window() == 21
    assert sandbox.stats.members_requests == 21


def test_per_room_windows_forget_idle_rooms():
    windows = RoomWindows()
    for i in range(RoomWindows.PRUNE_EVERY - 1):
        assert windows.arrive(f"room-{i}", 0.0) == 1
    assert windows.arrive("room-0", 0.5) == 2
    # The next new room, a second later, prunes every window with nothing left in it.
    assert windows.arrive("late", 1.2) == 1
    assert len(windows) == 2  # "room-0" (arrival at 0.5) and "late"
    assert windows.arrive("room-0", 1.2) == 2
