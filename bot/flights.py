"""Single-flight across replicas, as seen by the snapshot service: who fetches a room, and waiting for it.

The in-process coordinator lives here; the Redis one is in bot/shared_state/flight.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from bot.zim.models import Roster

__all__ = ["FlightCoordinator", "FlightLease", "LocalFlightCoordinator", "Read", "fresh_enough"]

Read = Callable[[], Awaitable[Roster | None]]


class FlightLease(Protocol):
    async def release(self) -> None: ...


class FlightCoordinator(Protocol):
    async def acquire(self, key: str) -> FlightLease | None:
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


class LocalFlightCoordinator:
    """One replica: nobody else can be fetching, so every acquire succeeds (in-process single-flight is
    `SnapshotService`'s job)."""

    _LEASE = _NoLease()

    async def acquire(self, key: str) -> FlightLease:
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
