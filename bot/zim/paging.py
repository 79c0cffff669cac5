"""Reading a whole room: two paging chains, one from each end of the list, that meet in the middle.

Pagination is a sequential chain of round trips, so one chain is bound by latency. `Mode=1` reads the same
list newest-first with its own cursor; running it alongside `Mode=0` halves the wall time. The fetch is
complete when a chain reaches its end or reads a user the other chain already has. ZIM's `Count` is not
used to decide that: users leaving mid-fetch make it an unsafe finish line. A chain whose cursor repeats or
never ends stops; if both stop before meeting, ZimIncompleteRoster is raised. A partial list is never
returned as a Roster.
"""

from __future__ import annotations

import asyncio
import time

from bot.roster.model import RoomUser, Roster
from bot.zim.client import ZimClient
from bot.zim.errors import ZimIncompleteRoster
from bot.zim.models import Page
from bot.zim.room_id import validate_room_id
from bot.zim.wire import FIRST_CURSOR

OLDEST_FIRST = 0
NEWEST_FIRST = 1
MAX_PAGES = 2_000  # 1,000,000 users at 500 a page: far beyond any real room
MAX_IDLE_PAGES = 3  # consecutive pages that bring no user at all: the cursor is going nowhere


class FetchProgress:
    """What an in-flight fetch has read so far, for answers that can't wait for the whole room.

    `first_page` (join order) is set as soon as ZIM's first page arrives, together with `first_page_ready`.
    """

    __slots__ = ("count", "first_page", "first_page_ready", "users_read")

    def __init__(self) -> None:
        self.first_page: Page | None = None
        self.first_page_ready = asyncio.Event()
        self.users_read = 0
        self.count = 0

    def update(self, users_read: int, count: int) -> None:
        self.users_read = users_read
        self.count = count


class _Chain:
    __slots__ = ("cursors", "ended", "idle_pages", "ids", "mode", "pages", "stalled", "users")

    def __init__(self, mode: int) -> None:
        self.mode = mode
        self.users: list[RoomUser] = []
        self.ids: set[str] = set()
        self.cursors: set[str] = set()
        self.pages = 0
        self.idle_pages = 0
        self.ended = False
        self.stalled: str | None = None


class _Meeting:
    """Shared state of the two chains of one fetch."""

    def __init__(self, room_id: str, first: Page) -> None:
        self.room_id = room_id
        self.forward = _Chain(OLDEST_FIRST)
        self.backward = _Chain(NEWEST_FIRST)
        self.count = first.count
        self.users_read = 0
        self.met = False
        self.failure: Exception | None = None
        self.request_ids: list[str] = []
        self.done = asyncio.Event()
        self.add(self.forward, first, sent_cursor=FIRST_CURSOR)

    def other(self, chain: _Chain) -> _Chain:
        return self.backward if chain is self.forward else self.forward

    def add(self, chain: _Chain, page: Page, *, sent_cursor: str) -> None:
        chain.pages += 1
        chain.cursors.add(sent_cursor)
        self.request_ids.append(page.request_id)
        self.count = page.count
        other = self.other(chain)
        read_before = self.users_read
        for user in page.users:
            if user.user_id in chain.ids:
                continue  # the list shifted under us: someone left before our cursor
            if user.user_id in other.ids:
                self.met = True
                continue
            chain.ids.add(user.user_id)
            chain.users.append(user)
            self.users_read += 1
        chain.idle_pages = 0 if self.users_read > read_before or self.met else chain.idle_pages + 1
        chain.ended = page.next_flag is None
        self._settle()

    def stall(self, chain: _Chain, reason: str) -> None:
        chain.stalled = reason
        self._settle()

    def fail(self, error: Exception) -> None:
        self.failure = self.failure or error
        self.done.set()

    def _settle(self) -> None:
        both_stalled = self.forward.stalled is not None and self.backward.stalled is not None
        if self.met or self.forward.ended or self.backward.ended or both_stalled:
            self.done.set()

    @property
    def complete(self) -> bool:
        return self.met or self.forward.ended or self.backward.ended

    def cursor_problem(self, chain: _Chain, cursor: str) -> str | None:
        if cursor in chain.cursors:
            return "ZIM's paging cursor repeated"
        if chain.idle_pages >= MAX_IDLE_PAGES or chain.pages + self.other(chain).pages >= MAX_PAGES:
            return "ZIM's paging cursor did not end"
        return None

    def roster(self, *, being_destroyed: bool) -> Roster:
        users = list(self.forward.users)
        users.extend(reversed(self.backward.users))
        return Roster(
            room_id=self.room_id,
            users=tuple(users),
            reported_count=self.count,
            fetched_at=time.time(),
            pages=self.forward.pages + self.backward.pages,
            being_destroyed=being_destroyed,
            request_ids=tuple(self.request_ids),
        )


async def fetch_roster(
    client: ZimClient,
    room_id: str,
    *,
    progress: FetchProgress | None = None,
) -> Roster:
    """Every user in `room_id`, in join order. Raises a ZimError subclass; never a partial list."""
    validate_room_id(room_id)
    first = await client.query_page(room_id, mode=OLDEST_FIRST, cursor=FIRST_CURSOR)
    meeting = _Meeting(room_id, first)
    if progress is not None:
        progress.update(meeting.users_read, meeting.count)
        progress.first_page = first
        progress.first_page_ready.set()
    if first.next_flag is None:
        return meeting.roster(being_destroyed=first.being_destroyed)

    async def follow(chain: _Chain, cursor: str) -> None:
        try:
            while not meeting.done.is_set():
                problem = meeting.cursor_problem(chain, cursor)
                if problem:
                    meeting.stall(chain, problem)
                    return
                page = await client.query_page(room_id, mode=chain.mode, cursor=cursor)
                meeting.add(chain, page, sent_cursor=cursor)
                if progress is not None:
                    progress.update(meeting.users_read, meeting.count)
                if page.next_flag is None:
                    return
                cursor = page.next_flag
        except Exception as error:  # a chain's failure is the fetch's failure, raised below
            meeting.fail(error)

    chains = [
        asyncio.create_task(follow(meeting.forward, first.next_flag)),
        asyncio.create_task(follow(meeting.backward, FIRST_CURSOR)),
    ]
    try:
        await meeting.done.wait()
    finally:
        # The chain that did not finish may have a request in flight; it is no longer needed.
        for task in chains:
            task.cancel()
        await asyncio.gather(*chains, return_exceptions=True)
    if meeting.failure is not None:
        raise meeting.failure
    if not meeting.complete:
        reason = meeting.forward.stalled or meeting.backward.stalled
        raise ZimIncompleteRoster(
            f"{reason}, so only {meeting.users_read:,} of about {meeting.count:,} users could be read; "
            "the list is incomplete.",
            users_read=meeting.users_read,
            users_expected=meeting.count,
            request_id=meeting.request_ids[-1] if meeting.request_ids else None,
        )
    return meeting.roster(being_destroyed=False)
