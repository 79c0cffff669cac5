"""The one-message answers about a room: `--changes` (what changed since its last complete read) and `--member`
(which of some users are in it), and the pages of a list of changes. Commands, mentions and buttons all ask here;
ZIM failures and bugs become sentences through `RoomAnswers.safely`, like every other answer.
"""

from __future__ import annotations

import secrets

from bot.observability.metrics import CHANGES_ANSWERS
from bot.roster.apps import ZegoApp
from bot.roster.cpu import off_loop
from bot.roster.diff import diff_rosters
from bot.roster.model import Roster
from bot.roster.view import PAGE_SIZE
from bot.slack.answers import Answer, RoomAnswers
from bot.slack.parsing import ChangesRequest, LookupRequest, MemberRequest
from bot.slack.render.changes import (
    ChangesPage,
    changed_while_read_message,
    changes_expired_message,
    changes_message,
    members_message,
    no_baseline_message,
)


async def lookup_answer(answers: RoomAnswers, request: LookupRequest) -> Answer:
    if isinstance(request, ChangesRequest):
        return await changes_answer(answers, request)
    return await member_answer(answers, request)


async def changes_answer(answers: RoomAnswers, request: ChangesRequest) -> Answer:
    """Read the room fresh and compare it with the baseline taken just before; the read becomes the next baseline."""

    async def answer(stack: ZegoApp) -> Answer:
        snapshots = stack.snapshots
        baseline = await snapshots.baseline(request.room_id)  # before the read, which replaces it
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
            return _counted(Answer(message, "incomplete", details=details))
        if baseline is None:
            message = no_baseline_message(
                request.room_id, users_now=len(fresh.users), hours=snapshots.history_hours, read_at=fresh.fetched_at
            )
            return _counted(Answer(message, "no_baseline", details=details))
        # Comparing big rooms is CPU work: off the loop, so other requests are still acked in time.
        diff = await off_loop(len(baseline.users) + len(fresh.users), diff_rosters, baseline, fresh)
        details |= {"joined": len(diff.joined), "left": len(diff.left), "renamed": diff.renamed}
        changes_id = ""
        if len(diff.joined) + len(diff.left) > PAGE_SIZE:  # more pages than this one: keep it for the buttons
            changes_id = secrets.token_hex(6)
            # reported_count of the kept "joined" roster holds the room's size at the fresh read.
            joined = Roster(request.room_id, diff.joined, len(fresh.users), fresh.fetched_at)
            left = Roster(request.room_id, diff.left, len(diff.left), baseline.fetched_at)
            await snapshots.keep_changes(changes_id, joined, left)
        message = changes_message(
            request.room_id,
            diff.joined,
            diff.left,
            since=baseline.fetched_at,
            read_at=fresh.fetched_at,
            users_now=len(fresh.users),
            now=answers.now(),
            profile=answers.profile_label(request.profile),
            changes_id=changes_id,
        )
        return _counted(Answer(message, "ok" if not diff.unchanged else "unchanged", details=details))

    return await answers.safely(request.room_id, request.profile, answer)


async def changes_page_answer(answers: RoomAnswers, ref: ChangesPage) -> Answer:
    """Another page of a kept list of changes (a Prev/Next click), or why it can't be shown any more."""

    async def answer(stack: ZegoApp) -> Answer:
        kept = await stack.snapshots.kept_changes(ref.changes_id)
        if kept is None:
            return Answer(changes_expired_message(ref.room_id), "expired")
        joined, left = kept
        message = changes_message(
            ref.room_id,
            joined.users,
            left.users,
            since=left.fetched_at,
            read_at=joined.fetched_at,
            users_now=joined.reported_count,
            now=answers.now(),
            page=ref.page,
            profile=answers.profile_label(ref.profile),
            changes_id=ref.changes_id,
        )
        return Answer(message, "ok", details={"joined": len(joined.users), "left": len(left.users)})

    return await answers.safely(ref.room_id, ref.profile, answer)


async def member_answer(answers: RoomAnswers, request: MemberRequest) -> Answer:
    """One QueryRoomMembers round trip, at interactive priority, whatever the room's size."""

    async def answer(stack: ZegoApp) -> Answer:
        members = await stack.client.query_members(request.room_id, request.user_ids, priority="interactive")
        details: dict[str, object] = {
            "asked": len(request.user_ids),
            "present": len(members.present),
            "request_ids": [members.request_id] if members.request_id else [],
        }
        message = members_message(members, profile=answers.profile_label(request.profile))
        return Answer(message, "ok", details=details)

    return await answers.safely(request.room_id, request.profile, answer)


def _counted(answer: Answer) -> Answer:
    CHANGES_ANSWERS.labels(answer.outcome).inc()
    return answer
