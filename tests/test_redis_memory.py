"""Redis under memory pressure, against a real redis-server with a small `maxmemory`.

The promise: the pacer's send-slot schedule, the fetch leases, event dedupe, the replay guard and watches are
never evicted. Snapshots have their own byte budget (so they can't fill Redis at all), and everything that must
survive lives in keys without a TTL, which the documented backstop policy `volatile-lru` never evicts: if
something else fills Redis anyway, only snapshot-like keys with a TTL go.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from bot.roster.model import Roster
from bot.roster.reads import Ticket
from bot.roster.user import RoomUser
from bot.state.leases import RedisLeases
from bot.state.once import RedisEventDeduper, RedisReplayGuard
from bot.state.pacer import RedisPacer
from bot.state.readslots import RedisReadSlots
from bot.state.snapshots import RedisSnapshotStore
from bot.watch.conditions import parse_condition
from bot.watch.model import Watch
from bot.watch.store import Limits, RedisWatchStore

from .redis_server import RedisServer

MAXMEMORY = 8 * 1024 * 1024
PREFIX = "roomusers:"


@pytest.fixture(scope="module")
def small_redis() -> Iterator[RedisServer]:
    with RedisServer(
        args=["--maxmemory", str(MAXMEMORY), "--maxmemory-policy", "volatile-lru", "--maxmemory-samples", "10"]
    ) as server:
        yield server


@pytest.fixture
async def redis(small_redis: RedisServer) -> AsyncIterator[Redis]:
    small_redis.flush()
    client = Redis.from_url(small_redis.url)
    await client.config_resetstat()
    yield client
    await client.aclose()


def incompressible(room: str, users: int, seed: int) -> Roster:
    rng = random.Random(seed)
    return Roster(
        room_id=room,
        users=[RoomUser(rng.randbytes(12).hex(), rng.randbytes(18).hex()) for _ in range(users)],
        reported_count=users,
        fetched_at=time.time(),
    )


async def evicted(redis: Redis) -> int:
    return int((await redis.info("stats"))["evicted_keys"])


async def test_the_snapshot_budget_keeps_redis_below_maxmemory_and_evicts_nothing(redis: Redis):
    budget = 2 * 1024 * 1024
    store = RedisSnapshotStore(redis, prefix=PREFIX, budget_bytes=budget)
    leases = RedisLeases(redis, prefix=PREFIX)
    pacer = RedisPacer(redis, qps=20, key=f"{PREFIX}pacer:zim:1")
    lease = await leases.acquire("zim:1:held-room")
    assert lease is not None
    try:
        for n in range(50):  # ~50 × 180 KB: four times the budget, and more than maxmemory
            await store.put(f"zim:1:room-{n}", incompressible(f"room-{n}", 6000, seed=n))
            await pacer.wait_turn()
        assert await evicted(redis) == 0
        sizes = [await redis.strlen(key) async for key in redis.scan_iter(match=f"{PREFIX}snapshot:*")]
        assert 0 < sum(sizes) <= budget
        assert int(await redis.hget(f"{PREFIX}snapshot-bytes", "~total") or 0) == sum(sizes)
        newest = await store.get("zim:1:room-49")
        assert newest is not None and len(newest.users) == 6000
        assert await store.get("zim:1:room-0") is None  # the oldest made room for the newest
        assert await redis.exists(pacer.key) == 1
        assert await leases.held("zim:1:held-room")
        memory = await redis.info("memory")
        assert int(memory["used_memory"]) < MAXMEMORY
        # Discarding gives the bytes back.
        await store.discard("zim:1:room-49")
        sizes = [await redis.strlen(key) async for key in redis.scan_iter(match=f"{PREFIX}snapshot:*")]
        assert int(await redis.hget(f"{PREFIX}snapshot-bytes", "~total") or 0) == sum(sizes)
    finally:
        await lease.release()
        await leases.aclose()


async def test_expired_snapshots_leave_the_budget_at_the_next_write(redis: Redis):
    store = RedisSnapshotStore(redis, prefix=PREFIX, ttl=0.2, budget_bytes=10 * 1024 * 1024)
    await store.put("zim:1:a", incompressible("a", 500, seed=1))
    await store.put("zim:1:b", incompressible("b", 500, seed=2))
    async with asyncio.timeout(5):
        while await redis.exists(store.redis_key("zim:1:a")):  # noqa: ASYNC110  # until Redis expired it
            await asyncio.sleep(0.05)
    await store.put("zim:1:c", incompressible("c", 10, seed=3))
    size_c = await redis.strlen(store.redis_key("zim:1:c"))
    assert int(await redis.hget(f"{PREFIX}snapshot-bytes", "~total") or 0) == size_c
    assert await redis.zcard(f"{PREFIX}snapshot-index") == 1


async def test_a_snapshot_larger_than_the_whole_budget_is_not_stored(redis: Redis, caplog: pytest.LogCaptureFixture):
    store = RedisSnapshotStore(redis, prefix=PREFIX, budget_bytes=10_000)
    await store.put("zim:1:big", incompressible("big", 2000, seed=4))
    assert await store.get("zim:1:big") is None
    assert "SNAPSHOT_REDIS_MAX_MB" in caplog.text


async def keys_without_ttl(redis: Redis) -> dict[bytes, bytes | str]:
    """Every key without a TTL, with its type."""
    found = {}
    async for key in redis.scan_iter(count=1000):
        if await redis.pttl(key) == -1:
            found[key] = await redis.type(key)
    return found


async def test_under_maxmemory_only_keys_with_a_ttl_are_evicted_and_every_promise_holds(redis: Redis):
    """Budget out of the way (1 GiB): Redis itself must choose, under volatile-lru, while the pacer runs, leases
    are held and renewed, dedupe and replay entries and watches are stored. Filled past maxmemory with snapshots
    and other TTL junk, it evicts (the pressure was real) but never a key without a TTL, and every promise holds."""
    store = RedisSnapshotStore(redis, prefix=PREFIX, budget_bytes=1024**3)
    leases = RedisLeases(redis, prefix=PREFIX, lease_ttl=0.6)
    rival = RedisLeases(redis, prefix=PREFIX, lease_ttl=0.6)
    pacer = RedisPacer(redis, qps=50, key=f"{PREFIX}pacer:zim:1")
    deduper = RedisEventDeduper(redis, prefix=PREFIX)
    replays = RedisReplayGuard(redis, prefix=PREFIX)
    held = [await leases.acquire(f"zim:1:held-room-{n}") for n in range(20)]
    assert all(lease is not None for lease in held)
    for n in range(200):
        assert await deduper.first_sighting(f"Ev{n}")
        assert await replays.first_use(f"v0=signature-{n}", "1764312452")
    # Real watches, stored the way the watch feature stores them (keys without a TTL).
    watches = RedisWatchStore(redis, prefix=PREFIX)
    condition = parse_condition("--when-empty", None)
    for n in range(50):
        watch = Watch(f"{n:016x}", "T1", "C1", None, "U1", "default", f"room-{n}", condition, 1.0, 9e12)
        await watches.add(watch, limits=Limits(per_conversation=100, per_workspace=100), first_due_in=0)
    await pacer.take_background_slot()  # writes both schedule keys
    read_slots = RedisReadSlots(redis, limit=1, key=f"{PREFIX}reads:zim:1", holder_ttl=0.6)
    reading = await read_slots.acquire(Ticket())
    stop = asyncio.Event()

    async def keep_pacing() -> None:
        while not stop.is_set():
            await pacer.wait_turn()

    pacing = asyncio.create_task(keep_pacing())
    try:
        kept = await keys_without_ttl(redis)
        assert {pacer.key.encode(), pacer.background_key.encode(), leases.claims.hash_key.encode()} <= kept.keys()
        assert read_slots.keys[0].encode() in kept
        written = 0
        rooms = 0
        while written < 3 * MAXMEMORY:  # three times maxmemory: well past it
            await store.put(f"zim:1:room-{rooms}", incompressible(f"room-{rooms}", 6000, seed=100 + rooms))
            await redis.set(f"{PREFIX}junk:{rooms}", rng_bytes(60_000, seed=rooms), ex=3600)
            written += 180_000 + 60_000
            rooms += 1
            assert await redis.exists(*kept) == len(kept), f"a key without a TTL was evicted at write {rooms}"
        assert await evicted(redis) > 0  # the pressure was real
        assert int((await redis.info("memory"))["used_memory"]) <= MAXMEMORY * 1.1
        assert kept.items() <= (await keys_without_ttl(redis)).items()  # none lost, none of them gained a TTL

        # The promises still hold: leases outlived several TTLs by renewal and are still exclusive,
        for n in range(20):
            assert await leases.held(f"zim:1:held-room-{n}")
            assert await rival.acquire(f"zim:1:held-room-{n}") is None
        # …and taking, releasing and retaking a lease works under pressure;
        fresh = await rival.acquire("zim:1:new-room")
        assert fresh is not None
        await fresh.release()
        again = await leases.acquire("zim:1:new-room")
        assert again is not None
        await again.release()
        # the read slot is still held (renewed past several TTLs),
        seconds, micros = await redis.time()
        expiry = await redis.zscore(read_slots.keys[0], reading)
        assert expiry is not None and expiry > seconds * 1000 + micros / 1000
        # every event and signature is still remembered,
        for n in range(200):
            assert await deduper.seen(f"Ev{n}")
            assert not await deduper.first_sighting(f"Ev{n}")
            assert not await replays.first_use(f"v0=signature-{n}", "1764312452")
        # watches are intact, and the newest snapshot is readable.
        assert len(await watches.in_conversation("T1", "C1")) == 50
        claims = await watches.claim_due(hold_for=5, limit=100)
        assert len(claims) == 50  # every room's schedule survived
        stored = await watches.get(f"{7:016x}")
        assert stored is not None and await watches.end(stored) and await watches.count() == 49
        assert await store.get(f"zim:1:room-{rooms - 1}") is not None
    finally:
        stop.set()
        await pacing
        await read_slots.release(reading)
        for lease in held:
            if lease is not None:
                await lease.release()
        await leases.aclose()
        await rival.aclose()


def rng_bytes(size: int, *, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)
