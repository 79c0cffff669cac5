"""What roomusers answers for a room request or a button click, as Block Kit messages.

The Slack surfaces (command, mention, buttons) differ only in how they deliver; they all ask this module.
Every path returns an Answer: ZIM failures become specific sentences, anything unexpected a logged reference.
A big room's first answer can come before the whole room is read (`Answer.pending`): ZIM's count and first
page, with working buttons; clicks on later pages wait for the fetch under way.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol, TypeVar

from bot.roster.apps import ZegoApp, ZegoApps
from bot.roster.cpu import off_loop
from bot.roster.model import Roster
from bot.roster.service import RoomRead, Snapshot
from bot.roster.view import PAGE_SIZE, RoomView, filter_users
from bot.slack.render.blocks import (
    Loading,
    Message,
    not_read_yet_message,
    problem_message,
    reading_again_message,
    refreshing_message,
    roster_message,
    with_note,
)
from bot.slack.render.escaping import quote_code
from bot.slack.render.text import (
    describe_zim_error,
    queued_sentence,
    refresh_declined_note,
    unexpected_error_sentence,
)
from bot.zim.errors import ZimError
from bot.zim.paging import NEWEST_FIRST, OLDEST_FIRST

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """A message plus what the audit log and the delivering surface need to know about it."""

    message: Message
    outcome: str  # "ok", "empty", "loading", or the error kind
    roster: Roster | None = None
    from_cache: bool = False
    pending: RoomRead | None = field(default=None, repr=False)  # the rest of the room is still being read
    refresh_reused: bool = False  # a Refresh answered from a snapshot younger than ROOMUSERS_REFRESH_MIN_SECONDS
    queued: bool = False  # no page yet: the read waits for a free reader (the final answer must follow)
    details: dict[str, Any] = field(default_factory=dict, repr=False)  # audit fields of answers without a roster

    def audit_fields(self) -> dict[str, Any]:
        if self.roster is None:
            return {"queued": True, **self.details} if self.queued else dict(self.details)
        fields: dict[str, Any] = {"refresh_reused": True} if self.refresh_reused else {}
        fields |= {
            "room_users": len(self.roster.users),
            "zim_count": self.roster.reported_count,
            "cache_hit": self.from_cache,
            "request_ids": list(self.roster.request_ids),
        }
        if self.pending is None:  # a "loading" answer's list is ZIM's first page: whether it is whole is not known yet
            fields["complete"] = self.roster.complete
            fields["shortfall"] = self.roster.shortfall
            if self.roster.incomplete_reason is not None:
                fields["incomplete"] = self.roster.incomplete_reason
        return fields


T = TypeVar("T")


class _ForProfile(Protocol):
    """A parsed request naming a room of a profile (a dataclass, so its profile can be replaced)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def room_id(self) -> str: ...

    @property
    def profile(self) -> str: ...


R = TypeVar("R", bound=_ForProfile)


def _first_page_ref(request: RoomView) -> RoomView:
    return RoomView(request.room_id, 1, request.newest_first, 0.0, request.filter_text, request.profile)


