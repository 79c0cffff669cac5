"""The ZIM sandbox over real loopback HTTP: every check and code, paging, the QPS window, faults, control API."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from multidict import MultiDict

from bot.dev.zim_sandbox import (
    SANDBOX_APP_ID,
    SANDBOX_SERVER_SECRET,
    Fault,
    SandboxRoom,
    ZimSandbox,
    generated_users,
    hostile_users,
    run_sandbox,
    seed_rooms,
)
from bot.dev.zim_sandbox.cursor import CursorCodec
from bot.dev.zim_sandbox.rooms import HOSTILE_NAMES, LONG_NAME
from bot.zim.signing import common_params, encode_query

ACTION = "QueryRoomUserList"
NOW = 1_750_000_000.0
# Built once: httpx loads the CA bundle for every client otherwise, which would dominate this suite's time.
# (Every request here is plain HTTP to loopback; the context is never used for a handshake.)
TLS = ssl.create_default_context()


class FakeClock:
    """A clock the test moves by hand, for the Timestamp window and the QPS window."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Api:
    """Signs and sends QueryRoomUserList requests the way the real client does."""

    def __init__(self, client: httpx.AsyncClient, sandbox: ZimSandbox, clock: Callable[[], float] = time.time):
        self.client = client
        self.sandbox = sandbox
        self.clock = clock

    def params(
        self,
        *,
        app_id: int = SANDBOX_APP_ID,
        secret: str = SANDBOX_SERVER_SECRET,
        clock: Callable[[], float] | None = None,
        nonce: str | None = None,
        **business: str,
    ) -> dict[str, str]:
        kwargs: dict[str, Any] = {"clock": clock or self.clock}
        if nonce is not None:
            kwargs["nonce_factory"] = lambda: nonce
        params = common_params(ACTION, app_id, secret, **kwargs)
        params.update(business)
        return params

    def url(self, params: dict[str, str]) -> str:
        return f"{self.sandbox.base_url}/?{encode_query(params)}"

    async def get(self, params: dict[str, str]) -> httpx.Response:
        return await self.client.get(self.url(params))

    async def call(self, **kwargs: Any) -> dict[str, Any]:
        response = await self.get(self.params(**kwargs))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        body: dict[str, Any] = response.json()
        assert re.fullmatch(r"[0-9]+", body["RequestId"])
        return body

    async def page_through(self, room_id: str, *, mode: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        pages: list[dict[str, Any]] = []
        flag = ""
        for _ in range(100):
            page = await self.call(RoomId=room_id, Mode=str(mode), Limit=str(limit), NextFlag=flag)
            assert page["Code"] == 0, page
            pages.append(page)
            flag = page["NextFlag"]
            if flag == "":
                return pages
        raise AssertionError("the cursor never ended")


def user_ids(pages: list[dict[str, Any]]) -> list[str]:
    return [user["UserId"] for page in pages for user in page["UserList"]]


StartSandbox = Callable[..., Awaitable[ZimSandbox]]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0, verify=TLS) as http:
        yield http


@pytest.fixture
async def start_sandbox() -> AsyncIterator[StartSandbox]:
    started: list[ZimSandbox] = []

    async def start(**kwargs: Any) -> ZimSandbox:
        sandbox = ZimSandbox(**kwargs)
        await sandbox.start()
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        await sandbox.stop()


@pytest.fixture
async def sandbox(start_sandbox: StartSandbox) -> ZimSandbox:
    # Most tests are not about rate limiting; a high qps keeps them from tripping it.
    return await start_sandbox(qps=100_000)


@pytest.fixture
def api(client: httpx.AsyncClient, sandbox: ZimSandbox) -> Api:
    return Api(client, sandbox)


