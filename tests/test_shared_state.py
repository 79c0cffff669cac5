"""Shared state: one contract run against memory and a real Redis, then what only Redis does — several
replicas sharing a rate limit, leases, dedupe, snapshots — and Redis going away and coming back.

A real redis-server runs on loopback (tests/redis_server.py); nothing about Redis is mocked. TTLs are small
so the whole module stays within a few seconds.
"""

import asyncio
import contextlib
import itertools
import logging
import time
import zlib

import pytest

from bot.dev.zim_sandbox.rooms import HOSTILE_NAMES, generated_users
from bot.roster.model import RoomUser, Roster
from bot.state import SharedStateUnavailable, build_shared_state, redact_url
from bot.state.connection import connect
from bot.state.leases import RedisLeases
from bot.state.once import RedisEventDeduper
from bot.state.pacer import RedisPacer
from bot.state.snapshots import RedisSnapshotStore, decode_roster, encode_roster
from bot.zim.pacing import DEFAULT_HEADROOM
from tests.redis_server import RedisServer, free_port

FAST_QPS = 100.0  # fast enough that pacing never slows the other tests down


def make_roster(n=3, *, room_id="r1", fetched_at=None, names=None):
    names = names if names is not None else [f"User {i}" for i in range(n)]
    return Roster(
        room_id=room_id,
        users=tuple(RoomUser(f"u{i:06d}", name) for i, name in enumerate(names)),
        reported_count=len(names),
        fetched_at=time.time() if fetched_at is None else fetched_at,
        pages=1,
        request_ids=("req-1",),
    )


def shared_state_records(caplog, level):
    return [r for r in caplog.records if r.name.startswith("bot.state") and r.levelno == level]


@pytest.fixture(params=["memory", "redis"])
async def make_state(request):
    """The same contract tests run against both backends."""
    states = []

    async def make(**options):
        url = None
        if request.param == "redis":
            server = request.getfixturevalue("redis_server")
            server.flush()
            url = server.url
        state = await build_shared_state(url, **options)
        assert state.backend == request.param
        states.append(state)
        return state

    yield make
    for state in states:
        await state.aclose()


# --- the contract, on both backends ---------------------------------------------------------------------------


async def test_store_round_trip_discard_and_miss(make_state):
    state = await make_state()
    assert await state.store.get("zim:1:r1") is None
    original = make_roster(5)
    await state.store.put("zim:1:r1", original)
    assert await state.store.get("zim:1:r1") == original
    assert await state.store.get("zim:2:r1") is None  # apps are namespaced by key
    await state.store.discard("zim:1:r1")
    assert await state.store.get("zim:1:r1") is None
    await state.store.discard("zim:1:r1")  # discarding what is not there is fine


async def test_store_snapshots_expire(make_state):
    state = await make_state(snapshot_ttl=0.1)
    await state.store.put("k", make_roster())
    assert await state.store.get("k") is not None
    await asyncio.sleep(0.15)
    assert await state.store.get("k") is None


async def test_deduper_reports_each_event_once(make_state):
    state = await make_state()
    verdicts = await asyncio.gather(*(state.deduper.first_sighting("Ev1") for _ in range(20)))
    assert verdicts.count(True) == 1
    assert await state.deduper.first_sighting("Ev2") is True
    assert await state.deduper.first_sighting("Ev1") is False


async def test_deduper_seen_tells_without_sighting(make_state):
    state = await make_state()
    assert await state.deduper.seen("view:C1:1.2") is False
    assert await state.deduper.seen("view:C1:1.2") is False  # asking does not sight it
    assert await state.deduper.first_sighting("view:C1:1.2") is True
    assert await state.deduper.seen("view:C1:1.2") is True


