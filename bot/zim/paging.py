"""Reading a whole room: two paging chains, one from each end of ZIM's list, that meet in the middle.

Pagination is a sequential chain of round trips, so one chain is bound by latency; `Mode=1` reads the same
list newest-first with its own cursor, and running it alongside `Mode=0` halves the wall time.

The list moves while it is read (zim-api.md §5b): ZIM orders it by login time and the cursors are assumed
to be offsets, so a leave before a chain's cursor makes that chain skip a user, a join (or reconnect) makes
the newest-first chain re-read one, and a reconnecting user is seen by both chains at different places.
So this module never treats "a user the other chain has" as the end. The chains have **met** only when
their reading sequences overlap *at both frontiers*: the last j users one chain received are, in reverse,
the last j users the other received. A chain that reaches the end of its order also ends the read.

Everything a read sees that a still room would not show is a **sign of change**: `Count` moving between
pages, a chain receiving a user it already has (its page shifted), a user of the other chain outside the
meeting overlap (a reconnect, or a shifted frontier), a room destroyed part-way. A roster is **complete**
only when there was no sign and the users read equal ZIM's final `Count`; otherwise it says why, with the
numbers. A still room is always complete. The one change no client can see is documented in
docs/consistency.md: a leave inside the first page paired with a join, both between the first page and the
second chain's first page, looks exactly like a still room.

`PagingCore` is sans-IO (no awaits, no clock): the property tests drive it directly against a sandbox room
with every interleaving hypothesis picks. `fetch_roster` is the async driver over a ZimClient.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from bot.roster.model import IncompleteReason, RoomUser, Roster
from bot.roster.packed import GrowingUsers, joined
from bot.zim.errors import RoomNotFound
from bot.zim.models import Page
from bot.zim.room_id import validate_room_id
from bot.zim.wire import FIRST_CURSOR

__all__ = [
    "MAX_EMPTY_PAGES",
    "MAX_PAGES",
    "NEWEST_FIRST",
    "OLDEST_FIRST",
    "FetchProgress",
    "IncompleteReason",
    "PageSource",
    "PagingCore",
    "fetch_roster",
    "problem_sentence",
]

OLDEST_FIRST = 0
NEWEST_FIRST = 1
MAX_PAGES = 2_000  # 1,000,000 users at 500 a page: far beyond any real room
MAX_EMPTY_PAGES = 3  # consecutive empty pages with a fresh cursor: the cursor is going nowhere
MAX_REQUEST_IDS = 64  # kept for the audit line and support; the first and the last ones matter

Stop = Literal["", "single", "met", "end", "stalled", "destroyed"]
Sign = Literal["count_moved", "reread", "moved", "short_meeting", "destroyed"]
_ChainState = Literal["idle", "running", "ended", "stalled"]


def problem_sentence(reason: IncompleteReason, users_read: int, count: int) -> str:
    """The sentence an incomplete roster carries; every surface shows it as is (Slack, CSV, --json)."""
    if reason == "changed":
        return f"the room changed while it was read: {users_read:,} of {count:,} users"
    if reason == "destroyed":
        return f"the room is being destroyed: {users_read:,} of {count:,} read"
    if reason == "cursor_repeated":
        return f"ZIM's paging cursor repeated: {users_read:,} of {count:,} users read"
    return f"ZIM's paging cursor did not end: {users_read:,} of {count:,} users read"


class _IdHashes:
    """The set of user IDs a chain owns, kept as 64-bit hashes in one open-addressing array (16 bytes a user
    at the lowest load) instead of a set of str (~85 bytes a user): the largest part of a read's memory.

    Two different IDs with the same 64-bit hash (about 3 in 10^8 for a room of a million) would look like the
    same user; the read then counts a sign of change and says the list is incomplete, so a collision can make
    a roster wrongly *incomplete*, never wrongly complete or with a user listed twice.
    """

    __slots__ = ("_mask", "_slots", "_used")

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self._slots = array("q", [0]) * 1024
        self._mask = 1023
        self._used = 0

    def __len__(self) -> int:
        return self._used

    def __contains__(self, user_id: str) -> bool:
        key = hash(user_id) or 1  # 0 marks an empty slot
        slots, mask = self._slots, self._mask
        index = key & mask
        while (found := slots[index]) != 0:
            if found == key:
                return True
            index = (index + 1) & mask
        return False

    def add(self, user_id: str) -> None:
        if 3 * (self._used + 1) > 2 * len(self._slots):  # at most 2/3 full: short probe runs
            self._grow()
        self._insert(hash(user_id) or 1)

    def _insert(self, key: int) -> None:
        slots, mask = self._slots, self._mask
        index = key & mask
        while (found := slots[index]) != 0:
            if found == key:
                return
            index = (index + 1) & mask
        slots[index] = key
        self._used += 1

    def _grow(self) -> None:
        old = self._slots
        self._slots = array("q", [0]) * (2 * len(old))
        self._mask = len(self._slots) - 1
        self._used = 0
        for key in old:
            if key:
                self._insert(key)


class _Chain:
    """One paging chain: what it was first to read (packed), and the recent sequence of all it received."""

    __slots__ = (
        "cursor", "cursors", "empty_pages", "ids", "mode", "owned", "pages", "received", "stall", "state", "tail",
    )  # fmt: skip

    def __init__(self, mode: int, window: int) -> None:
        self.mode = mode
        self.owned = GrowingUsers()  # users this chain read first, in its own order
        self.ids = _IdHashes()  # their IDs' hashes: with `owned`, all a read keeps per user
        self.tail: deque[str] = deque(maxlen=window)  # the last IDs received, duplicates included
        self.received = 0
        self.cursors: set[str] = set()
        self.cursor = FIRST_CURSOR
        self.pages = 0
        self.empty_pages = 0
        self.state: _ChainState = "idle"
        self.stall: IncompleteReason | None = None


class PagingCore:
    """The sans-IO two-chain read. Drive it with `first_request`, `next_cursor`, `receive` and `gone`.

    Protocol: send `first_request()`; pass the answer to `receive`. Then, for each chain with a cursor from
    `next_cursor(mode)` (None: that chain stops), send it and `receive` the answer; at most one request per
    chain at a time. A 660300001 after the first page goes to `gone`. When `done`, `roster()` is the result.
    Answers that arrive after `done` are ignored.
    """

    def __init__(self, room_id: str, *, first_mode: int = OLDEST_FIRST, limit: int = 500) -> None:
        if first_mode not in (OLDEST_FIRST, NEWEST_FIRST):
            raise ValueError("first_mode must be 0 or 1")
        self.room_id = room_id
        self.first_mode = first_mode
        self.limit = limit
        window = 2 * limit + 1  # an overlap is never longer than one page; two leave room for short ones
        self._chains = (_Chain(OLDEST_FIRST, window), _Chain(NEWEST_FIRST, window))
        self.first_page: Page | None = None
        self.first_count = 0
        self.count = 0  # ZIM's Count on the last successful page received
        self.min_count = self.max_count = 0  # the range of Count over the successful pages
        self.signs: dict[Sign, int] = {}
        self.stop: Stop = ""
        self.overlap = 0
        self.request_ids: list[str] = []
        self.requests = 0
        self.changes = 0  # bumped on every state change, for progress watchers
        self._result: Roster | None = None

    # -- protocol ---------------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.stop != ""

    def first_request(self) -> tuple[int, str]:
        return self.first_mode, FIRST_CURSOR

    def next_cursor(self, mode: int) -> str | None:
        """The cursor chain `mode` should send next, or None when it must stop (stalls it if its cursor
        repeated or leads nowhere)."""
        chain = self._chains[mode]
        if self.done or chain.state != "running":
            return None
        problem: IncompleteReason | None = None
        if chain.pages and chain.cursor in chain.cursors:
            problem = "cursor_repeated"
        elif chain.empty_pages >= MAX_EMPTY_PAGES or self.requests >= MAX_PAGES:
            problem = "cursor_endless"
        if problem is not None:
            chain.state, chain.stall = "stalled", problem
            if self._other(chain).state != "running":
                self._finish("stalled")
            return None
        return chain.cursor

    def receive(self, mode: int, cursor: str, page: Page) -> None:
        """One answer of chain `mode` to `cursor` (the first page included)."""
        if self.done:
            return
        chain, other = self._chains[mode], self._other(self._chains[mode])
        self.requests += 1
        self.changes += 1
        if page.request_id and len(self.request_ids) < MAX_REQUEST_IDS:
            self.request_ids.append(page.request_id)
        if self.first_page is None:
            self._receive_first(chain, other, page)
            return
        if page.being_destroyed:
            self._sign("destroyed")
            self._finish("destroyed")  # `count` keeps the last real Count: "3,500 of 10,000 read"
            return
        chain.pages += 1
        chain.cursors.add(cursor)
        if page.count != self.first_count:
            self._sign("count_moved")
        self.min_count, self.max_count = min(self.min_count, page.count), max(self.max_count, page.count)
        self.count = page.count
        hits = self._take(chain, other, page.users)
        overlap = self._frontier_overlap(chain, other)
        if overlap and self.users_read + self._slack() < self.max_count:
            # The frontiers touch but the users read fall short of ZIM's Count by more than the changes
            # seen can explain: a burst of reconnects or joins brought one user to both frontiers (a
            # coincidence, as in "1,999 of 10,000"). Not a meeting: read on.
            self._sign("short_meeting")
            overlap = 0
        if overlap:
            # Cross-chain users are expected only inside the overlap: the page's last `overlap` users.
            outside = sum(1 for index in hits if index < len(page.users) - overlap)
            if outside:
                self._sign("moved", outside)
            self.overlap = overlap
            self._finish("met")
            return
        if hits:
            self._sign("moved", len(hits))  # a reconnect, or a frontier that shifted under the chains
        if page.next_flag is None:
            chain.state = "ended"
            self._finish("end")
            return
        chain.empty_pages = 0 if page.users else chain.empty_pages + 1
        chain.cursor = page.next_flag

    def cursor_before_receiving(self, mode: int, cursor: str, page: Page) -> str | None:
        """The cursor chain `mode` sends after its answer `page` (to `cursor`), when that is certain before the
        page is taken; else None, and the caller `receive`s first and asks `next_cursor` as usual.

        Certain means: `receive` cannot end the read nor `next_cursor` stop the chain. The only part that needs
        the page's users is the meeting, and it is ruled out while the users read, plus everything this page
        could add (each of its users at most once as a user and once as a sign of change), stay short of
        ZIM's Count; so this answers None from about two pages before the chains meet.
        """
        chain = self._chains[mode]
        flag = page.next_flag
        if self.done or self.first_page is None or chain.state != "running" or page.being_destroyed:
            return None
        if flag is None or not page.users or flag == cursor or flag in chain.cursors:
            return None
        if self.requests + 1 >= MAX_PAGES:
            return None
        most, least = max(self.max_count, page.count), min(self.min_count, page.count)
        signs = sum(times for sign, times in self.signs.items() if sign != "count_moved")
        reach = self.users_read + 2 * len(page.users) + (most - least) + signs + 1  # +1: a short_meeting sign
        return flag if reach < most else None

    def meeting_on_its_way(self, pages: int, *, not_taken: int = 0) -> bool:
        """Whether `pages` pages the other chain has already asked for end the read in a still room: with
        the users read (and `not_taken`, users this chain holds but has not taken yet) they exceed ZIM's
        Count, so they reach at least one user of this chain's frontier (the meeting). Counts them as full
        pages: a short one is the room's end, which ends the read too."""
        if self.done or self.first_page is None or pages <= 0:
            return False
        return self.users_read + not_taken + pages * self.limit > self.max_count

    def gone(self, mode: int) -> None:
        """660300001 after the first page: the room was destroyed while it was read."""
        del mode
        if not self.done:
            self._sign("destroyed")
            self._finish("destroyed")

    # -- what has been read (answers serve it while the read goes on) -----------------------------------

    @property
    def users_read(self) -> int:
        return len(self._chains[0].owned) + len(self._chains[1].owned)

    def oldest(self) -> Sequence[RoomUser]:
        """The users read so far from the oldest end, in join order (a prefix of the room, barring change)."""
        return self._chains[OLDEST_FIRST].owned

    def newest(self) -> Sequence[RoomUser]:
        """The users read so far from the newest end, most recent first."""
        return self._chains[NEWEST_FIRST].owned

    @property
    def changed(self) -> bool:
        return bool(self.signs)

    def chain_ended(self, mode: int) -> bool:
        """Chain `mode` read to the end of its order (its users are then the whole room in that order)."""
        return self._chains[mode].state == "ended"

    # -- the result -------------------------------------------------------------------------------------

    def roster(self, *, fetched_at: float) -> Roster:
        """The result, once `done`; assembled once (the chains' memory goes into it), the same thereafter."""
        if not self.done:
            raise RuntimeError("the read is not finished")
        if self._result is None:
            self._result = self._assemble(fetched_at)
        return self._result

    def _assemble(self, fetched_at: float) -> Roster:
        forward, backward = self._chains
        for chain in self._chains:  # drop the ID hashes before the result is assembled: a lower peak
            chain.ids.clear()
            chain.tail.clear()
        read = len(forward.owned) + len(backward.owned)
        reason = self.incomplete_reason(read)
        # The chains' packed users are released as they are copied: after this the read serves only the roster.
        users = joined(forward.owned, backward.owned, release=True)
        return Roster(
            room_id=self.room_id,
            users=users,
            reported_count=self.count,
            fetched_at=fetched_at,
            pages=self.requests,
            being_destroyed=bool(self.first_page and self.first_page.being_destroyed) or self.stop == "destroyed",
            request_ids=tuple(self.request_ids),
            complete=reason is None,
            problem="" if reason is None else problem_sentence(reason, read, self.count),
            incomplete_reason=reason,
        )

    def incomplete_reason(self, read: int) -> IncompleteReason | None:
        if self.stop == "destroyed":
            return "destroyed"
        if self.stop == "stalled":
            stalls = [chain.stall for chain in self._chains if chain.stall is not None]
            return "cursor_repeated" if "cursor_repeated" in stalls else "cursor_endless"
        if self.signs or read != self.count:
            return "changed"
        return None

    # -- internals --------------------------------------------------------------------------------------

    def _other(self, chain: _Chain) -> _Chain:
        return self._chains[1 - chain.mode]

    def _slack(self) -> int:
        """How many users the changes seen so far can account for (one per sign, one per unit of Count)."""
        spread = self.max_count - self.min_count
        return spread + sum(times for sign, times in self.signs.items() if sign != "count_moved")

    def _sign(self, sign: Sign, times: int = 1) -> None:
        self.signs[sign] = self.signs.get(sign, 0) + times

    def _finish(self, stop: Stop) -> None:
        self.stop = stop

    def _receive_first(self, chain: _Chain, other: _Chain, page: Page) -> None:
        self.first_page = page
        chain.pages = 1
        chain.cursors.add(FIRST_CURSOR)
        if page.being_destroyed:  # 660300008 on the first page: an empty room being destroyed, complete
            self.first_count = self.count = 0
            self._finish("single")
            return
        self.first_count = self.count = self.min_count = self.max_count = page.count
        self._take(chain, other, page.users)
        if page.next_flag is None:
            chain.state = "ended"
            self._finish("single")
            return
        chain.state, chain.cursor = "running", page.next_flag
        other.state, other.cursor = "running", FIRST_CURSOR

    def _take(self, chain: _Chain, other: _Chain, users: Sequence[RoomUser]) -> list[int]:
        """Keep the users new to both chains; return the page indexes of users the other chain owns."""
        hits: list[int] = []
        rereads = 0
        for index, user in enumerate(users):
            user_id = user.user_id
            chain.tail.append(user_id)
            chain.received += 1
            if user_id in chain.ids:
                rereads += 1  # the chain that read it sees it again: its page shifted
            elif user_id in other.ids:
                hits.append(index)
            else:
                chain.ids.add(user_id)
                chain.owned.append(user)
        if rereads:
            self._sign("reread", rereads)
        return hits

    def _frontier_overlap(self, chain: _Chain, other: _Chain) -> int:
        """j > 0 when the last j IDs `chain` received are the last j `other` received, reversed; else 0.

        That is the two reading sequences meeting end to end. A user both chains hold elsewhere (a reconnect
        seen at its old place and at the newest end) is not a meeting.
        """
        mine, theirs = chain.tail, other.tail
        if not mine or not theirs:
            return 0
        newest_mine = mine[-1]
        size = len(theirs)
        # Candidates: every place the frontier user sits in the other's tail (more than one after a re-read).
        for back in range(1, min(size, len(mine)) + 1):
            if theirs[size - back] != newest_mine:
                continue
            # theirs[-back] == mine[-1]; the overlap is mine[-back:] == reversed(theirs[-back:])
            if all(mine[len(mine) - back + k] == theirs[size - 1 - k] for k in range(back)):
                return back
        return 0