# ----- common parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "code"),
    [
        ("Action", None, 100000006),
        ("Action", "", 100000006),
        ("Action", "QueryUserOnlineState", 100000007),  # not served (QueryRoomMembers is)
        ("AppId", None, 100000001),
        ("AppId", "abc", 100000001),
        ("AppId", "-1", 100000001),
        ("AppId", "4294967296", 100000001),
        ("AppId", "١٢٣", 100000001),  # Arabic-Indic digits: int() accepts them, ZIM must not
        ("SignatureNonce", None, 100000008),
        ("Timestamp", None, 100000002),
        ("Timestamp", "", 100000002),
        ("Timestamp", "1750000000.5", 100000003),
        ("Timestamp", "soon", 100000003),
        ("SignatureVersion", None, 100000013),
        ("SignatureVersion", "1.0", 100000014),
        ("Signature", None, 100000009),
        ("Signature", "0" * 32, 100000005),
        ("Signature", "é" * 32, 100000005),
    ],
)
async def test_common_parameter_checks(api: Api, key: str, value: str | None, code: int) -> None:
    params = api.params(RoomId="demo-12")
    if value is None:
        del params[key]
    else:
        params[key] = value
    body = (await api.get(params)).json()
    assert body["Code"] == code
    assert body["Message"]
    assert re.fullmatch(r"[0-9]+", body["RequestId"])


async def test_signature_is_case_sensitive_lowercase_hex(api: Api) -> None:
    params = api.params(RoomId="demo-12")
    params["Signature"] = params["Signature"].upper()
    assert (await api.get(params)).json()["Code"] == 100000005


async def test_wrong_secret_and_unknown_app_id(api: Api) -> None:
    assert (await api.call(RoomId="demo-12", secret="f" * 32))["Code"] == 100000005
    assert (await api.call(RoomId="demo-12", app_id=42))["Code"] == 100000010


async def test_common_checks_run_in_documented_order(api: Api) -> None:
    """Fix one problem at a time: each step reveals the next check's code."""
    good = api.params(RoomId="demo-12")
    expected = [
        ("Action", 100000001),
        ("AppId", 100000008),
        ("SignatureNonce", 100000002),
        ("Timestamp", 100000013),
        ("SignatureVersion", 100000009),
        ("Signature", 0),
    ]
    assert (await api.get({"RoomId": "demo-12"})).json()["Code"] == 100000006
    params = {"RoomId": "demo-12"}
    for key, code in expected:
        params[key] = good[key]
        assert (await api.get(params)).json()["Code"] == code, key


@pytest.mark.parametrize(("skew", "code"), [(-601, 100000004), (601, 100000004), (-600, 0), (599, 0)])
async def test_timestamp_window(client: httpx.AsyncClient, start_sandbox: StartSandbox, skew: int, code: int) -> None:
    sandbox = await start_sandbox(clock=FakeClock(NOW))
    api = Api(client, sandbox, clock=lambda: NOW + skew)
    assert (await api.call(RoomId="demo-12"))["Code"] == code


async def test_signature_checked_before_business_parameters(api: Api) -> None:
    assert (await api.call(RoomId="bad room", secret="0" * 32))["Code"] == 100000005


async def test_reused_nonce_is_recorded_not_refused(api: Api) -> None:
    for _ in range(3):
        assert (await api.call(RoomId="demo-1", nonce="0123456789abcdef"))["Code"] == 0
    assert api.sandbox.stats.duplicate_nonces == 2
    assert api.sandbox.stats.nonces_seen == 1


async def test_request_ids_are_unique_numeric_strings(api: Api) -> None:
    ids = [(await api.call(RoomId=room))["RequestId"] for room in ("demo-1", "nope", "demo-1", "demo-broken")]
    assert len(set(ids)) == 4


