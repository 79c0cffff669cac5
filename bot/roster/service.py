"""Roster snapshots: a TTL store bounded by users held, and single-flight fetching on top of it.

Paging clicks, repeated commands and (with a shared store) other replicas reuse a snapshot instead of
re-reading the room; concurrent requests for one room share one fetch. Failures are never stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache, TTLCache

from bot.observability.metrics import (
    FETCH_OUTCOMES,
    FETCH_SECONDS,
    FETCHES_IN_FLIGHT,
    ROSTER_READS,
    ROSTER_SHORTFALL,
    SNAPSHOT_LOOKUPS,
)
from bot.roster.diff import KeptChanges
from bot.roster.model import RoomUser, Roster
from bot.roster.packed import PackedUsers
from bot.roster.reads import ReadQueue, ReadSlots, Ticket
from bot.state.history import DEFAULT_HISTORY_HOURS, HistoryStore
from bot.state.leases import FetchLeases, LocalLeases
from bot.state.progress import ProgressBoard, SharedProgress
from bot.state.snapshots import SnapshotStore
from bot.zim.errors import RoomNotFound
from bot.zim.models import Page
from bot.zim.paging import NEWEST_FIRST, OLDEST_FIRST, FetchProgress

log = logging.getLogger(__name__)

FOLLOW_TIMEOUT_SECONDS = 90.0  # a follower waits this long for another replica's fetch (100k users at 200 ms: ~21 s)
PUBLISH_EVERY_SECONDS = 1.0  # a leader shares its progress this often (after the first page, at once)
FOLLOW_POLL_SECONDS = 0.1  # a follower looks for the leader's progress this often
READ_DEADLINE_SECONDS = 300.0  # ROOMUSERS_READ_DEADLINE_SECONDS: a read still going then ends as incomplete
MAX_CONCURRENT_READS = 4  # ROOMUSERS_MAX_CONCURRENT_READS
REFRESH_MIN_SECONDS = 10.0  # ROOMUSERS_REFRESH_MIN_SECONDS
ABSENT_SECONDS = 10.0  # a 660300001 is remembered this long per (profile, room): a mistyped ID spends no budget


@dataclass(frozen=True, slots=True)
class Snapshot:
    roster: Roster
    from_cache: bool
    refresh_declined: bool = False  # a Refresh came sooner than ROOMUSERS_REFRESH_MIN_SECONDS after this read


@dataclass(frozen=True, slots=True)
class BaselineNote:
    """What this replica learnt about a room's baseline when its read of `fetched_at` ended."""

    fetched_at: float
    had_earlier: bool  # an earlier complete read was kept as the baseline when this read was made
    kept: bool  # this read became the room's baseline