# -- progress -----------------------------------------------------------------------------------------


class FetchProgress:
    """What an in-flight read has so far, for answers that can't wait for the whole room.

    `first_page` (and `first_mode`) is set with `first_page_ready` as soon as ZIM's first page arrives.
    `oldest()` / `newest()` are the users read so far from each end; `on_change` (optional) is called after
    every page (the CLI's progress bar, the Redis progress writer).
    """

    __slots__ = (
        "_core", "_remote", "count", "first_mode", "first_page", "first_page_ready", "on_change", "size_hint",
        "users_read",
    )  # fmt: skip

    def __init__(self, on_change: Callable[[FetchProgress], None] | None = None) -> None:
        self.first_page: Page | None = None
        self.first_mode = OLDEST_FIRST
        self.size_hint = 0  # the room's Count when it was last read, if known: see fetch_roster
        self.first_page_ready = asyncio.Event()
        self.users_read = 0
        self.count = 0
        self.on_change = on_change
        self._core: PagingCore | None = None
        self._remote: Sequence[RoomUser] = ()  # another replica's first page (see adopt)

    def watch(self, core: PagingCore) -> None:
        self._core = core
        self.first_mode = core.first_mode

    def update(self) -> None:
        core = self._core
        if core is None:
            return
        self.users_read, self.count = core.users_read, core.count
        if self.first_page is None and core.first_page is not None:
            self.first_page = core.first_page
            self.first_page_ready.set()
        if self.on_change is not None:
            self.on_change(self)

    def adopt(self, *, first_page: Page, first_mode: int, users_read: int) -> None:
        """Progress of a read another replica is doing (bot/state/progress.py): its first page and counts."""
        if self._core is not None:
            return
        self.first_mode, self._remote = first_mode, first_page.users
        self.users_read, self.count = users_read, first_page.count
        if self.first_page is None:
            self.first_page = first_page
            self.first_page_ready.set()

    def oldest(self) -> Sequence[RoomUser]:
        if self._core is not None:
            return self._core.oldest()
        return self._remote if self.first_mode == OLDEST_FIRST else ()

    def newest(self) -> Sequence[RoomUser]:
        if self._core is not None:
            return self._core.newest()
        return self._remote if self.first_mode == NEWEST_FIRST else ()

    @property
    def changed(self) -> bool:
        """A sign of change was already seen: partial answers say the list may not add up."""
        return self._core is not None and self._core.changed

    def chain_ended(self, mode: int) -> bool:
        return self._core is not None and self._core.chain_ended(mode)