# ----- business parameters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "business",
    [
        {},
        {"RoomId": ""},
        {"RoomId": "has space"},
        {"RoomId": "x" * 33},
        {"RoomId": "héllo"},
        {"RoomId[]": "demo-12"},
        {"RoomId": "demo-12", "RoomId[]": "demo-12"},
        {"RoomId": "demo-12", "Mode": "2"},
        {"RoomId": "demo-12", "Mode": "-1"},
        {"RoomId": "demo-12", "Mode": "reverse"},
        {"RoomId": "demo-12", "Limit": "0"},
        {"RoomId": "demo-12", "Limit": "-5"},
        {"RoomId": "demo-12", "Limit": "1.5"},
        {"RoomId": "demo-12", "Limit": "ten"},
        {"RoomId": "demo-12", "NextFlag": "1"},  # the docs' page-index example is not a cursor here
        {"RoomId": "demo-12", "NextFlag": "not-a-cursor"},
        {"RoomId": "demo-12", "NextFlag": "%%%"},
    ],
)
async def test_invalid_business_parameters(api: Api, business: dict[str, str]) -> None:
    body = await api.call(**business)
    assert body["Code"] == 660000002, body


async def test_repeated_room_id_is_invalid(api: Api) -> None:
    url = api.url(api.params(RoomId="demo-12")) + "&RoomId=demo-1"
    assert (await api.client.get(url)).json()["Code"] == 660000002


@pytest.mark.parametrize(("limit", "size"), [("", 500), ("501", 500), ("9" * 40, 500), ("1", 1), ("007", 7)])
async def test_limit_defaults_and_caps(api: Api, limit: str, size: int) -> None:
    body = await api.call(RoomId="demo-501", Limit=limit)
    assert body["Code"] == 0
    assert len(body["UserList"]) == size


@pytest.mark.parametrize("first_flag", ["", "0", None])
async def test_first_page_flags(api: Api, first_flag: str | None) -> None:
    business = {"RoomId": "demo-12"} if first_flag is None else {"RoomId": "demo-12", "NextFlag": first_flag}
    body = await api.call(**business)
    assert body["Code"] == 0
    assert body["UserList"][0]["UserId"] == "u000001"


async def test_mode_defaults_to_join_order(api: Api) -> None:
    assert (await api.call(RoomId="demo-12", Mode=""))["UserList"][0]["UserId"] == "u000001"


async def test_cursors_are_bound_to_room_and_mode_and_tamper_evident(api: Api) -> None:
    first = await api.call(RoomId="demo-1234", Limit="100")
    cursor = first["NextFlag"]
    assert (await api.call(RoomId="demo-1234", Limit="100", NextFlag=cursor))["Code"] == 0
    assert (await api.call(RoomId="demo-10k", Limit="100", NextFlag=cursor))["Code"] == 660000002
    assert (await api.call(RoomId="demo-1234", Mode="1", NextFlag=cursor))["Code"] == 660000002
    middle = len(cursor) // 2
    tampered = cursor[:middle] + ("A" if cursor[middle] != "A" else "B") + cursor[middle + 1 :]
    assert (await api.call(RoomId="demo-1234", NextFlag=tampered))["Code"] == 660000002
    forged = CursorCodec().encode("demo-1234", 0, 100)  # right shape, another sandbox's key
    assert (await api.call(RoomId="demo-1234", NextFlag=forged))["Code"] == 660000002


# ----- rooms -------------------------------------------------------------------------------------------


async def test_room_states(api: Api) -> None:
    missing = await api.call(RoomId="no-such-room")
    assert (missing["Code"], missing["Message"]) == (660300001, "room not exist")
    assert (await api.call(RoomId="demo-broken"))["Code"] == 660300007
    empty = await api.call(RoomId="demo-empty")
    assert (empty["Code"], empty["Count"]) == (660300008, 0)
    api.sandbox.add_room("nobody-here", 0)
    assert (await api.call(RoomId="nobody-here"))["Code"] == 660300008


@pytest.mark.parametrize("mode", [0, 1])
async def test_paging_demo_1234_in_both_modes(api: Api, mode: int) -> None:
    pages = await api.page_through("demo-1234", mode=mode)
    assert [len(page["UserList"]) for page in pages] == [500, 500, 234]
    assert all(page["Count"] == 1234 for page in pages)
    assert all(page["NextFlag"] for page in pages[:-1])
    ids = user_ids(pages)
    assert len(set(ids)) == 1234
    join_order = [uid for uid, _ in api.sandbox.rooms["demo-1234"].users]
    assert ids == (join_order if mode == 0 else join_order[::-1])