async def test_flights_leader_gets_a_lease_and_waiters_get_only_fresh_snapshots(make_state):
    state = await make_state()
    lease = await state.leases.acquire("k")
    assert lease is not None
    await lease.release()
    stale, fresh = make_roster(fetched_at=100.0), make_roster(fetched_at=200.0)

    async def read_fresh():
        return fresh

    async def read_stale():
        return stale

    assert await state.leases.wait_for_leader("k", read=read_fresh, newer_than=150.0, timeout=1) == fresh
    # No leader and nothing fresh: the caller must fetch itself, at once rather than after the timeout.
    started = time.monotonic()
    assert await state.leases.wait_for_leader("k", read=read_stale, newer_than=150.0, timeout=5) is None
    assert time.monotonic() - started < 1


async def test_pacer_spaces_sends_and_cool_down_holds_them(make_state):
    qps = 40
    state = await make_state()
    pacer = state.pacer_for("zim:1", qps=qps)  # what the product uses: one pacer per ZEGO app
    loop = asyncio.get_running_loop()
    sends = []

    async def send():
        await pacer.wait_turn()
        sends.append(loop.time())

    await asyncio.gather(*(send() for _ in range(6)))
    min_gap = 1 / qps  # six sends are far from a full window: 1 / QPS apart
    # Wall-clock checks with slack for a busy CI machine's late wake-ups; exact spacing is tested with fake
    # time in test_pacing.py and on Redis's clock below.
    sends.sort()
    assert min(b - a for a, b in itertools.pairwise(sends)) >= min_gap * 0.5
    assert sends[-1] - sends[0] >= 5 * min_gap * 0.95
    await pacer.cool_down(0.15)
    started = loop.time()
    waited = await pacer.wait_turn()
    assert waited >= 0.12
    assert loop.time() - started >= 0.12


async def test_memory_backend_needs_no_redis():
    for url in (None, "", "  "):
        state = await build_shared_state(url)
        assert state.backend == "memory"
        assert await state.health() == {"redis": "not configured"}
        await state.aclose()


# --- several replicas on one Redis ----------------------------------------------------------------------------


