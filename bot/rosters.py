"""Wiring of the roster path: settings → pacer + HTTP client + ZIM client + snapshot service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.config import ZegoSettings
from bot.snapshots import MemorySnapshotStore, SnapshotService, SnapshotStore
from bot.zim import RetryPolicy, SmoothPacer, ZimClient, fetch_roster, new_http_client
from bot.zim.models import Roster


@dataclass(frozen=True)
class RosterStack:
    client: ZimClient
    snapshots: SnapshotService


@asynccontextmanager
async def roster_stack(
    settings: ZegoSettings, *, store: SnapshotStore | None = None, retry: RetryPolicy | None = None
) -> AsyncIterator[RosterStack]:
    """Everything needed to read rosters, with one pacer for the whole process; closes its HTTP client."""
    async with new_http_client() as http:
        client = ZimClient(
            app_id=settings.app_id,
            server_secret=settings.server_secret,
            base_url=settings.base_url,
            pacer=SmoothPacer(settings.qps),
            http=http,
            retry=retry,
        )

        async def fetch(room_id: str) -> Roster:
            return await fetch_roster(client, room_id)

        snapshots = SnapshotService(
            store=store or MemorySnapshotStore(), fetch=fetch, namespace=f"zim:{settings.app_id}"
        )
        yield RosterStack(client=client, snapshots=snapshots)
