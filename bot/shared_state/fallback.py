"""Each shared component paired with its in-process equivalent, switched by one `RedisHealth`.

The wrappers only delegate; when to use which side (and the one warning per outage) lives in
`RedisHealth.run`. They satisfy the same protocols as what they wrap, so the app cannot tell them apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from bot.dedupe import EventDeduper
from bot.flights import FlightCoordinator, FlightLease, Read
from bot.shared_state.health import RedisHealth
from bot.snapshots import SnapshotStore
from bot.zim.models import Roster
from bot.zim.pacing import Pacer

C = TypeVar("C")
R = TypeVar("R")


class _Fallback(Generic[C]):
    def __init__(self, shared: C, local: C, health: RedisHealth) -> None:
        self.shared = shared
        self.local = local
        self.health = health

    async def _call(self, op: Callable[[C], Awaitable[R]]) -> R:
        return await self.health.run(lambda: op(self.shared), lambda: op(self.local))


class FallbackSnapshotStore(_Fallback[SnapshotStore]):
    """Snapshots written during an outage stay in this replica's memory; Redis keeps the older copy."""

    async def get(self, key: str) -> Roster | None:
        return await self._call(lambda store: store.get(key))

    async def put(self, key: str, roster: Roster) -> None:
        await self._call(lambda store: store.put(key, roster))

    async def discard(self, key: str) -> None:
        await self._call(lambda store: store.discard(key))


class FallbackPacer(_Fallback[Pacer]):
    """During an outage each replica paces itself at the full rate, so together they may exceed it."""

    async def wait_turn(self) -> float:
        return await self._call(lambda pacer: pacer.wait_turn())

    async def cool_down(self, seconds: float) -> None:
        await self._call(lambda pacer: pacer.cool_down(seconds))


class FallbackEventDeduper(_Fallback[EventDeduper]):
    """Also remembers every event locally, so a Slack retry that reaches this replica is recognised even
    if Redis went away (or came back) between the delivery and the retry."""

    async def first_sighting(self, event_id: str) -> bool:
        new_here = await self.local.first_sighting(event_id)
        new_everywhere = await self.health.run(lambda: self.shared.first_sighting(event_id), lambda: _const(new_here))
        return new_here and new_everywhere


class FallbackFlightCoordinator(_Fallback[FlightCoordinator]):
    """During an outage every replica fetches for itself (in-process single-flight still applies)."""

    async def acquire(self, key: str) -> FlightLease | None:
        return await self._call(lambda flights: flights.acquire(key))

    async def wait_for_leader(
        self,
        key: str,
        *,
        read: Read,
        newer_than: float,
        timeout: float,  # noqa: ASYNC109  # a waiting budget that ends in "fetch yourself", not an error
    ) -> Roster | None:
        return await self._call(
            lambda flights: flights.wait_for_leader(key, read=read, newer_than=newer_than, timeout=timeout)
        )


async def _const(value: bool) -> bool:
    return value
