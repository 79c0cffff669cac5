"""The driver's one wait: a chain holding its next page back for the other chain's pages already on their way.

The pages come from a gated source: each answer is released by the test, in the order it chooses, so the
moment one chain waits is set exactly (no timing). Room of 12 users, pages of 5: after the first page
(Mode=0, users 1-5) Mode=0 asks for 6-10 and Mode=1 for 12-8; when Mode=1's answer is taken first, 10 users
are read and Mode=0's page on its way certainly meets Mode=1's frontier, so Mode=1 waits for it.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.dev.zim_sandbox.rooms import SandboxRoom
from bot.roster.model import RoomUser, Roster
from bot.zim import fetch_roster
from bot.zim.errors import RoomNotFound, ZimError
from bot.zim.models import Page
from bot.zim.paging import NEWEST_FIRST, OLDEST_FIRST, FetchProgress
from bot.zim.wire import FIRST_CURSOR

LIMIT = 5
N = 12
SAFETY_TIMEOUT = 10.0  # a hang fails the test instead of the suite; a correct read ends in milliseconds


class GatedRoom:
    """A PageSource whose answers wait until the test releases them, with an error or the real page."""

    page_limit = LIMIT

    def __init__(self) -> None:
        self.room = SandboxRoom("r", [(f"u{i:02}", f"N{i}") for i in range(1, N + 1)])
        self.asked: list[tuple[int, str]] = []
        self._gates: dict[tuple[int, str], asyncio.Future[BaseException | None]] = {}
        self._new_request = asyncio.Event()

    async def query_page(self, room_id: str, *, mode: int, cursor: str) -> Page:
        key = (mode, cursor)
        self.asked.append(key)
        gate = self._gates.setdefault(key, asyncio.get_running_loop().create_future())
        self._new_request.set()
        error = await gate
        if error is not None:
            raise error
        offset = 0 if cursor == FIRST_CURSOR else int(cursor.split(":")[1])
        users, count, end = self.room.page(mode, offset, LIMIT)
        return Page(tuple(RoomUser(*u) for u in users), count, None if end >= count else f"{mode}:{end}", room_id)

    async def release(self, mode: int, cursor: str, error: BaseException | None = None) -> None:
        """Answer the request (mode, cursor) once it has been asked."""
        while (mode, cursor) not in self.asked:
            self._new_request.clear()
            await self._new_request.wait()
        self._gates[(mode, cursor)].set_result(error)


async def mode_1_waits(outcome: BaseException | None) -> tuple[asyncio.Task[Roster], GatedRoom]:
    """Start a read, bring Mode=1 to its wait (its first page taken), then answer Mode=0's page with `outcome`."""
    source = GatedRoom()
    taken = asyncio.Event()
    progress = FetchProgress(on_change=lambda p: taken.set() if p.users_read == 2 * LIMIT else None)
    read = asyncio.create_task(fetch_roster(source, "r", progress=progress))
    await source.release(OLDEST_FIRST, FIRST_CURSOR)
    await source.release(NEWEST_FIRST, FIRST_CURSOR)
    await taken.wait()  # Mode=1's page is taken: it now holds its next page back
    await source.release(OLDEST_FIRST, f"{OLDEST_FIRST}:{LIMIT}", outcome)
    return read, source


async def test_the_page_on_its_way_ends_the_read_and_the_waiting_chain_sends_nothing() -> None:
    read, source = await mode_1_waits(None)
    roster = await asyncio.wait_for(read, SAFETY_TIMEOUT)
    assert roster.complete and [u.user_id for u in roster.users] == [f"u{i:02}" for i in range(1, N + 1)]
    assert source.asked == [(0, FIRST_CURSOR), (0, "0:5"), (1, FIRST_CURSOR)]


async def test_a_zim_failure_of_the_awaited_page_ends_the_read_with_that_error() -> None:
    read, source = await mode_1_waits(ZimError("request failed, server busy", code=1, request_id="rq-7"))
    with pytest.raises(ZimError, match="server busy"):
        await asyncio.wait_for(read, SAFETY_TIMEOUT)
    assert len(source.asked) == 3


async def test_a_room_destroyed_under_the_awaited_page_ends_the_read_incomplete() -> None:
    read, source = await mode_1_waits(RoomNotFound("room does not exist", code=660300001))
    roster = await asyncio.wait_for(read, SAFETY_TIMEOUT)
    assert not roster.complete and len(roster.users) == 2 * LIMIT
    assert len(source.asked) == 3
