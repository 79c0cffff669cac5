"""What roomusers answers for a room request or a paging click, as Block Kit messages.

The Slack surfaces (command, mention, buttons) differ only in how they deliver; they all ask this module.
Every path returns a Message: ZIM failures become specific sentences, anything unexpected a logged reference.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from bot.slack.blocks import Message, problem_message, roster_message
from bot.slack.errors_text import describe_zim_error, unexpected_error_sentence
from bot.slack.paging import PageRef
from bot.slack.parsing import CommandRequest
from bot.snapshots import Snapshot, SnapshotService
from bot.zim.errors import ZimError

log = logging.getLogger(__name__)


def with_note(message: Message, note: str) -> Message:
    """Insert a context note (our own mrkdwn) right below the header."""
    note_block: dict[str, Any] = {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}
    blocks = [*message.blocks[:1], note_block, *message.blocks[1:]]
    return replace(message, blocks=blocks)


class RoomAnswers:
    def __init__(self, snapshots: SnapshotService, *, clock: Callable[[], float] = time.time) -> None:
        self._snapshots = snapshots
        self._clock = clock

    async def first_page(self, request: CommandRequest) -> Message:
        async def answer() -> Message:
            snapshot = await self._snapshots.get(request.room_id)
            return self._render(
                snapshot, PageRef(request.room_id, 1, request.newest_first, 0.0, request.filter_text, request.profile)
            )

        return await self._safely(request.room_id, answer)

    async def page(self, ref: PageRef) -> Message:
        async def answer() -> Message:
            roster = await self._snapshots.cached(ref.room_id)
            if roster is not None:
                message = self._render(Snapshot(roster, from_cache=True), ref)
                if ref.fetched_at and int(roster.fetched_at) != int(ref.fetched_at):
                    return with_note(message, "The list was refreshed since this message was posted.")
                return message
            snapshot = await self._snapshots.get(ref.room_id)
            message = self._render(snapshot, ref)
            return with_note(message, "The earlier list had expired, so the room was read again.")

        return await self._safely(ref.room_id, answer)

    def _render(self, snapshot: Snapshot, ref: PageRef) -> Message:
        return roster_message(
            snapshot.roster,
            page=ref.page,
            newest_first=ref.newest_first,
            from_cache=snapshot.from_cache,
            now=self._clock(),
            filter_text=ref.filter_text,
            profile=ref.profile,
        )

    async def _safely(self, room_id: str, answer: Callable[[], Awaitable[Message]]) -> Message:
        try:
            return await answer()
        except ZimError as error:
            log.info("room %r: %s", room_id, error)
            return problem_message(describe_zim_error(error, room_id))
        except Exception:
            reference = secrets.token_hex(4)
            log.exception("unexpected error answering for room %r (reference %s)", room_id, reference)
            return problem_message(unexpected_error_sentence(reference))
