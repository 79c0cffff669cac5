"""fetch_roster's size hint, through the real client and the sandbox: a room known to be big sends both
chains' first pages at once (at most one request more, for a room that shrank to one page), and
the SnapshotService passes the Count of a room's last read as that hint."""

from __future__ import annotations

import pytest

from bot.dev.zim_sandbox import ZimSandbox
from bot.roster.model import Roster
from bot.roster.service import SnapshotService
from bot.state.snapshots import MemorySnapshotStore
from bot.zim import fetch_roster
from bot.zim.paging import FetchProgress

from .conftest import ClientFactory


@pytest.mark.parametrize("users", [1, 500, 501, 1_000, 2_600])
async def test_a_size_hint_reads_the_same_list(sandbox: ZimSandbox, make_client: ClientFactory, users: int) -> None:
    sandbox.add_room("hinted", users)
    expected = [uid for uid, _ in sandbox.rooms["hinted"].users]
    before = sandbox.stats.requests
    cold = await fetch_roster(make_client(), "hinted")
    cold_requests = sandbox.stats.requests - before
    before = sandbox.stats.requests
    hinted = await fetch_roster(make_client(), "hinted", size_hint=5_000)
    hinted_requests = sandbox.stats.requests - before
    for roster in (cold, hinted):
        assert [user.user_id for user in roster.users] == expected
        assert roster.complete and roster.reported_count == users
    # At most the other chain's first page is not needed (not even sent if the first answer beats its slot).
    assert cold_requests <= hinted_requests <= cold_requests + 1


async def test_the_service_hints_the_count_of_the_last_read() -> None:
    hints: list[int] = []

    async def fetch(room_id: str, progress: FetchProgress) -> Roster:
        hints.append(progress.size_hint)
        return Roster(room_id, (), 12_345, 1.0)

    service = SnapshotService(store=MemorySnapshotStore(), fetch=fetch, namespace="t")
    await service.get("r1")
    await service.get("r1", refresh=True)
    await service.get("r2")
    assert hints == [0, 12_345, 0]
