"""Fetch leases: which replica reads a room from ZIM while the others wait for its snapshot.

In process (`LocalLeases`: nobody else can be fetching), in Redis (`RedisLeases`), and the pair switched by
`RedisHealth` (`FallbackLeases`).

Intended use, around the snapshot store (`newer_than` is the wall-clock time the caller started, since
`Roster.fetched_at` is `time.time()` on whichever replica fetched):

    lease = await flights.acquire(key)
    while lease is None:  # a held lease is a live leader (it renews it): wait for it, however long it queues
        roster = await flights.wait_for_leader(key, read=lambda: store.get(key), newer_than=started, timeout=30)
        if roster is not None:
            return roster
        lease = await flights.acquire(key)  # free: the leader died or stored nothing new; read it here
    try:
        roster = await fetch(); await store.put(key, roster)
    finally:
        if lease is not None:
            await lease.release()

The Redis lease is a field of one claim set per prefix (`bot/state/expiring.py`): `<prefix>leases`, a hash of
lease key → holder token, and `<prefix>leases-expiry`, their expiries on Redis's clock. Neither key has a TTL, so
under the `volatile-lru` policy Redis can never evict a live lease, however full it gets; the expiry is enforced
by the Lua scripts instead. (redis-py's `Lock` can't be used: it is `SET key token NX PX ttl`, and that PX TTL
is exactly what makes the key evictable.) Acquire takes a field that is free or expired, renewal every ttl/3
while held keeps a long fetch exclusive, and release is compare-and-delete on the token, so a replica never
deletes a lease that expired and was taken by another. Renewal stops when the task that acquired the lease
finishes: a fetch that crashes or is cancelled without releasing must not hold the room for ever, so acquire
the lease in the task that does the fetch. A replica that dies stops renewing and its lease expires after `lease_ttl`.
Older versions kept leases in `<prefix>lock:<key>` strings; during a rolling deploy an old and a new replica
don't see each other's leases, which costs at most one extra read of a room.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Protocol

from redis.asyncio import Redis

from bot.roster.model import Roster
from bot.state.connection import DEFAULT_PREFIX
from bot.state.expiring import RedisClaims
from bot.state.health import REDIS_UNAVAILABLE, Fallback

log = logging.getLogger(__name__)

Read = Callable[[], Awaitable[Roster | None]]


class Lease(Protocol):
    async def release(self) -> None: ...


class FetchLeases(Protocol):
    async def acquire(self, key: str) -> Lease | None:
        """Become the one replica fetching `key` (None: another replica holds the lease)."""

    async def wait_for_leader(
        self,
        key: str,
        *,
        read: Read,
        newer_than: float,
        timeout: float,  # noqa: ASYNC109  # a waiting budget that ends in "fetch yourself", not an error
    ) -> Roster | None:
        """While another replica fetches: poll `read()` until it returns a roster with fetched_at > newer_than
        (return it), or the leader's lease vanishes without one / timeout passes (return None: the caller then
        fetches itself)."""


def fresh_enough(roster: Roster | None, newer_than: float) -> Roster | None:
    return roster if roster is not None and roster.fetched_at > newer_than else None


class _NoLease:
    async def release(self) -> None:
        return None


class LocalLeases:
    """One replica: nobody else can be fetching, so every acquire succeeds (in-process single-flight is
    `SnapshotService`'s job)."""

    _LEASE = _NoLease()

    async def acquire(self, key: str) -> Lease:
        return self._LEASE

    async def wait_for_leader(
        self,
        key: str,
        *,
        read: Read,
        newer_than: float,
        timeout: float,  # noqa: ASYNC109  # a waiting budget that ends in "fetch yourself", not an error
    ) -> Roster | None:
        # No leader to wait for; a fresh snapshot may still be there (e.g. stored just before an outage).
        return fresh_enough(await read(), newer_than)


DEFAULT_LEASE_TTL = 15.0
DEFAULT_POLL_INTERVAL = 0.1


class RedisLease:
    """A held lease (a token in the lease claim set); renews itself in the background until released or its
    owning task ends."""

    def __init__(self, coordinator: RedisLeases, key: str, token: str) -> None:
        self._coordinator = coordinator
        self.key = key
        self._token = token
        self._renewal: asyncio.Task[None] | None = None
        self._owner: asyncio.Task[object] | None = None

    def _start_renewing(self, owner: asyncio.Task[object] | None) -> None:
        self._renewal = asyncio.create_task(self._keep(), name=f"lease {self.key}")
        self._coordinator._leases.add(self)
        if owner is not None:
            self._owner = owner
            owner.add_done_callback(self._owner_done)

    def _owner_done(self, _owner: asyncio.Task[object]) -> None:
        self.abandon()

    def abandon(self) -> None:
        """Stop renewing without touching Redis; the lease expires by itself within the lease TTL."""
        if self._renewal is not None:
            self._renewal.cancel()
            self._renewal = None
        if self._owner is not None:
            # A long-lived task that takes many leases must not collect a callback per lease.
            self._owner.remove_done_callback(self._owner_done)
            self._owner = None
        self._coordinator._leases.discard(self)

    async def release(self) -> None:
        """Give the lease up (only if it is still ours). Never raises for Redis trouble: it would expire anyway."""
        self.abandon()
        try:
            if not await self._coordinator.claims.release(self.key, self._token):
                log.debug("lease %s had already expired and been taken over", self.key)
        except REDIS_UNAVAILABLE as exc:
            log.debug("could not release lease %s (%s); it expires by itself", self.key, exc)

    async def _keep(self) -> None:
        coordinator = self._coordinator
        while True:
            await asyncio.sleep(coordinator.renew_every)
            try:
                renewed = await coordinator.claims.renew(self.key, self._token, coordinator.ttl_ms)
            except REDIS_UNAVAILABLE as exc:
                # Keep trying: Redis may be back before the lease runs out.
                log.debug("could not renew lease %s (%s)", self.key, exc)
                continue
            if not renewed:
                # It ran out while Redis was unreachable or this loop stalled, or Redis restarted empty. At worst
                # another replica fetches the same room too; the outage itself was already reported once.
                log.info("lease %s was lost while held; another replica may fetch the same room", self.key)
                coordinator._leases.discard(self)
                return


class RedisLeases:
    """`FetchLeases` over a Redis claim set that is never evicted. Redis errors from acquire/wait_for_leader
    propagate; `build_shared_state` wraps it so they fall back to `LocalLeases`."""

    def __init__(
        self,
        redis: Redis,
        *,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        if lease_ttl <= 0 or poll_interval <= 0:
            raise ValueError("lease_ttl and poll_interval must be positive")
        self.ttl_ms = max(1, round(lease_ttl * 1000))
        self.renew_every = lease_ttl / 3
        self._poll_interval = poll_interval
        self.claims = RedisClaims(redis, name=f"{prefix}leases")
        self._leases: set[RedisLease] = set()

    async def held(self, key: str) -> bool:
        """Whether some replica holds a live lease on `key` now."""
        return await self.claims.remaining_ms(key) is not None

    async def acquire(self, key: str) -> RedisLease | None:
        token = secrets.token_hex(16)
        if not await self.claims.claim(key, token, self.ttl_ms):
            return None
        lease = RedisLease(self, key, token)
        lease._start_renewing(asyncio.current_task())
        return lease

    async def wait_for_leader(
        self,
        key: str,
        *,
        read: Read,
        newer_than: float,
        timeout: float,  # noqa: ASYNC109  # a waiting budget that ends in "fetch yourself", not an error
    ) -> Roster | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            roster = fresh_enough(await read(), newer_than)
            if roster is not None:
                return roster
            if not await self.held(key):
                # The leader may have stored its roster and released between our read and this check.
                return fresh_enough(await read(), newer_than)
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            await asyncio.sleep(min(self._poll_interval, remaining))

    async def aclose(self) -> None:
        """Stop renewing every lease still held (they expire on their own; a shutting-down replica may be
        unable to reach Redis to delete them)."""
        for lease in list(self._leases):
            lease.abandon()


class FallbackLeases(Fallback[FetchLeases]):
    """During an outage every replica fetches for itself (in-process single-flight still applies)."""

    async def acquire(self, key: str) -> Lease | None:
        return await self._call(lambda leases: leases.acquire(key))

    async def wait_for_leader(
        self,
        key: str,
        *,
        read: Read,
        newer_than: float,
        timeout: float,  # noqa: ASYNC109  # a waiting budget that ends in "fetch yourself", not an error
    ) -> Roster | None:
        return await self._call(
            lambda leases: leases.wait_for_leader(key, read=read, newer_than=newer_than, timeout=timeout)
        )