@dataclass(frozen=True, slots=True)
class RoomRead:
    """A read of a room under way, as answers see it: what has arrived so far, and the whole roster at the end."""

    _task: asyncio.Task[Roster]
    _progress: FetchProgress
    _ticket: Ticket | None = None
    _queue: ReadSlots | None = None
    started_at: float = 0.0  # when the read was started (epoch seconds)

    @property
    def position(self) -> int | None:
        """The read's place in line for a free reader (1 = next), or None once it is reading."""
        if self._ticket is None or self._queue is None:
            return None
        return self._queue.position(self._ticket)

    @property
    def readers_busy(self) -> int:
        return self._queue.running if self._queue is not None else 0

    @property
    def done(self) -> bool:
        return self._task.done()

    @property
    def users_read(self) -> int:
        return self._progress.users_read

    @property
    def count(self) -> int:
        """ZIM's latest Count for the room (0 before the first page)."""
        return self._progress.count

    @property
    def first_mode(self) -> int:
        """The order the read started from: OLDEST_FIRST, or NEWEST_FIRST for a `--reverse` first requester."""
        return self._progress.first_mode

    @property
    def first_page(self) -> Page | None:
        """ZIM's first page (of `first_mode`'s order), once it has arrived."""
        return self._progress.first_page

    @property
    def changed(self) -> bool:
        """The read has already seen a sign that the room changed under it."""
        return self._progress.changed

    def oldest(self) -> Sequence[RoomUser]:
        """The users read so far from the oldest end, in join order (grows while the read goes on)."""
        return self._progress.oldest()

    def newest(self) -> Sequence[RoomUser]:
        """The users read so far from the newest end, most recent first (grows while the read goes on)."""
        return self._progress.newest()

    def ended(self, *, newest_first: bool) -> bool:
        """Whether the chain of that order has read to its end (its sequence is the whole room in that order)."""
        return self._progress.chain_ended(NEWEST_FIRST if newest_first else OLDEST_FIRST)

    async def first_page_or_end(self) -> None:
        """Wait until the first page has arrived, the read has ended, or it had to wait in line for a reader."""
        ready = asyncio.ensure_future(self._progress.first_page_ready.wait())
        waits: set[asyncio.Future[Any]] = {ready, self._task}
        if self._ticket is not None:
            waits.add(asyncio.ensure_future(self._ticket.queued.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits - {self._task}:
                waiting.cancel()

    async def wait(self, timeout: float) -> None:  # noqa: ASYNC109  # a progress tick, not an error deadline
        """Wait until the read ends, or at most `timeout` seconds."""
        await asyncio.wait({self._task}, timeout=timeout)

    async def roster(self) -> Roster:
        # shield: a waiter that gives up must not cancel the fetch the others are waiting for.
        return await asyncio.shield(self._task)


Fetch = Callable[[str, FetchProgress], Awaitable[Roster]]


class SnapshotService:
    """Cache-aside reads with single-flight: N concurrent requests for one room cause one fetch."""

    def __init__(
        self,
        *,
        store: SnapshotStore,
        fetch: Fetch,
        namespace: str,
        leases: FetchLeases | None = None,
        follow_timeout: float | None = None,
        timer: Callable[[], float] = time.monotonic,
        progress_board: ProgressBoard | None = None,
        profile: str = "",
        max_concurrent_reads: int = MAX_CONCURRENT_READS,
        read_deadline: float = READ_DEADLINE_SECONDS,
        refresh_min: float = REFRESH_MIN_SECONDS,
        clock: Callable[[], float] = time.time,
        read_slots: ReadSlots | None = None,
        history: HistoryStore | None = None,
        history_hours: float = DEFAULT_HISTORY_HOURS,
    ) -> None:
        self._store = store
        self._history = history
        self._history_hours = history_hours
        self._board = progress_board
        self._fetch = fetch
        self._namespace = namespace
        self._leases = leases or LocalLeases()
        self._follow_timeout = follow_timeout if follow_timeout is not None else FOLLOW_TIMEOUT_SECONDS
        self._profile = profile
        # Shared by every replica when given (bot/state/readslots.py); else this replica's own line.
        self._queue = read_slots or ReadQueue(max_concurrent_reads, profile=profile)
        self._read_deadline = read_deadline
        self._refresh_min = refresh_min
        self._clock = clock
        self._reads: dict[str, RoomRead] = {}
        self._absent: TTLCache[str, RoomNotFound] = TTLCache(maxsize=4096, ttl=ABSENT_SECONDS, timer=timer)
        # The Count of each room's last read here, beyond its snapshot: a read of a room known to be big
        # starts both paging chains at once (fetch_roster's size_hint).
        self._sizes: LRUCache[str, int] = LRUCache(maxsize=4096)
        self._baselines: LRUCache[str, BaselineNote] = LRUCache(maxsize=4096)

    @property
    def refresh_min(self) -> float:
        return self._refresh_min

    def key(self, room_id: str) -> str:
        return f"{self._namespace}:{room_id}"

    async def begin(
        self,
        room_id: str,
        *,
        refresh: bool = False,
        first_mode: int = OLDEST_FIRST,
        on_change: Callable[[FetchProgress], None] | None = None,
    ) -> Snapshot | RoomRead:
        """The cached snapshot, or the fetch that will produce one (joining a fetch already under way).

        A cached *incomplete* roster is a miss here: a new command or mention reads the room again (clicks
        on an answer use `cached`, which returns it, so paging stays on the list the user saw). A room ZIM
        said does not exist (660300001) raises RoomNotFound again for ABSENT_SECONDS, unless `refresh`.
        """
        key = self.key(room_id)
        self._raise_if_absent(room_id, refresh=refresh)
        if key not in self._reads:
            cached = await self._store.get(key)
            SNAPSHOT_LOOKUPS.labels("miss" if cached is None else "hit" if cached.complete else "incomplete").inc()
            if cached is not None:  # another replica's read, maybe: its size is known now
                self._sizes[key] = cached.reported_count
            if cached is not None and cached.complete and not refresh:
                return Snapshot(cached, from_cache=True)
            # A Refresh of a complete read younger than ROOMUSERS_REFRESH_MIN_SECONDS is answered from it.
            if cached is not None and cached.complete and self._clock() - cached.fetched_at < self._refresh_min:
                return Snapshot(cached, from_cache=True, refresh_declined=True)
        return self.start_read(room_id, refresh=refresh, first_mode=first_mode, on_change=on_change)

    def start_read(
        self,
        room_id: str,
        *,
        refresh: bool = False,
        first_mode: int = OLDEST_FIRST,
        on_change: Callable[[FetchProgress], None] | None = None,
    ) -> RoomRead:
        """The fetch of `room_id` under way, or a new one (the cache is not consulted).

        `first_mode` (the first requester's order) decides which end a new read starts from; `on_change` is
        called after every page of a new read (a progress bar).
        """
        key = self.key(room_id)
        self._raise_if_absent(room_id, refresh=refresh)
        # Synchronous: nothing can start a second fetch between this check and the insert.
        flight = self._reads.get(key)
        if flight is None:
            progress = FetchProgress(on_change)
            progress.first_mode = first_mode
            progress.size_hint = self._sizes.get(key, 0)
            ticket = Ticket()
            task = asyncio.create_task(self._lead_or_follow(key, room_id, progress, ticket, refresh=refresh))
            flight = RoomRead(task, progress, ticket, self._queue, started_at=self._clock())
            self._reads[key] = flight
            task.add_done_callback(lambda done: self._forget(key, done))
        return flight

    async def get(self, room_id: str, *, refresh: bool = False) -> Snapshot:
        begun = await self.begin(room_id, refresh=refresh)
        if isinstance(begun, Snapshot):
            return begun
        return Snapshot(await begun.roster(), from_cache=False)

    async def aclose(self) -> None:
        """Stop fetches still under way (at shutdown, after answers had their grace period)."""
        await self._cancel(list(self._reads.values()))

    async def cancel_reads(self, room_ids: Iterable[str]) -> None:
        """Stop the reads of these rooms still under way, and wait until they have ended."""
        await self._cancel([read for room_id in room_ids if (read := self.read_under_way(room_id)) is not None])

    @staticmethod
    async def _cancel(reads: list[RoomRead]) -> None:
        for read in reads:
            read._task.cancel()
        await asyncio.gather(*(read._task for read in reads), return_exceptions=True)

    def read_under_way(self, room_id: str) -> RoomRead | None:
        return self._reads.get(self.key(room_id))

    async def cached(self, room_id: str) -> Roster | None:
        roster = await self._store.get(self.key(room_id))
        SNAPSHOT_LOOKUPS.labels("miss" if roster is None else "hit").inc()
        return roster

    @property
    def history_hours(self) -> float:
        """How long a room's last complete read is kept as its baseline (ROOMUSERS_HISTORY_HOURS)."""
        return self._history_hours

    def _changes_keys(self, changes_id: str) -> tuple[str, str]:
        # Not under `namespace:` (room keys): no room ID can name these.
        base = f"changes:{self._namespace}:{changes_id}"
        return f"{base}:joined", f"{base}:left"

    async def keep_changes(self, changes_id: str, room_id: str, changes: KeptChanges) -> bool:
        """A computed diff, kept like a snapshot (same store and TTL) so its pages can be clicked through.

        False when the store did not keep both halves (too big for it): the answer then offers no paging."""
        joined_key, left_key = self._changes_keys(changes_id)
        joined = Roster(room_id, changes.joined, len(changes.joined), changes.read_at)
        left = Roster(room_id, changes.left, len(changes.left), changes.since)
        return await self._store.put(joined_key, joined) and await self._store.put(left_key, left)

    async def kept_changes(self, changes_id: str, *, users_now: int | None) -> KeptChanges | None:
        """The diff `keep_changes` stored, or None once it has expired."""
        joined_key, left_key = self._changes_keys(changes_id)
        joined, left = await self._store.get(joined_key), await self._store.get(left_key)
        if joined is None or left is None:
            return None
        return KeptChanges(joined.users, left.users, left.fetched_at, joined.fetched_at, users_now)

    async def baseline(self, room_id: str) -> Roster | None:
        """The room's last complete read (on any replica, by any command, click or watch), if still kept."""
        if self._history is None:
            return None
        return await self._history.get(self.key(room_id))

    async def offers_changes(self, room_id: str, shown: Roster) -> bool:
        """Whether an answer showing `shown` gets a What changed button: a baseline is kept and it is not
        `shown` as the room's very first kept read (nothing earlier to compare with). One EXISTS, nothing read."""
        if self._history is None:
            return False
        key = self.key(room_id)
        note = self._baselines.get(key)
        if note is not None and note.fetched_at == shown.fetched_at and not note.had_earlier:
            return False
        return await self._has_history(key)

    def kept_as_baseline(self, room_id: str, read: Roster) -> bool:
        """Whether `read` became the room's baseline (as far as this replica knows: another replica's read, yes)."""
        if self._history is None or not read.complete:
            return False
        note = self._baselines.get(self.key(room_id))
        return note.kept if note is not None and note.fetched_at == read.fetched_at else True

    async def _has_history(self, key: str) -> bool:
        assert self._history is not None
        try:
            return await self._history.contains(key)
        except Exception:  # a button is never worth failing an answer for
            log.warning("could not tell whether %r has a baseline", key, exc_info=True)
            return False

    async def _remember(self, key: str, roster: Roster, *, had_earlier: bool | None = None) -> None:
        """A complete read becomes the room's baseline (replacing the last); an incomplete one never does.

        `had_earlier`: whether a baseline was kept before this read (looked up here when not given)."""
        if self._history is None or not roster.complete:
            return
        if had_earlier is None:
            had_earlier = await self._has_history(key)
        try:
            kept = await self._history.put(key, roster)
        except Exception:  # the read itself succeeded: answer it, without a new baseline
            log.warning("could not keep the read of %r as its baseline", key, exc_info=True)
            kept = False
        self._baselines[key] = BaselineNote(roster.fetched_at, had_earlier, kept)

    def _raise_if_absent(self, room_id: str, *, refresh: bool) -> None:
        if refresh:
            self._absent.pop(room_id, None)  # an explicit retry asks ZIM again
            return
        absent = self._absent.get(room_id)
        if absent is not None:
            SNAPSHOT_LOOKUPS.labels("absent").inc()
            raise absent

    def _forget(self, key: str, task: asyncio.Task[Roster]) -> None:
        self._reads.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here so a fetch whose waiters all left does not warn

    async def _lead_or_follow(
        self, key: str, room_id: str, progress: FetchProgress, ticket: Ticket, *, refresh: bool
    ) -> Roster:
        """Fetch the room, unless another replica is already fetching it: then wait for its snapshot.

        Runs inside the flight's task, which is where a lease must be taken (it is renewed while this runs).
        """
        started = time.time()
        lease = await self._leases.acquire(key)
        if lease is None:
            # Looked up before the leader's read is kept, which would make it true for the room's first read too.
            had_earlier = await self._has_history(key) if self._history is not None else False
            # Without a refresh any snapshot the leader stores will do; with one, only a newer one.
            newer_than = started if refresh else 0.0
            watcher = asyncio.create_task(self._watch_leader(key, progress)) if self._board is not None else None
            try:
                # A leader still holding the lease is alive (it renews it), perhaps waiting in the shared line
                # for a reader: keep waiting for it rather than read the same room again, in a slot of that line.
                while lease is None:
                    roster = await self._leases.wait_for_leader(
                        key, read=lambda: self._store.get(key), newer_than=newer_than, timeout=self._follow_timeout
                    )
                    if roster is not None:
                        self._sizes[key] = roster.reported_count
                        known = self._baselines.get(key)
                        if roster.complete and (known is None or known.fetched_at != roster.fetched_at):
                            self._baselines[key] = BaselineNote(roster.fetched_at, had_earlier, kept=True)
                        return roster
                    lease = await self._leases.acquire(key)  # None: the lease is still held
            finally:
                if watcher is not None:
                    watcher.cancel()
                    await asyncio.gather(watcher, return_exceptions=True)
        publisher = asyncio.create_task(self._publish(key, progress)) if self._board is not None else None
        try:
            async with self._queue.slot(ticket):
                roster = await self._read(room_id, progress)
            # Once per read, by the replica that read it (a follower's roster was counted by its leader).
            ROSTER_SHORTFALL.observe(roster.shortfall)
            ROSTER_READS.labels(roster.incomplete_reason or "complete").inc()
            self._sizes[key] = roster.reported_count
            await self._store.put(key, roster)
            await self._remember(key, roster)
            return roster
        finally:
            if publisher is not None and self._board is not None:
                publisher.cancel()
                await asyncio.gather(publisher, return_exceptions=True)
                await self._board.clear(key)
            if lease is not None:
                await lease.release()

    async def _read(self, room_id: str, progress: FetchProgress) -> Roster:
        """The ZIM read itself, under the read deadline, counted by outcome."""
        outcome = "failed"
        try:
            with FETCHES_IN_FLIGHT.labels(self._profile).track_inprogress(), FETCH_SECONDS.time():
                try:
                    async with asyncio.timeout(self._read_deadline):
                        roster = await self._fetch(room_id, progress)
                except TimeoutError:
                    roster = self._cut_short(room_id, progress)
                except RoomNotFound as error:
                    self._absent[room_id] = error
                    raise
            outcome = "complete" if roster.complete else "incomplete"
            return roster
        except asyncio.CancelledError:
            outcome = ""  # shutdown or a cancelled room: not an outcome of the read
            raise
        finally:
            if outcome:
                FETCH_OUTCOMES.labels(self._profile, outcome).inc()

    def _cut_short(self, room_id: str, progress: FetchProgress) -> Roster:
        """What a read stopped at ROOMUSERS_READ_DEADLINE_SECONDS had read: an incomplete roster, never a whole one.

        The two chains never hold a user twice, so the oldest-first users then the newest-first ones (turned
        round) are the users read, in join order."""
        users = [*progress.oldest(), *reversed(progress.newest())]
        problem = (
            f"the read was stopped after {self._read_deadline:g} s (ROOMUSERS_READ_DEADLINE_SECONDS): "
            f"{len(users):,} of {progress.count:,} users read"
        )
        return Roster(
            room_id=room_id,
            users=users,
            reported_count=progress.count,
            fetched_at=time.time(),
            complete=False,
            problem=problem,
            incomplete_reason="deadline",
        )

    async def _publish(self, key: str, progress: FetchProgress) -> None:
        """Share this read's progress for replicas waiting on it: at the first page, then every second."""
        assert self._board is not None
        await progress.first_page_ready.wait()
        while True:
            first = progress.first_page
            if first is not None and first.next_flag is not None:  # a one-page room is stored at once anyway
                shared = SharedProgress(
                    progress.count, progress.users_read, progress.first_mode, PackedUsers(first.users), time.time()
                )
                await self._board.publish(key, shared)
            await asyncio.sleep(PUBLISH_EVERY_SECONDS)

    async def _watch_leader(self, key: str, progress: FetchProgress) -> None:
        """Fill `progress` from the leader's shared progress while this replica waits for its snapshot."""
        assert self._board is not None
        while True:
            shared = await self._board.read(key)
            if shared is not None:
                page = Page(tuple(shared.first_users), shared.count, "another replica", "")
                progress.adopt(first_page=page, first_mode=shared.first_mode, users_read=shared.users_read)
            await asyncio.sleep(FOLLOW_POLL_SECONDS)