@pytest.mark.parametrize(("room_id", "sizes"), [("demo-499", [499]), ("demo-500", [500]), ("demo-501", [500, 1])])
async def test_page_boundaries(api: Api, room_id: str, sizes: list[int]) -> None:
    pages = await api.page_through(room_id)
    assert [len(page["UserList"]) for page in pages] == sizes


async def test_done_flag_can_be_zero(api: Api) -> None:
    api.sandbox.done_flag = "0"
    last = await api.call(RoomId="demo-501", NextFlag=(await api.call(RoomId="demo-501"))["NextFlag"])
    assert last["NextFlag"] == "0"
    assert len(last["UserList"]) == 1


async def test_churn_between_pages_shifts_offsets(api: Api) -> None:
    room = api.sandbox.rooms["demo-120"]
    before = [uid for uid, _ in room.users]
    first = await api.call(RoomId="demo-120", Limit="50")
    assert room.leave(before[0])
    assert room.join("late-joiner", "Late Joiner")
    second = await api.call(RoomId="demo-120", Limit="50", NextFlag=first["NextFlag"])
    # An offset cursor skips the user who slid into the first page's range, like a real offset server.
    assert second["UserList"][0]["UserId"] == before[51]
    assert second["Count"] == 120
    rest = await api.call(RoomId="demo-120", Limit="50", NextFlag=second["NextFlag"])
    assert rest["UserList"][-1]["UserId"] == "late-joiner"


async def test_special_character_room_is_reachable_percent_encoded(api: Api) -> None:
    pages = await api.page_through("room#1+a&b")
    assert pages[0]["Count"] == 30
    assert api.sandbox.stats.per_room["room#1+a&b"] == 1
    # An unencoded '+' decodes as a space, which no room ID may contain.
    raw = api.url(api.params(RoomId="placeholder")).replace("placeholder", "room%231+a%26b")
    assert (await api.client.get(raw)).json()["Code"] == 660000002


async def test_hostile_names_round_trip_exactly(api: Api) -> None:
    pages = await api.page_through("demo-hostile", limit=7)
    got = [(user["UserId"], user["UserName"]) for page in pages for user in page["UserList"]]
    assert got == hostile_users()
    names = {name for _, name in got}
    assert {"<!channel>", "👩🏽‍💻 Dev", "مريم", "", LONG_NAME} <= names
    assert len(LONG_NAME) == 64
    assert len(got) >= len(HOSTILE_NAMES)


async def test_load_rooms_exist_on_demand(api: Api) -> None:
    body = await api.call(RoomId="load-50000")
    assert (body["Code"], body["Count"], len(body["UserList"])) == (0, 50000, 500)
    assert "load-50000" in api.sandbox.rooms  # kept, so later pages see the same room
    assert (await api.call(RoomId="load-1000001"))["Code"] == 660300001
    assert (await api.call(RoomId="load-0"))["Code"] == 660300008


def test_seed_rooms_and_generated_users() -> None:
    rooms = seed_rooms()
    sizes = {room_id: len(room) for room_id, room in rooms.items()}
    assert sizes["demo-1"] == 1
    assert sizes["demo-10k"] == 10_000
    assert sizes["demo-empty"] == 0
    assert rooms["demo-empty"].state == "destroying"
    assert rooms["demo-broken"].state == "unavailable"
    assert generated_users(300, seed=3) == generated_users(300, seed=3)
    users = generated_users(5000, seed=1)
    assert len({uid for uid, _ in users}) == 5000
    assert any(not name.isascii() for _, name in users)


def test_room_join_and_leave() -> None:
    room = SandboxRoom("r", [("a", "A")])
    assert room.join("b", "B")
    assert not room.join("b", "B again")
    assert room.leave("a")
    assert not room.leave("a")
    assert room.users == [("b", "B")]
    assert room.encoded(reverse=False) == [b'{"UserId":"b","UserName":"B"}']


# ----- QPS window --------------------------------------------------------------------------------------


