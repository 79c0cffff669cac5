"""The one-message answers about a room: `--changes` (what changed since its last complete read) and `--member`
(which of some users are in it), and the pages of a list of changes. Commands, mentions and buttons all ask here;
ZIM failures and bugs become sentences through `RoomAnswers.safely`, like every other answer.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from bot.observability.metrics import CHANGES_ANSWERS
from bot.roster.apps import ZegoApp
from bot.roster.cpu import off_loop
from bot.roster.diff import changes_between
from bot.roster.model import Roster
from bot.roster.view import PAGE_SIZE
from bot.slack.answers import Answer, RoomAnswers
from bot.slack.parsing import ChangesRequest, LookupRequest, MemberRequest
from bot.slack.render.blocks import Message
from bot.slack.render.changes import (
    ChangesPage,
    changed_while_read_message,
    changes_expired_message,
    changes_message,
    changes_too_soon_message,
    members_message,
    no_baseline_message,
    reading_to_compare_message,
)
from bot.zim.errors import RoomNotFound
from bot.zim.members import RoomMembers


async def lookup_answer(
    answers: RoomAnswers, request: LookupRequest, *, reading: Callable[[Message], Awaitable[None]] | None = None
) -> Answer:
    if isinstance(request, ChangesRequest):
        return await changes_answer(answers, request, reading=reading)
    return await member_answer(answers, request)


async def changes_answer(
    answers: RoomAnswers, request: ChangesRequest, *, reading: Callable[[Message], Awaitable[None]] | None = None
) -> Answer:
    """Read the room fresh and compare it with the baseline taken just before; the read becomes the next baseline.

    `reading` is given the "Reading room X again…" placeholder before a read that has something to compare with
    (a surface that can replace a message shows it while the read goes on)."""

    async def answer(stack: ZegoApp) -> Answer:
        snapshots = stack.snapshots
        asked_at = answers.now()
        baseline = await snapshots.baseline(request.room_id)  # before the read, which replaces it
        if baseline is not None and (age := asked_at - baseline.fetched_at) < snapshots.refresh_min:
            # Like Refresh: a read this young is not worth a whole new read of the room.
            message = changes_too_soon_message(request.room_id, age=age, refresh_min=snapshots.refresh_min)
            return _counted(Answer(message, "too_soon", details={"baseline_at": round(baseline.fetched_at)}), stack)
        if baseline is not None and reading is not None:
            await reading(reading_to_compare_message(request.room_id, baseline_at=baseline.fetched_at))
        read = snapshots.start_read(request.room_id, refresh=True)
        fresh = await read.roster()
        if read.started_at < asked_at or not _newer(fresh, baseline):
            # The read joined began before this request, or (as a follower) got a stored roster no newer than the
            # baseline: one more read, begun now, so the answer is about the room as it is.
            fresh = await snapshots.start_read(request.room_id, refresh=True).roster()
        details: dict[str, object] = {
            "room_users": len(fresh.users),
            "zim_count": fresh.reported_count,
            "complete": fresh.complete,
            "request_ids": list(fresh.request_ids),
        }
        if baseline is not None:
            details["baseline_at"] = round(baseline.fetched_at)
        if not fresh.complete:
            message = changed_while_read_message(
                request.room_id, fresh.problem, baseline_at=baseline.fetched_at if baseline else None
            )
            return _counted(Answer(message, "incomplete", details=details), stack)
        if baseline is None:
            message = no_baseline_message(
                request.room_id,
                users_now=len(fresh.users),
                hours=snapshots.history_hours,
                read_at=fresh.fetched_at,
                kept=snapshots.kept_as_baseline(request.room_id, fresh),
            )
            return _counted(Answer(message, "no_baseline", details=details), stack)
        # Comparing big rooms is CPU work: off the loop (the kept lists packed there too), so other requests are
        # still acked in time.
        changes = await off_loop(len(baseline.users) + len(fresh.users), changes_between, baseline, fresh)
        details |= {"joined": len(changes.joined), "left": len(changes.left), "renamed": changes.renamed}
        changes_id = ""
        if len(changes.joined) + len(changes.left) > PAGE_SIZE:  # more pages than this one: keep it for the buttons
            changes_id = secrets.token_hex(6)
            if not await snapshots.keep_changes(changes_id, request.room_id, changes):
                changes_id = ""  # not kept: no Prev/Next that would only say it expired
        message = changes_message(
            request.room_id,
            changes,
            now=answers.now(),
            profile=answers.profile_label(request.profile),
            changes_id=changes_id,
        )
        return _counted(Answer(message, "ok" if not changes.unchanged else "unchanged", details=details), stack)

    return await answers.safely(request.room_id, request.profile, answer)


def _newer(fresh: Roster, baseline: Roster | None) -> bool:
    return baseline is None or fresh.fetched_at > baseline.fetched_at


async def changes_page_answer(answers: RoomAnswers, ref: ChangesPage) -> Answer:
    """Another page of a kept list of changes (a Prev/Next click), or why it can't be shown any more."""

    async def answer(stack: ZegoApp) -> Answer:
        changes = await stack.snapshots.kept_changes(ref.changes_id, users_now=ref.users_now)
        if changes is None:
            return Answer(changes_expired_message(ref.room_id), "expired")
        message = changes_message(
            ref.room_id,
            changes,
            now=answers.now(),
            page=ref.page,
            profile=answers.profile_label(ref.profile),
            changes_id=ref.changes_id,
        )
        return Answer(message, "ok", details={"joined": len(changes.joined), "left": len(changes.left)})

    return await answers.safely(ref.room_id, ref.profile, answer)


async def member_answer(answers: RoomAnswers, request: MemberRequest) -> Answer:
    """One QueryRoomMembers round trip, at interactive priority, whatever the room's size."""

    async def answer(stack: ZegoApp) -> Answer:
        try:
            members = await stack.client.query_members(request.room_id, request.user_ids, priority="interactive")
        except RoomNotFound as error:  # 0 users, like a room being destroyed: nobody asked about is in it
            members = RoomMembers.of_missing_room(request.room_id, request.user_ids, error.request_id or "")
        details: dict[str, object] = {
            "asked": len(request.user_ids),
            "present": len(members.present),
            "request_ids": [members.request_id] if members.request_id else [],
        }
        message = members_message(members, profile=answers.profile_label(request.profile))
        return Answer(message, "ok", details=details)

    return await answers.safely(request.room_id, request.profile, answer)


def _counted(answer: Answer, stack: ZegoApp) -> Answer:
    CHANGES_ANSWERS.labels(stack.profile, answer.outcome).inc()
    return answer