# -- the async driver ---------------------------------------------------------------------------------


class PageSource(Protocol):
    """What the driver needs of a ZimClient (tests pass stubs)."""

    page_limit: int

    async def query_page(self, room_id: str, *, mode: int, cursor: str) -> Page: ...


async def fetch_roster(
    client: PageSource,
    room_id: str,
    *,
    progress: FetchProgress | None = None,
    first_mode: int = OLDEST_FIRST,
    size_hint: int = 0,
    clock: Callable[[], float] = time.time,
) -> Roster:
    """Every user in `room_id`, in join order, and whether that list is complete.

    Raises a ZimError subclass when ZIM fails (a 660300001 on the first page is RoomNotFound); a read that
    ZIM answered always returns a Roster, complete or saying why not. `first_mode=NEWEST_FIRST` reads the
    newest end first (a `--reverse` answer is ready after one round trip). `size_hint` is the room's Count
    when it was last read (0: not known): above one page, the other chain's first page goes out with the
    first one instead of one round trip later.
    """
    validate_room_id(room_id)
    core = PagingCore(room_id, first_mode=first_mode, limit=client.page_limit)
    if progress is not None:
        progress.watch(core)

    asked = [0, 0]  # per chain mode: pages asked for whose answer is not taken yet
    taken = [0, 0]  # per chain mode: answers taken
    # Set when a chain takes an answer or stops. One waiter at most: a chain waits only with nothing asked
    # for itself, and then the other chain has nothing to wait for.
    progressed = asyncio.Event()
    failed = False  # a chain raised: the read fails with its error, and a waiting chain sends nothing more

    def send(chain_mode: int, cursor: str) -> asyncio.Task[Page]:
        asked[chain_mode] += 1
        return asyncio.create_task(client.query_page(room_id, mode=chain_mode, cursor=cursor))

    def take(chain_mode: int) -> None:
        asked[chain_mode] -= 1
        taken[chain_mode] += 1
        progressed.set()

    async def answers_asked_for(other: int) -> None:
        """Wait until the pages chain `other` has asked for now are taken (or it stops, or the read ends)."""
        target = taken[other] + asked[other]
        while taken[other] < target and asked[other] and not core.done and not failed:
            progressed.clear()
            await progressed.wait()

    mode, cursor = core.first_request()
    # A room known to be big has two chains anyway: starting the second now saves a round trip less one send
    # slot; in a room that shrank to one page since, it costs one request.
    head_start = send(1 - mode, FIRST_CURSOR) if size_hint > client.page_limit else None
    try:
        core.receive(mode, cursor, await client.query_page(room_id, mode=mode, cursor=cursor))
    except BaseException:
        _drop(head_start)
        raise
    if progress is not None:
        progress.update()
    if core.done:
        _drop(head_start)
        return core.roster(fetched_at=clock())

    async def follow(chain_mode: int, sent: asyncio.Task[Page] | None = None) -> None:
        nonlocal failed
        other = 1 - chain_mode
        waited = False

        async def next_request() -> tuple[str | None, asyncio.Task[Page] | None]:
            nonlocal waited
            following = core.next_cursor(chain_mode)
            started = following not in (None, FIRST_CURSOR)
            if started and not waited and core.meeting_on_its_way(asked[other]):
                # The pages the other chain asked for end the read in a still room: one sent now would arrive
                # after them, spent for nothing. Waited for once per chain: in a room that changed meanwhile
                # this chain lost only the other chain's answers' time. A chain's first page is always sent:
                # it is what checks the other chain's reading of the room's far end.
                waited = True
                await answers_asked_for(other)
                following = None if failed else core.next_cursor(chain_mode)
            return following, None if following is None else send(chain_mode, following)

        cursor: str | None
        request: asyncio.Task[Page] | None = None
        try:
            if sent is not None and core.next_cursor(chain_mode) == FIRST_CURSOR:
                cursor, request = FIRST_CURSOR, sent  # the head start: this chain's first page, already sent
            else:
                _drop(sent)
                if sent is not None:
                    asked[chain_mode] -= 1
                cursor, request = await next_request()
            while request is not None and cursor is not None:
                try:
                    page = await request
                except RoomNotFound:
                    core.gone(chain_mode)
                    return
                # Paging is a chain of round trips: far from the meeting the next cursor is certain at once, so
                # it goes out before this page is taken, and taking it overlaps the next round trip.
                ahead = core.cursor_before_receiving(chain_mode, cursor, page)
                if ahead is not None and core.meeting_on_its_way(asked[other], not_taken=len(page.users)):
                    # The other chain has sent ahead too (two pages asked for) or its page is short: the page
                    # after this one may be needless, so it is left to next_request once this one is taken.
                    ahead = None
                request = None if ahead is None else send(chain_mode, ahead)
                if request is not None:
                    await asyncio.sleep(0)  # let the request reach its send slot before the CPU work below
                core.receive(chain_mode, cursor, page)
                take(chain_mode)
                if progress is not None:
                    progress.update()
                if request is None:
                    ahead, request = await next_request()
                cursor = ahead
        except BaseException:
            failed = True
            raise
        finally:
            _drop(request)
            asked[chain_mode] = 0  # a stopped chain's requests are dropped, never taken
            progressed.set()

    # The first chain's next page and the other chain's first page (if not sent already) go out together.
    tasks = [asyncio.create_task(follow(first_mode)), asyncio.create_task(follow(1 - first_mode, head_start))]
    try:
        pending: set[asyncio.Task[None]] = set(tasks)
        while pending and not core.done:
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                error = task.exception()
                if error is not None:
                    raise error
    finally:
        # The chain that did not finish may have a request in flight; it is no longer needed.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return core.roster(fetched_at=clock())


def _drop(request: asyncio.Task[Page] | None) -> None:
    """Cancel a request no longer needed; if it already failed, its error is read here, never reported later."""
    if request is None:
        return
    request.cancel()
    if request.done() and not request.cancelled():
        request.exception()


@dataclass(frozen=True, slots=True)
class ReadSummary:
    """What the audit line and the shortfall histogram record of one read (see bot/roster/service.py)."""

    complete: bool
    shortfall: int
    reason: IncompleteReason | None

    @classmethod
    def of(cls, roster: Roster) -> ReadSummary:
        return cls(roster.complete, roster.shortfall, roster.incomplete_reason)