async def test_two_replicas_reserve_one_schedule(clients):
    replicas = [RedisPacer(clients(), qps=20, key="t:schedule") for _ in range(2)]
    reserved = await asyncio.gather(*(replicas[i % 2].reserve() for i in range(60)))
    slots = sorted(slot for slot, _ in reserved)
    # On Redis's clock, whichever replica asked: 20 slots 1 / QPS apart, then each slot one window (20
    # intervals of 1 / (20 × DEFAULT_HEADROOM) s) after the slot 20 before it. Nothing is handed out twice, no gap is
    # short, and nothing is lost between the two replicas.
    window = 20 / (20 * DEFAULT_HEADROOM)
    expected = [(k // 20) * window + (k % 20) / 20 for k in range(60)]
    assert [slot - slots[0] for slot in slots] == pytest.approx(expected, abs=1e-5)


async def test_two_replicas_share_one_smooth_rate_limit(clients):
    pacers = [RedisPacer(clients(), qps=20, key="t:pacer") for _ in range(2)]
    loop = asyncio.get_running_loop()
    sends = []

    async def send(i):
        await pacers[i % 2].wait_turn()
        sends.append((loop.time(), i % 2))

    await asyncio.gather(*(send(i) for i in range(60)))
    times = sorted(t for t, _ in sends)
    interval = pacers[0].interval
    assert interval == pytest.approx(1 / (20 * DEFAULT_HEADROOM))
    # The spacing itself is exact on Redis's clock (previous test) and the give-up-a-late-slot rule is proven on
    # virtual time (test_pacing.py); wake-ups measured here are as late as a busy machine makes them, so this
    # only checks what no lateness can fake: the callers really slept through the schedule instead of bursting.
    assert times[-1] - times[0] >= 59 * interval * 0.9
    # First come, first served across replicas: both make progress from the start, neither waits its turn.
    assert {replica for _, replica in sorted(sends)[:20]} == {0, 1}


async def test_cool_down_holds_every_replica_and_the_schedule_is_never_evictable(clients):
    watcher = clients()
    first, second = (RedisPacer(clients(), qps=50, key="t:cool") for _ in range(2))
    await first.wait_turn()
    await first.cool_down(0.15)
    waited = await second.wait_turn()
    assert 0.12 <= waited <= 0.2
    # No TTL: a volatile-* maxmemory policy can't evict the schedule (tests/test_redis_memory.py).
    assert await watcher.pttl("t:cool") == -1


async def test_lease_renewal_keeps_a_long_fetch_exclusive(clients):
    ttl = 0.15
    leader = RedisLeases(clients(), lease_ttl=ttl)
    follower = RedisLeases(clients(), lease_ttl=ttl)
    lease = await leader.acquire("room")
    assert lease is not None
    loop = asyncio.get_running_loop()
    rivals = []
    deadline = loop.time() + 3 * ttl
    while loop.time() < deadline:
        rivals.append(await follower.acquire("room"))
        await asyncio.sleep(0.02)
    assert len(rivals) > 10
    assert all(rival is None for rival in rivals)
    await lease.release()
    taken = await follower.acquire("room")
    assert taken is not None
    await taken.release()


async def test_follower_takes_over_when_the_leader_crashes(clients):
    ttl = 0.2
    leader = RedisLeases(clients(), lease_ttl=ttl)
    follower = RedisLeases(clients(), lease_ttl=ttl, poll_interval=0.02)
    holding = asyncio.Event()

    async def leading():
        assert await leader.acquire("room") is not None
        holding.set()
        await asyncio.sleep(3600)  # never releases

    task = asyncio.create_task(leading())
    await holding.wait()
    assert await follower.acquire("room") is None
    task.cancel()  # the crash: no release, no more renewals
    with contextlib.suppress(asyncio.CancelledError):
        await task

    async def nothing_yet():
        return None

    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await follower.wait_for_leader("room", read=nothing_yet, newer_than=0.0, timeout=5) is None
    # The last renewal happened at most ttl/3 before the crash, so the lease outlives it by 2/3 ttl to ttl.
    assert ttl * 0.5 < loop.time() - started < ttl + 1.0
    lease = await follower.acquire("room")
    assert lease is not None
    await lease.release()


async def test_follower_receives_the_leaders_snapshot(clients):
    leader, follower = RedisLeases(clients()), RedisLeases(clients(), poll_interval=0.02)
    leader_store, follower_store = RedisSnapshotStore(clients()), RedisSnapshotStore(clients())
    await follower_store.put("room", make_roster(fetched_at=time.time() - 60))  # an old snapshot must not do
    started = time.time()
    lease = await leader.acquire("room")
    assert lease is not None

    async def lead():
        await asyncio.sleep(0.1)
        await leader_store.put("room", make_roster(7))
        await lease.release()

    leading = asyncio.create_task(lead())
    roster = await follower.wait_for_leader(
        "room", read=lambda: follower_store.get("room"), newer_than=started, timeout=5
    )
    await leading
    assert roster is not None
    assert len(roster.users) == 7
    assert roster.fetched_at > started


async def test_release_never_deletes_another_holders_lease(clients):
    watcher = clients()
    ttl = 0.1
    first, second = RedisLeases(clients(), lease_ttl=ttl), RedisLeases(clients(), lease_ttl=ttl)
    stalled = await first.acquire("room")
    assert stalled is not None
    stalled.abandon()  # the first replica stalls: no renewals, so its lease runs out
    await asyncio.sleep(ttl + 0.1)
    current = await second.acquire("room")
    assert current is not None
    await stalled.release()  # too late: must not free the second replica's lease
    assert await second.held("room")
    assert await first.acquire("room") is None
    await current.release()  # deletes only a lease whose token is its own: so the lease was still the second's
    assert not await second.held("room")
    assert await watcher.hlen(second.claims.hash_key) == 0
    assert await watcher.zcard(second.claims.expiry_key) == 0


async def test_dedupe_is_shared_across_replicas(clients):
    watcher = clients()
    replicas = [RedisEventDeduper(clients(), ttl=60) for _ in range(2)]
    verdicts = await asyncio.gather(*(replica.first_sighting("Ev9") for replica in replicas * 10))
    assert verdicts.count(True) == 1
    remaining = await replicas[0].claims.remaining_ms("Ev9")
    assert remaining is not None and 55_000 <= remaining <= 60_000
    assert await watcher.ttl(replicas[0].claims.hash_key) == -1  # kept by expiry in Lua, never evicted


# --- snapshots in Redis ---------------------------------------------------------------------------------------


async def test_snapshot_round_trip_is_exact_for_hostile_names(clients):
    names = [
        *HOSTILE_NAMES,
        "",
        "🎉👩🏽‍💻🏳️‍🌈",
        "مرحبا بالعالم",
        "\u200fRTL mark",
        "<!channel> <!here> <@U123>",
        "x" * 10_000,
        "語" * 10_000,
        "nul\x00byte",
        "lone \ud800 surrogate",  # what Python's json gives for a lone "\ud800" escape in ZIM's reply
    ]
    original = Roster(
        room_id="room#1+a&b",
        users=(*(RoomUser(f"id-{i}", name) for i, name in enumerate(names)), RoomUser("<!here>", "x")),
        reported_count=1234,
        fetched_at=1764312452.123456,
        pages=3,
        being_destroyed=False,
        request_ids=("343649807833778782", "343649807833778783"),
    )
    writer, reader = RedisSnapshotStore(clients()), RedisSnapshotStore(clients())
    await writer.put("zim:1:room#1+a&b", original)
    back = await reader.get("zim:1:room#1+a&b")
    assert back == original
    assert [u.user_name.encode("utf-8", "surrogatepass") for u in back.users] == [
        u.user_name.encode("utf-8", "surrogatepass") for u in original.users
    ]
    destroyed = Roster(room_id="gone", users=(), reported_count=0, fetched_at=1.5, being_destroyed=True)
    await writer.put("gone", destroyed)
    assert await reader.get("gone") == destroyed


async def test_snapshot_ttl_and_size_cap(clients, caplog):
    watcher = clients()
    store = RedisSnapshotStore(clients(), ttl=0.1, max_users=3)
    await store.put("small", make_roster(3))
    assert 0 < await watcher.pttl(store.redis_key("small")) <= 100
    await store.put("big", make_roster(4))
    assert await watcher.exists(store.redis_key("big")) == 0
    assert await store.get("big") is None
    assert any("not stored" in r.getMessage() for r in shared_state_records(caplog, logging.WARNING))
    await asyncio.sleep(0.15)
    assert await store.get("small") is None


async def test_corrupt_or_foreign_values_are_logged_misses(clients, caplog):
    raw = clients()
    store = RedisSnapshotStore(clients())
    valid = encode_roster(make_roster())
    values = {
        "foreign": b"hello",
        "garbage": b"RUS1" + b"\x00garbage",
        "truncated": valid[:-5],
        "wrong-shape": b"RUS1" + zlib.compress(b'{"ids": "abc", "names": "def"}'),
        "not-json": b"RUS1" + zlib.compress(b"\xff\xfe not json"),
    }
    for key, value in values.items():
        await raw.set(store.redis_key(key), value)
    await raw.hset(store.redis_key("a-hash"), "field", "value")
    for key in [*values, "a-hash"]:
        assert await store.get(key) is None, key
    assert len(shared_state_records(caplog, logging.WARNING)) == len(values) + 1


async def test_100k_user_snapshot_is_compact(clients):
    users = generated_users(100_000)
    original = Roster(
        room_id="load-100000",
        users=tuple(RoomUser(*user) for user in users),
        reported_count=len(users),
        fetched_at=time.time(),
        pages=200,
    )
    watcher, store = clients(), RedisSnapshotStore(clients())
    await store.put("big", original)
    stored = await watcher.strlen(store.redis_key("big"))
    assert stored / len(users) < 8  # about 5.4 bytes/user for these names; raw they are about 20
    assert await store.get("big") == original
    assert decode_roster(encode_roster(original)) == original


# --- Redis going away -----------------------------------------------------------------------------------------


@pytest.fixture
def own_server():
    """A server of this test's own, so stopping it does not disturb the others."""
    with RedisServer() as server:
        yield server


async def test_outage_falls_back_quietly_then_recovers(own_server, caplog):
    caplog.set_level(logging.INFO, logger="bot.state")
    state = await build_shared_state(own_server.url, probe_interval=0.2, lease_ttl=1.0)
    other_replica_client = connect(own_server.url)
    other_replica = RedisLeases(other_replica_client, lease_ttl=1.0)
    watcher = connect(own_server.url)
    try:
        assert await state.health() == {"redis": "ok"}
        await state.store.put("before", make_roster())
        assert await state.deduper.first_sighting("E1") is True
        assert await other_replica.acquire("busy") is not None  # another replica is mid-fetch
        waiting = asyncio.create_task(
            state.leases.wait_for_leader("busy", read=lambda: state.store.get("busy"), newer_than=0, timeout=10)
        )
        await asyncio.sleep(0.05)

        own_server.stop()
        started = time.monotonic()
        assert await asyncio.wait_for(waiting, 2) is None  # stop waiting for a leader nobody can see
        assert await state.store.get("before") is None  # a miss, not an error
        during = make_roster(2)
        await state.store.put("during", during)
        assert await state.store.get("during") == during
        await state.store.discard("during")
        pacer = state.pacer_for("zim:1", qps=FAST_QPS)
        await pacer.wait_turn()
        await pacer.cool_down(0.01)
        assert await state.deduper.first_sighting("E2") is True
        assert await state.deduper.first_sighting("E2") is False
        assert await state.deduper.first_sighting("E1") is False  # seen here before the outage
        lease = await state.leases.acquire("room")
        assert lease is not None
        await lease.release()
        assert await state.health() == {"redis": "unreachable"}
        assert time.monotonic() - started < 2
        warnings = shared_state_records(caplog, logging.WARNING)
        assert len(warnings) == 1
        assert "per replica" in warnings[0].getMessage()

        own_server.start()
        await asyncio.sleep(0.25)  # past the probe interval
        await state.store.put("after", make_roster())
        assert await watcher.exists(b"roomusers:snapshot:after") == 1  # back in Redis
        assert await state.deduper.first_sighting("E3") is True
        assert await watcher.hexists(b"roomusers:events", "E3") == 1
        assert await state.health() == {"redis": "ok"}
        infos = [r for r in shared_state_records(caplog, logging.INFO) if "reachable again" in r.getMessage()]
        assert len(infos) == 1
        assert len(shared_state_records(caplog, logging.WARNING)) == 1
    finally:
        await other_replica.aclose()
        await other_replica_client.aclose()
        await watcher.aclose()
        await state.aclose()


async def test_unreachable_at_start_names_redis_url_without_the_password():
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    with pytest.raises(SharedStateUnavailable) as caught:
        await build_shared_state(url)
    assert time.monotonic() - started < 2
    message = str(caught.value)
    assert "REDIS_URL" in message
    assert "redis://:***@127.0.0.1" in message
    assert "hunter2" not in message
    assert caught.value.__cause__ is None


async def test_wrong_password_or_malformed_url_is_unavailable_too():
    with RedisServer(args=["--requirepass", "right-one"]) as server:
        for url in (f"redis://:hunter2@127.0.0.1:{server.port}/0", "http://:hunter2@example.com"):
            with pytest.raises(SharedStateUnavailable, match="REDIS_URL") as caught:
                await build_shared_state(url)
            assert "hunter2" not in str(caught.value)
            assert "***" in str(caught.value)
        state = await build_shared_state(f"redis://:right-one@127.0.0.1:{server.port}/0")
        assert await state.health() == {"redis": "ok"}
        await state.aclose()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:secret@host", "redis://:***@host"),
        ("redis://user:secret@host:6379/0", "redis://user:***@host:6379/0"),
        ("rediss://user:p@ss/w?rd@host:6380", "rediss://user:***@host:6380"),
        ("redis://secret@host", "redis://***@host"),
        ("unix:///run/redis.sock?db=0&password=secret", "unix:///run/redis.sock?db=0&password=***"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("not a url secret", "***"),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown
