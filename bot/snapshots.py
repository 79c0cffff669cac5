"""Roster snapshots: a TTL store bounded by users held, and single-flight fetching on top of it.

Paging clicks, repeated commands and (with a shared store) other replicas reuse a snapshot instead of
re-reading the room; concurrent requests for one room share one fetch. Failures are never stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from cachetools import TTLCache

from bot.flights import FlightCoordinator, LocalFlightCoordinator
from bot.metrics import FETCH_SECONDS, SNAPSHOT_LOOKUPS
from bot.zim.models import Roster
from bot.zim.roster import FetchProgress

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 300.0
DEFAULT_MAX_USERS = 2_000_000
FOLLOW_TIMEOUT_SECONDS = 90.0  # a follower waits this long for another replica's fetch (100k users at 200 ms: ~21 s)


class SnapshotStore(Protocol):
    async def get(self, key: str) -> Roster | None: ...

    async def put(self, key: str, roster: Roster) -> None: ...

    async def discard(self, key: str) -> None: ...


def _users_held(roster: Roster) -> int:
    return len(roster.users) + 1  # +1 so empty rooms still occupy a slot


class MemorySnapshotStore:
    """In-process snapshots: cachetools TTLCache whose size is the total number of users held."""

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        max_users: int = DEFAULT_MAX_USERS,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cache: TTLCache[str, Roster] = TTLCache(maxsize=max_users, ttl=ttl, timer=timer, getsizeof=_users_held)

    async def get(self, key: str) -> Roster | None:
        return self._cache.get(key)

    async def put(self, key: str, roster: Roster) -> None:
        try:
            self._cache[key] = roster
        except ValueError:  # a single roster larger than the whole budget: serve it, don't keep it
            log.warning("snapshot of %d users exceeds the cache budget; not cached", len(roster.users))

    async def discard(self, key: str) -> None:
        self._cache.pop(key, None)

    @property
    def users_held(self) -> float:
        return self._cache.currsize


@dataclass(frozen=True, slots=True)
class Snapshot:
    roster: Roster
    from_cache: bool


@dataclass(frozen=True, slots=True)
class Flight:
    """A fetch in progress: its progress so far, and the whole roster when it is done."""

    task: asyncio.Task[Roster]
    progress: FetchProgress

    async def roster(self) -> Roster:
        # shield: a waiter that gives up must not cancel the fetch the others are waiting for.
        return await asyncio.shield(self.task)


Fetch = Callable[[str, FetchProgress], Awaitable[Roster]]


class SnapshotService:
    """Cache-aside reads with single-flight: N concurrent requests for one room cause one fetch."""

    def __init__(
        self,
        *,
        store: SnapshotStore,
        fetch: Fetch,
        namespace: str,
        flights: FlightCoordinator | None = None,
        follow_timeout: float = FOLLOW_TIMEOUT_SECONDS,
    ) -> None:
        self._store = store
        self._fetch = fetch
        self._namespace = namespace
        self._flights = flights or LocalFlightCoordinator()
        self._follow_timeout = follow_timeout
        self._in_flight: dict[str, Flight] = {}

    def key(self, room_id: str) -> str:
        return f"{self._namespace}:{room_id}"

    async def begin(self, room_id: str, *, refresh: bool = False) -> Snapshot | Flight:
        """The cached snapshot, or the fetch that will produce one (joining a fetch already under way)."""
        key = self.key(room_id)
        if not refresh and key not in self._in_flight:
            cached = await self._store.get(key)
            SNAPSHOT_LOOKUPS.labels("miss" if cached is None else "hit").inc()
            if cached is not None:
                return Snapshot(cached, from_cache=True)
        return self.flight(room_id, refresh=refresh)

    def flight(self, room_id: str, *, refresh: bool = False) -> Flight:
        """The fetch of `room_id` under way, or a new one (the cache is not consulted)."""
        key = self.key(room_id)
        # Synchronous: nothing can start a second fetch between this check and the insert.
        flight = self._in_flight.get(key)
        if flight is None:
            progress = FetchProgress()
            task = asyncio.create_task(self._lead_or_follow(key, room_id, progress, refresh=refresh))
            flight = Flight(task, progress)
            self._in_flight[key] = flight
            task.add_done_callback(lambda done: self._forget(key, done))
        return flight

    async def get(self, room_id: str, *, refresh: bool = False) -> Snapshot:
        begun = await self.begin(room_id, refresh=refresh)
        if isinstance(begun, Snapshot):
            return begun
        return Snapshot(await begun.roster(), from_cache=False)

    async def aclose(self) -> None:
        """Stop fetches still under way (at shutdown, after answers had their grace period)."""
        tasks = [flight.task for flight in self._in_flight.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def in_flight(self, room_id: str) -> Flight | None:
        return self._in_flight.get(self.key(room_id))

    async def cached(self, room_id: str) -> Roster | None:
        roster = await self._store.get(self.key(room_id))
        SNAPSHOT_LOOKUPS.labels("miss" if roster is None else "hit").inc()
        return roster

    def _forget(self, key: str, task: asyncio.Task[Roster]) -> None:
        self._in_flight.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here so a fetch whose waiters all left does not warn

    async def _lead_or_follow(self, key: str, room_id: str, progress: FetchProgress, *, refresh: bool) -> Roster:
        """Fetch the room, unless another replica is already fetching it: then wait for its snapshot.

        Runs inside the flight's task, which is where a lease must be taken (it is renewed while this runs).
        """
        started = time.time()
        lease = await self._flights.acquire(key)
        if lease is None:
            # Without a refresh any snapshot the leader stores will do; with one, only a newer one.
            newer_than = started if refresh else 0.0
            roster = await self._flights.wait_for_leader(
                key, read=lambda: self._store.get(key), newer_than=newer_than, timeout=self._follow_timeout
            )
            if roster is not None:
                return roster
            lease = await self._flights.acquire(key)  # the leader died or is slow: None again means share the work
        try:
            with FETCH_SECONDS.time():
                roster = await self._fetch(room_id, progress)
            await self._store.put(key, roster)
            return roster
        finally:
            if lease is not None:
                await lease.release()