async def test_21st_request_within_a_second_is_rate_limited(
    client: httpx.AsyncClient, start_sandbox: StartSandbox
) -> None:
    monotonic = FakeClock(100.0)
    sandbox = await start_sandbox(qps=20, monotonic=monotonic)
    api = Api(client, sandbox)
    codes = []
    for _ in range(21):
        codes.append((await api.call(RoomId="demo-1"))["Code"])
        monotonic.now += 0.01
    assert codes == [0] * 20 + [660300006]
    limited = await api.call(RoomId="demo-1")
    assert (limited["Code"], limited["Message"]) == (660300006, "QPS limit exceeded (20/s)")
    monotonic.now += 1.0  # every earlier arrival has left the window
    assert (await api.call(RoomId="demo-1"))["Code"] == 0
    assert sandbox.stats.rate_limited == 2
    assert sandbox.stats.max_in_window() == 22


async def test_qps_limit_with_the_real_clock(client: httpx.AsyncClient, start_sandbox: StartSandbox) -> None:
    api = Api(client, await start_sandbox(qps=20))
    codes = [(await api.call(RoomId="demo-1"))["Code"] for _ in range(21)]
    assert codes[-1] == 660300006
    assert codes.count(660300006) == 1


async def test_only_signed_requests_count_as_arrivals(client: httpx.AsyncClient, start_sandbox: StartSandbox) -> None:
    sandbox = await start_sandbox(qps=2, monotonic=FakeClock(5.0))
    api = Api(client, sandbox)
    for _ in range(5):
        assert (await api.call(RoomId="demo-1", secret="0" * 32))["Code"] == 100000005
    sandbox.inject(Fault("code", code=1))
    assert (await api.call(RoomId="demo-1"))["Code"] == 1  # faulted, yet an arrival
    assert (await api.call(RoomId="demo-1"))["Code"] == 0
    assert (await api.call(RoomId="demo-1"))["Code"] == 660300006
    assert len(sandbox.stats.arrivals) == 3


# ----- faults ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [660300006, 660300005, 1, 7, 660300007, 100000005])
async def test_code_fault(api: Api, code: int) -> None:
    api.sandbox.inject(Fault("code", code=code, count=2))
    assert [(await api.call(RoomId="demo-1"))["Code"] for _ in range(3)] == [code, code, 0]
    assert api.sandbox.stats.by_code[code] == 2


async def test_code_fault_message_and_rate_limited_stat(api: Api) -> None:
    api.sandbox.inject(Fault("code", code=660300006))
    body = await api.call(RoomId="demo-1")
    assert body["Message"] == "QPS limit exceeded (20/s)"
    assert api.sandbox.stats.rate_limited == 1


async def test_http_status_fault(api: Api) -> None:
    api.sandbox.inject(Fault("http_status"))
    api.sandbox.inject(Fault("http_status", status=502, body='{"Code":1,"Message":"bad gateway"}'))
    first = await api.get(api.params(RoomId="demo-1"))
    assert first.status_code == 503
    assert not first.text.startswith("{")
    second = await api.get(api.params(RoomId="demo-1"))
    assert second.status_code == 502
    assert second.json()["Code"] == 1
    assert second.headers["content-type"].startswith("application/json")
    assert api.sandbox.stats.by_code["http_503"] == 1
    assert api.sandbox.stats.by_code["http_502"] == 1


async def test_drop_fault_closes_without_a_response(api: Api) -> None:
    api.sandbox.inject(Fault("drop"))
    with pytest.raises(httpx.RemoteProtocolError):
        await api.get(api.params(RoomId="demo-1"))
    assert (await api.call(RoomId="demo-1"))["Code"] == 0
    assert api.sandbox.stats.by_code["drop"] == 1


async def test_garbage_fault(api: Api) -> None:
    api.sandbox.inject(Fault("garbage"))
    response = await api.get(api.params(RoomId="demo-1"))
    assert (response.status_code, response.text) == (200, "<html>upstream error</html>")
    assert api.sandbox.stats.by_code["garbage"] == 1


