"""Wiring of the roster path: settings → pacer + HTTP client + ZIM client + snapshot service, per ZEGO app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from bot.config import ZegoProfiles, ZegoSettings
from bot.flights import FlightCoordinator
from bot.snapshots import MemorySnapshotStore, SnapshotService, SnapshotStore
from bot.zim import Pacer, RetryPolicy, SmoothPacer, ZimClient, fetch_roster, new_http_client
from bot.zim.models import Roster
from bot.zim.roster import FetchProgress

PacerFactory = Callable[[ZegoSettings], Pacer]


def local_pacer(settings: ZegoSettings) -> Pacer:
    return SmoothPacer(settings.qps)


@dataclass(frozen=True)
class RosterStack:
    """One ZEGO app (profile): its client, paced under that app's limit, and its snapshots."""

    profile: str
    client: ZimClient
    snapshots: SnapshotService


@dataclass(frozen=True)
class Rosters:
    """Every configured profile; `pick("")` is the default one."""

    default: str
    stacks: dict[str, RosterStack]

    def pick(self, profile: str) -> RosterStack | None:
        return self.stacks.get(profile or self.default)

    @property
    def several(self) -> bool:
        return len(self.stacks) > 1


def _stack(
    settings: ZegoSettings,
    http: httpx.AsyncClient,
    store: SnapshotStore,
    pacer: Pacer,
    flights: FlightCoordinator | None,
    retry: RetryPolicy | None,
) -> RosterStack:
    client = ZimClient(
        app_id=settings.app_id,
        server_secret=settings.server_secret,
        base_url=settings.base_url,
        pacer=pacer,
        http=http,
        retry=retry,
        settings_prefix=settings.env_prefix,
    )

    async def fetch(room_id: str, progress: FetchProgress) -> Roster:
        return await fetch_roster(client, room_id, progress=progress)

    # The namespace keeps apps apart in a shared store; the same room ID in two apps is two rooms.
    snapshots = SnapshotService(store=store, fetch=fetch, namespace=f"zim:{settings.app_id}", flights=flights)
    return RosterStack(profile=settings.profile, client=client, snapshots=snapshots)


@asynccontextmanager
async def open_rosters(
    profiles: ZegoProfiles,
    *,
    store: SnapshotStore | None = None,
    pacer_for: PacerFactory = local_pacer,
    flights: FlightCoordinator | None = None,
    retry: RetryPolicy | None = None,
) -> AsyncIterator[Rosters]:
    """A stack per profile sharing one HTTP client and one store; each app gets its own pacer (its own limit)."""
    shared_store = store or MemorySnapshotStore()
    async with new_http_client() as http:
        stacks = {
            name: _stack(settings, http, shared_store, pacer_for(settings), flights, retry)
            for name, settings in profiles.by_name.items()
        }
        try:
            yield Rosters(default=profiles.default, stacks=stacks)
        finally:
            for stack in stacks.values():
                await stack.snapshots.aclose()


@asynccontextmanager
async def roster_stack(
    settings: ZegoSettings, *, store: SnapshotStore | None = None, retry: RetryPolicy | None = None
) -> AsyncIterator[RosterStack]:
    """A single profile's stack (the `query` command)."""
    profiles = ZegoProfiles(default=settings.profile, by_name={settings.profile: settings})
    async with open_rosters(profiles, store=store, retry=retry) as rosters:
        yield rosters.stacks[settings.profile]