class RoomAnswers:
    def __init__(self, rosters: ZegoApps, *, clock: Callable[[], float] = time.time) -> None:
        self._rosters = rosters
        self._clock = clock

    async def first_page(self, request: RoomView, *, shareable: bool) -> Answer:
        """Page 1 for a command or mention; for a big room, as soon as ZIM's first page is in."""
        ref = _first_page_ref(request)

        async def answer(stack: ZegoApp) -> Answer:
            # The first requester's order picks the end the read starts from: a `--reverse` answer is Mode=1's
            # first page, one round trip away.
            first_mode = NEWEST_FIRST if request.newest_first else OLDEST_FIRST
            begun = await stack.snapshots.begin(request.room_id, first_mode=first_mode)
            if isinstance(begun, Snapshot):
                return await self._render(begun, ref, shareable=shareable)
            await begun.first_page_or_end()
            queued = self._queued(begun)
            if queued is not None:
                return queued
            # A partial list can show page 1 of either order, or the matches read so far.
            if not begun.done:
                partial = self._partial(begun, ref)
                if partial is not None:
                    return partial
            return await self._render(Snapshot(await begun.roster(), from_cache=False), ref, shareable=shareable)

        return await self._safely(ref, answer)

    async def finish(self, request: RoomView, pending: RoomRead, *, shareable: bool) -> Answer:
        """The complete page-1 answer once a pending fetch is done (or why it failed)."""
        return await self.finish_page(_first_page_ref(request), pending, shareable=shareable)

    def loading_update(self, request: RoomView, pending: RoomRead) -> Answer | None:
        """A fresh "still loading" message with the latest progress (None if there is nothing to show yet)."""
        ref = _first_page_ref(request)
        return self._queued(pending) or self._partial(pending, ref)

    async def finish_page(self, ref: RoomView, pending: RoomRead, *, shareable: bool, shared_by: str = "") -> Answer:
        """The page `ref` once a pending read is done (or why it failed), for a click answered early."""

        async def answer(_: ZegoApp) -> Answer:
            whole = Snapshot(await pending.roster(), from_cache=False)
            return await self._render(whole, ref, shareable=shareable, shared_by=shared_by)

        return await self._safely(ref, answer)

    async def refreshing(self, ref: RoomView) -> Message | None:
        """The page shown, from the snapshot, marked "Refreshing…" without buttons (None if not cached)."""
        stack = self._rosters.pick(ref.profile)
        if stack is None:
            return None
        try:
            roster = await stack.snapshots.cached(ref.room_id)
        except Exception:  # a placeholder is never worth failing the refresh for
            log.warning("no refreshing placeholder for room %r", ref.room_id, exc_info=True)
            return None
        if roster is None:
            return None
        shown = (await self._render(Snapshot(roster, True), ref, shareable=False, offer_changes=False)).message
        return refreshing_message(shown, started=self._clock())

    def reading_again(self, ref: RoomView) -> Message | None:
        """The Refresh placeholder when the clicked page is no longer cached (see `refreshing`); None when
        the click names no ZEGO app here (it is answered at once, with why)."""
        if self._rosters.pick(ref.profile) is None:
            return None
        return reading_again_message(ref.room_id, started=self._clock())

    async def page(self, ref: RoomView, *, shareable: bool, refresh: bool = False, shared_by: str = "") -> Answer:
        """A page for a click: from the snapshot, from the fetch under way, or (refresh/expired) read anew.

        While a read is under way, a page already read is answered at once (with `pending` set: the
        caller replaces it with `finish_page` when the read ends), and a page not read yet says so.
        """

        async def answer(stack: ZegoApp) -> Answer:
            if refresh:
                fresh = await stack.snapshots.get(ref.room_id, refresh=True)
                rendered = await self._render(fresh, ref, shareable=shareable, shared_by=shared_by)
                if fresh.refresh_declined:
                    age = self._clock() - fresh.roster.fetched_at
                    note = refresh_declined_note(age, stack.snapshots.refresh_min)
                    return replace(rendered, message=with_note(rendered.message, note), refresh_reused=True)
                return rendered
            roster = await stack.snapshots.cached(ref.room_id)
            if roster is not None:
                rendered = await self._render(Snapshot(roster, True), ref, shareable=shareable, shared_by=shared_by)
                if ref.fetched_at and int(roster.fetched_at) != int(ref.fetched_at):
                    return replace(rendered, message=with_note(rendered.message, "The list was refreshed since."))
                return rendered
            # Not cached: the click came while the room is still being read (serve what has arrived), or
            # after the snapshot expired (read it again, and say so).
            under_way = stack.snapshots.read_under_way(ref.room_id)
            if under_way is not None and not under_way.done and under_way.count:
                early = self._partial(under_way, ref)
                if early is not None:
                    return early
                expected = max(under_way.count, under_way.users_read)
                message = not_read_yet_message(ref.room_id, ref.page, under_way.users_read, expected)
                return Answer(message, "loading", None, False, pending=under_way)
            expired = under_way is None and bool(ref.fetched_at)
            whole = Snapshot(await stack.snapshots.start_read(ref.room_id).roster(), from_cache=False)
            rendered = await self._render(whole, ref, shareable=shareable, shared_by=shared_by)
            if expired:
                note = "The earlier list had expired, so the room was read again."
                return replace(rendered, message=with_note(rendered.message, note))
            return rendered

        return await self._safely(ref, answer)

    async def roster(self, ref: RoomView) -> Roster | Answer:
        """The whole roster for an export (from the snapshot if it is still there), or the answer saying why not."""

        async def whole(stack: ZegoApp) -> Roster:
            # The list the click was made on, if still cached (an incomplete one too: the file says so).
            cached = await stack.snapshots.cached(ref.room_id)
            return cached if cached is not None else (await stack.snapshots.get(ref.room_id)).roster

        return await self._safely(ref, whole)

    # -- internals --------------------------------------------------------------------------------------

    @staticmethod
    def _queued(read: RoomRead) -> Answer | None:
        """While the read waits for a free reader (ROOMUSERS_MAX_CONCURRENT_READS): its place in line."""
        position = read.position
        if position is None:
            return None
        message = problem_message(queued_sentence(position, read.readers_busy), title="Waiting")
        return Answer(message, "loading", pending=read, queued=True)

    def _partial(self, read: RoomRead, ref: RoomView) -> Answer | None:
        """Page `ref.page` of the read under way, if that page has already been read in `ref`'s order.

        Each chain's users are a prefix of the room in its order (bar changes, which the message then
        mentions), so page N of join order is served once the oldest-first chain has N pages of 20.
        """
        first = read.first_page
        if first is None or first.next_flag is None or read.done:
            return None
        expected = max(read.count, read.users_read)
        if ref.filter_text:
            return self._filtered_partial(read, ref, expected)
        sequence = read.newest() if ref.newest_first else read.oldest()
        start = (max(1, ref.page) - 1) * PAGE_SIZE
        if len(sequence) < start + PAGE_SIZE and not (
            read.ended(newest_first=ref.newest_first) and start < len(sequence)
        ):
            return None
        page_users = list(sequence[start : start + PAGE_SIZE])
        if ref.newest_first:
            page_users.reverse()  # the provisional roster is in join order; the message shows it reversed
        provisional = Roster(room_id=ref.room_id, users=page_users, reported_count=read.count, fetched_at=0.0)
        loading = Loading(read.users_read, expected, page=max(1, ref.page), changed=read.changed)
        message = roster_message(
            provisional,
            page=loading.page,
            newest_first=ref.newest_first,
            now=self._clock(),
            profile=self._profile_label(ref.profile),
            loading=loading,
        )
        return Answer(message, "loading", provisional, False, pending=read)

    def _filtered_partial(self, read: RoomRead, ref: RoomView, expected: int) -> Answer:
        """The matches among the users read so far (both ends; the chains never hold a user twice)."""
        matches = [
            *filter_users(read.oldest(), ref.filter_text),
            *reversed(filter_users(read.newest(), ref.filter_text)),
        ]
        provisional = Roster(room_id=ref.room_id, users=matches, reported_count=read.count, fetched_at=0.0)
        loading = Loading(read.users_read, expected, page=max(1, ref.page), changed=read.changed)
        message = roster_message(
            provisional,
            page=loading.page,
            newest_first=ref.newest_first,
            now=self._clock(),
            filter_text=ref.filter_text,
            profile=self._profile_label(ref.profile),
            loading=loading,
        )
        return Answer(message, "loading", provisional, False, pending=read)

    def with_known_profile(self, request: R) -> R | None:
        """`request` naming its profile as configured (`--app EU` is `eu`); None for a profile that isn't."""
        name = self._rosters.resolve(request.profile)
        if name is None:
            return None
        return replace(request, profile=name) if request.profile else request

    def unknown_profile(self, profile: str) -> Message:
        known = ", ".join(quote_code(name, 32) for name in sorted(self._rosters.by_profile))
        return problem_message(f"There is no app profile {quote_code(profile, 32)}; this roomusers knows {known}.")

    def now(self) -> float:
        return self._clock()

    def profile_label(self, profile: str) -> str:
        """The app named under an answer: always when several are configured, else only when one was asked for."""
        return self._profile_label(profile)

    async def safely(self, room_id: str, profile: str, answer: Callable[[ZegoApp], Awaitable[T]]) -> T | Answer:
        """`answer` with the profile's stack; a missing profile, a ZIM error or a bug becomes an Answer."""
        return await self._safely(RoomView(room_id, profile=profile), answer)

    def _profile_label(self, profile: str) -> str:
        return (profile or self._rosters.default) if self._rosters.several else profile

    async def _render(
        self, snapshot: Snapshot, ref: RoomView, *, shareable: bool, shared_by: str = "", offer_changes: bool = True
    ) -> Answer:
        stack = self._rosters.pick(ref.profile)
        # A placeholder shows no buttons: it need not ask whether a baseline is kept.
        what_changed = (
            offer_changes and stack is not None and await stack.snapshots.offers_changes(ref.room_id, snapshot.roster)
        )
        # Filtering a big room is CPU work: off the loop, so other requests are still acked in time.
        message = await off_loop(
            len(snapshot.roster.users) if ref.filter_text else 0,
            roster_message,
            snapshot.roster,
            page=ref.page,
            newest_first=ref.newest_first,
            from_cache=snapshot.from_cache,
            now=self._clock(),
            filter_text=ref.filter_text,
            profile=self._profile_label(ref.profile),
            shareable=shareable,
            shared_by=shared_by,
            what_changed=what_changed,
        )
        outcome = "empty" if not snapshot.roster.users else "ok"
        return Answer(message, outcome, snapshot.roster, snapshot.from_cache)

    async def _safely(self, ref: RoomView, answer: Callable[[ZegoApp], Awaitable[T]]) -> T | Answer:
        """`answer` with the profile's stack; a missing profile, a ZIM error or a bug becomes an Answer."""
        stack = self._rosters.pick(ref.profile)
        if stack is None:
            return Answer(self.unknown_profile(ref.profile), "unknown_profile")
        try:
            return await answer(stack)
        except ZimError as error:
            log.info("room %r: %s", ref.room_id, error)
            outcome = type(error).__name__
            return Answer(problem_message(describe_zim_error(error, ref.room_id)), outcome)
        except Exception:
            reference = secrets.token_hex(4)
            log.exception("unexpected error answering for room %r (reference %s)", ref.room_id, reference)
            return Answer(problem_message(unexpected_error_sentence(reference)), "internal_error")