async def test_delay_fault_times_out_the_client_and_stop_does_not_wait(
    client: httpx.AsyncClient, start_sandbox: StartSandbox
) -> None:
    sandbox = await start_sandbox()
    api = Api(client, sandbox)
    sandbox.inject(Fault("delay", seconds=0.15))
    started = time.monotonic()
    assert (await api.call(RoomId="demo-1"))["Code"] == 0
    assert time.monotonic() - started >= 0.15
    sandbox.inject(Fault("delay", seconds=30))
    with pytest.raises(httpx.ReadTimeout):
        await client.get(api.url(api.params(RoomId="demo-1")), timeout=0.1)
    started = time.monotonic()
    await sandbox.stop()
    assert time.monotonic() - started < 1.0


async def test_repeat_cursor_fault(api: Api) -> None:
    api.sandbox.inject(Fault("repeat_cursor"))
    first = await api.call(RoomId="demo-1234")  # a first page has no cursor to repeat: not spent here
    second = await api.call(RoomId="demo-1234", NextFlag=first["NextFlag"])
    assert second["NextFlag"] == first["NextFlag"]
    assert second["UserList"][0]["UserId"] != first["UserList"][0]["UserId"]
    assert api.sandbox.faults.faults == []


async def test_endless_cursor_fault(api: Api) -> None:
    api.sandbox.inject(Fault("endless_cursor", count=3))
    flags, sizes = [], []
    flag = ""
    for _ in range(4):
        page = await api.call(RoomId="demo-12", NextFlag=flag)
        flag = page["NextFlag"]
        flags.append(flag)
        sizes.append(len(page["UserList"]))
    assert sizes == [12, 0, 0, 0]
    assert all(flags[:3])
    assert len(set(flags[:3])) == 3
    assert flags[3] == ""  # the fault is spent, so the list finally ends


async def test_count_drift_fault(api: Api) -> None:
    api.sandbox.inject(Fault("count_drift", delta=7))
    first = await api.call(RoomId="demo-1234")
    second = await api.call(RoomId="demo-1234", NextFlag=first["NextFlag"])
    assert (first["Count"], second["Count"]) == (1241, 1234)


async def test_short_page_fault_continues_after_the_last_user(api: Api) -> None:
    api.sandbox.inject(Fault("short_page", size=100, count=2))
    pages = await api.page_through("demo-1234")
    assert [len(page["UserList"]) for page in pages] == [100, 100, 500, 500, 34]
    assert user_ids(pages) == [uid for uid, _ in api.sandbox.rooms["demo-1234"].users]


