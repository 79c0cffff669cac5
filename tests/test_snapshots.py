"""The snapshot store and single-flight logic, with an in-process fetch function standing in for ZIM."""

import asyncio

import pytest

from bot.roster.model import RoomUser, Roster
from bot.roster.service import SnapshotService
from bot.state.snapshots import MemorySnapshotStore


def roster(room_id, n):
    return Roster(
        room_id=room_id, users=tuple(RoomUser(f"u{i}", f"N{i}") for i in range(n)), reported_count=n, fetched_at=0.0
    )


class CountingFetch:
    def __init__(self, sizes=None, fail_first=0):
        self.calls = []
        self.sizes = sizes or {}
        self.fail_first = fail_first
        self.release = asyncio.Event()

    async def __call__(self, room_id, progress=None):
        self.calls.append(room_id)
        await self.release.wait()
        if len(self.calls) <= self.fail_first:
            raise RuntimeError("upstream down")
        return roster(room_id, self.sizes.get(room_id, 3))


async def test_concurrent_requests_for_one_room_share_one_fetch():
    fetch = CountingFetch()
    service = SnapshotService(store=MemorySnapshotStore(), fetch=fetch, namespace="t")
    waiters = [asyncio.create_task(service.get("r1")) for _ in range(10)]
    await asyncio.sleep(0)
    fetch.release.set()
    results = await asyncio.gather(*waiters)
    assert fetch.calls == ["r1"]
    assert {id(r.roster) for r in results} == {id(results[0].roster)}
    assert not any(r.from_cache for r in results)
    again = await service.get("r1")
    assert again.from_cache and fetch.calls == ["r1"]


async def test_refresh_bypasses_the_cache():
    fetch = CountingFetch()
    fetch.release.set()
    service = SnapshotService(store=MemorySnapshotStore(), fetch=fetch, namespace="t")
    await service.get("r1")
    fresh = await service.get("r1", refresh=True)
    assert not fresh.from_cache and fetch.calls == ["r1", "r1"]


async def test_failures_are_not_cached():
    fetch = CountingFetch(fail_first=1)
    fetch.release.set()
    service = SnapshotService(store=MemorySnapshotStore(), fetch=fetch, namespace="t")
    with pytest.raises(RuntimeError):
        await service.get("r1")
    assert (await service.get("r1")).from_cache is False
    assert fetch.calls == ["r1", "r1"]


async def test_a_waiter_that_gives_up_does_not_cancel_the_shared_fetch():
    fetch = CountingFetch()
    service = SnapshotService(store=MemorySnapshotStore(), fetch=fetch, namespace="t")
    impatient = asyncio.create_task(service.get("r1"))
    patient = asyncio.create_task(service.get("r1"))
    await asyncio.sleep(0)
    impatient.cancel()
    fetch.release.set()
    assert len((await patient).roster.users) == 3
    assert (await service.get("r1")).from_cache


async def test_store_is_bounded_by_users_held_and_expires():
    now = [0.0]
    store = MemorySnapshotStore(ttl=10, max_users=100, timer=lambda: now[0])
    await store.put("a", roster("a", 60))
    await store.put("b", roster("b", 30))
    await store.put("c", roster("c", 50))  # evicts the least recently used to stay within 100 users
    assert await store.get("a") is None
    assert await store.get("b") is not None
    assert await store.get("c") is not None
    await store.put("huge", roster("huge", 500))  # larger than the whole budget: not kept, no error
    assert await store.get("huge") is None
    now[0] = 11
    assert await store.get("c") is None