async def test_fault_filters(api: Api) -> None:
    api.sandbox.inject(Fault("code", code=1, room_id="demo-12", mode=1))
    assert (await api.call(RoomId="demo-1", Mode="1"))["Code"] == 0
    assert (await api.call(RoomId="demo-12", Mode="0"))["Code"] == 0
    assert (await api.call(RoomId="demo-12", Mode="1"))["Code"] == 1
    assert api.sandbox.stats.faults_applied == {"code": 1}


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="kind"):
        Fault("nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="count"):
        Fault("drop", count=0)
    with pytest.raises(ValueError, match="unknown"):
        Fault.from_json({"kind": "drop", "colour": "red"})
    with pytest.raises(ValueError, match="type"):
        Fault.from_json({"kind": "delay", "seconds": "1"})
    assert Fault.from_json({"kind": "delay", "seconds": 2, "mode": 1}) == Fault("delay", seconds=2, mode=1)


# ----- stats and control API ---------------------------------------------------------------------------


async def test_stats(api: Api) -> None:
    await api.call(RoomId="demo-1")
    await api.call(RoomId="nope")
    await api.call(RoomId="demo-1", secret="0" * 32)
    stats = (await api.client.get(f"{api.sandbox.base_url}/_sandbox/stats?arrivals=1")).json()
    assert stats["requests"] == 3
    assert stats["by_code"] == {"0": 1, "660300001": 1, "100000005": 1}
    assert stats["per_room"] == {"demo-1": 2, "nope": 1}
    assert stats["arrival_count"] == 2
    assert len(stats["arrivals"]) == 2
    assert stats["max_in_window_1s"] == 2
    reset = (await api.client.post(f"{api.sandbox.base_url}/_sandbox/reset")).json()
    assert reset["requests"] == 0
    assert api.sandbox.stats.by_code == {}


async def test_control_api_faults(api: Api) -> None:
    base = f"{api.sandbox.base_url}/_sandbox"
    one = await api.client.post(f"{base}/faults", json={"kind": "code", "code": 660300006, "count": 3})
    assert one.status_code == 200
    many = await api.client.post(f"{base}/faults", json=[{"kind": "drop"}, {"kind": "garbage", "room_id": "x"}])
    assert [f["kind"] for f in many.json()["faults"]] == ["code", "drop", "garbage"]
    assert (await api.call(RoomId="demo-1"))["Code"] == 660300006
    assert (await api.client.get(f"{base}/faults")).json()["faults"][0]["count"] == 2
    cleared = await api.client.delete(f"{base}/faults")
    assert cleared.json() == {"faults": []}
    assert (await api.call(RoomId="demo-1"))["Code"] == 0
    for bad in ({"kind": "nope"}, {"kind": "drop", "extra": 1}, [{"kind": "drop"}, {"kind": "?"}], "text"):
        response = await api.client.post(f"{base}/faults", json=bad)
        assert response.status_code == 400
        assert response.json()["error"]
    assert (await api.client.post(f"{base}/faults", content=b"{not json")).status_code == 400
    assert api.sandbox.faults.faults == []  # a bad batch adds nothing


async def test_control_api_latency(api: Api) -> None:
    base = f"{api.sandbox.base_url}/_sandbox"
    response = await api.client.post(f"{base}/latency", json={"latency_ms": 60})
    assert response.json() == {"latency_ms": 60.0, "jitter_ms": 0.0}
    started = time.monotonic()
    await api.call(RoomId="demo-1")
    assert time.monotonic() - started >= 0.06
    for bad in ({"latency_ms": -1}, {"latency_ms": "1"}, {"jitter_ms": True}, {"lag": 1}, [1]):
        assert (await api.client.post(f"{base}/latency", json=bad)).status_code == 400
    await api.client.post(f"{base}/latency", json={"latency_ms": 0, "jitter_ms": 5})
    assert (api.sandbox.faults.latency_ms, api.sandbox.faults.jitter_ms) == (0.0, 5.0)


async def test_control_api_rooms_and_health(api: Api) -> None:
    base = api.sandbox.base_url
    assert (await api.client.get(f"{base}/healthz")).status_code == 200
    made = await api.client.post(f"{base}/_sandbox/rooms", json={"room_id": "bench-1", "users": 1234})
    assert made.json() == {"room_id": "bench-1", "count": 1234, "state": "ok"}
    pairs = [["a1", "Ann"], ["b2", "<!here> Bob"]]
    await api.client.post(f"{base}/_sandbox/rooms", json={"room_id": "tiny", "users": pairs})
    tiny = await api.call(RoomId="tiny")
    assert tiny["UserList"] == [{"UserId": "a1", "UserName": "Ann"}, {"UserId": "b2", "UserName": "<!here> Bob"}]
    await api.client.post(f"{base}/_sandbox/rooms", json={"room_id": "gone", "users": 3, "state": "destroying"})
    assert (await api.call(RoomId="gone"))["Code"] == 660300008
    listed = (await api.client.get(f"{base}/_sandbox/rooms")).json()["rooms"]
    assert {"room_id": "bench-1", "count": 1234, "state": "ok"} in listed
    for bad in ({"room_id": "has space", "users": 1}, {"room_id": "x", "users": "many"}, {"users": 1}):
        assert (await api.client.post(f"{base}/_sandbox/rooms", json=bad)).status_code == 400
    assert (await api.client.post(f"{base}/_sandbox/rooms", json={"room_id": "x", "state": "odd"})).status_code == 400


@pytest.mark.parametrize(
    ("users", "field"),
    [([["u1", "a\ud800"]], "users[0].user_name"), ([["ok", "x"], ["\udfff", "b"]], "users[1].user_id")],
)
async def test_a_room_with_a_lone_surrogate_is_refused(api: Api, users: list[list[str]], field: str) -> None:
    base = api.sandbox.base_url
    body = json.dumps({"room_id": "sur", "users": users})  # json.dumps writes the lone surrogate as \\ud800
    answer = await api.client.post(f"{base}/_sandbox/rooms", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert field in answer.json()["error"]
    assert "lone surrogate" in answer.json()["error"]
    listed = (await api.client.get(f"{base}/_sandbox/rooms")).json()["rooms"]
    assert "sur" not in [room["room_id"] for room in listed]
    with pytest.raises(ValueError, match="lone surrogate"):
        api.sandbox.add_room("sur", [(user_id, name) for user_id, name in users])


# ----- speed, lifecycle, CLI ---------------------------------------------------------------------------


def test_later_pages_of_a_100k_room_are_slices_of_one_build() -> None:
    sandbox = ZimSandbox(qps=10**9)
    first = json.loads(sandbox.list_users(MultiDict({"RoomId": "load-100000", "Mode": "1"})).body)
    assert first["Count"] == 100_000
    query = MultiDict({"RoomId": "load-100000", "Mode": "1", "Limit": "500", "NextFlag": first["NextFlag"]})
    page = json.loads(sandbox.list_users(query).body)["UserList"]
    expected = sandbox.rooms["load-100000"].users[::-1][500:1000]
    assert [(user["UserId"], user["UserName"]) for user in page] == expected


def test_generated_users_are_deterministic_per_seed() -> None:
    assert generated_users(100_000, seed=7) == generated_users(100_000, seed=7)
    assert generated_users(300, seed=3) != generated_users(300, seed=4)


async def test_start_stop_and_context_manager(client: httpx.AsyncClient) -> None:
    async with ZimSandbox() as sandbox:
        assert re.fullmatch(r"http://127\.0\.0\.1:[0-9]+", sandbox.base_url)
        assert (await client.get(f"{sandbox.base_url}/healthz")).text == "ok"
        with pytest.raises(RuntimeError):
            await sandbox.start()
    with pytest.raises(RuntimeError):
        _ = sandbox.base_url
    await sandbox.stop()  # idempotent


async def _banner(capsys: pytest.CaptureFixture[str]) -> list[str]:
    output = ""
    for _ in range(200):
        output += capsys.readouterr().out
        if "Demo rooms:" in output:
            return output.splitlines()
        await asyncio.sleep(0.01)
    raise AssertionError(f"no banner: {output!r}")


async def test_run_sandbox_prints_settings_and_stops_on_cancel(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    task = asyncio.create_task(run_sandbox("127.0.0.1", 0))
    lines = await _banner(capsys)
    base = lines[0].removeprefix("ZIM sandbox listening on ")
    assert re.fullmatch(r"http://127\.0\.0\.1:[0-9]+", base)
    assert lines[1].startswith("Paste these lines into a shell (or a .env file in the directory you run")
    assert lines[2:5] == [
        f"export ZEGO_API_BASE_URL={base}",
        f"export ZEGO_APP_ID={SANDBOX_APP_ID}",
        f"export ZEGO_SERVER_SECRET={SANDBOX_SERVER_SECRET}",
    ]
    assert lines[5].startswith("Demo rooms: demo-1, demo-12, ")
    assert (await client.get(f"{base}/healthz")).status_code == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(httpx.ConnectError):
        await client.get(f"{base}/healthz")


async def test_run_sandbox_stops_cleanly_on_sigterm(capsys: pytest.CaptureFixture[str]) -> None:
    task = asyncio.create_task(run_sandbox("127.0.0.1", 0))
    await _banner(capsys)
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        task.cancel()
        pytest.skip("no asyncio signal handler here (not the main thread)")
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(task, timeout=2.0)  # returns normally: SIGTERM is a clean shutdown
