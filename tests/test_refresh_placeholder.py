"""End to end: a Refresh shows at once that the room is being read again, on a command's answer (response_url)
and on a mention's answer (the visible message, replaced in place), whether or not the clicked page is still
cached, in both Slack modes. The sandbox holds the refresh's first ZIM answer, so the placeholder is seen
while the read cannot have finished: no ZIM answer since the click, and then the final page replaces it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.dev.local_stack import LocalStack, Mode, local_stack
from bot.dev.slack_standin import StoredMessage
from bot.dev.zim_sandbox import Fault, ZimSandbox
from bot.settings import DEFAULT_PROFILE
from bot.state.snapshots import MemorySnapshotStore

from .conftest import FAST_RETRY
from .slack_helpers import action_ids, all_text, answer_to, listed_user_ids, tool_ids

pytestmark = pytest.mark.both_modes

ROOM = "big-refresh"
USERS = 1_600  # four pages: the refresh is more than one round trip
HOLD_SECONDS = 1.0  # the refresh's first ZIM answer is held this long; the placeholder comes before it


@pytest.fixture
async def stack(sandbox: ZimSandbox, mode: Mode) -> AsyncIterator[tuple[LocalStack, MemorySnapshotStore]]:
    sandbox.add_room(ROOM, [(f"u{i:04}", f"User {i}") for i in range(USERS)])
    store = MemorySnapshotStore()
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, mode=mode, store=store) as local:
        yield local, store
        assert local.slack.warnings == []


async def whole_answer(local: LocalStack, surface: str) -> StoredMessage:
    """A whole page 1 with its buttons (a big room's first answer comes before the read ends)."""
    if surface == "command":
        await answer_to(local, ROOM)
        await local.until_idle()
        return await answer_to(local, ROOM)  # from the snapshot the first command left
    await local.slack.mention(ROOM)
    answer = await local.slack.next_message()
    while "still loading" in all_text(answer):  # the mention's answer is updated in place when the read ends
        answer = await local.slack.next_message(timeout=30)
    return answer


def answers_given(sandbox: ZimSandbox) -> int:
    return sum(sandbox.stats.by_code.values())


async def forget_snapshot(local: LocalStack, store: MemorySnapshotStore) -> None:
    """As if the snapshot had expired: the clicked page is no longer cached."""
    zego = local.rosters.pick(DEFAULT_PROFILE)
    assert zego is not None
    await store.discard(zego.snapshots.key(ROOM))
    assert await zego.snapshots.cached(ROOM) is None


@pytest.mark.parametrize("surface", ["command", "mention"])
@pytest.mark.parametrize("cached", [True, False], ids=["cached", "expired"])
async def test_refresh_shows_at_once_that_it_is_refreshing(
    stack: tuple[LocalStack, MemorySnapshotStore], surface: str, cached: bool
) -> None:
    local, store = stack
    answer = await whole_answer(local, surface)
    assert listed_user_ids(answer)[:2] == ["u0000", "u0001"]
    await local.until_idle()
    assert local.slack.unread() == []
    if not cached:
        await forget_snapshot(local, store)
    local.sandbox.inject(Fault(kind="delay", seconds=HOLD_SECONDS, room_id=ROOM, count=1))
    answered = answers_given(local.sandbox)

    await local.slack.click(answer, "roomusers_refresh")
    placeholder = await local.slack.next_message()
    assert answers_given(local.sandbox) == answered, "the placeholder came only after ZIM answered"
    assert placeholder.ts == answer.ts  # the clicked message, replaced in place
    assert "↻ Refreshing… started" in all_text(placeholder)
    assert action_ids(placeholder) == [] and tool_ids(placeholder) == []  # nothing to click while it reads
    if cached:
        assert listed_user_ids(placeholder) == listed_user_ids(answer)  # the page shown stays readable
    else:
        assert f"Reading room `{ROOM}` again…" in all_text(placeholder)

    final = await local.slack.next_message(timeout=30)
    while "still loading" in all_text(final):  # a mention's answer may show its progress first
        final = await local.slack.next_message(timeout=30)
    assert final.ts == answer.ts
    assert "Refreshing" not in all_text(final)
    assert f"*{USERS:,} users*" in all_text(final)
    assert listed_user_ids(final) == listed_user_ids(answer)
    assert "roomusers_refresh" in tool_ids(final)
    await local.until_idle()
    assert local.slack.unread() == []


async def test_a_failed_refresh_of_an_expired_page_says_why_in_place_of_the_placeholder(
    stack: tuple[LocalStack, MemorySnapshotStore],
) -> None:
    local, store = stack
    answer = await whole_answer(local, "command")
    await forget_snapshot(local, store)
    local.sandbox.inject(Fault(kind="code", code=660300007, room_id=ROOM, count=100))  # ZIM cannot load it
    await local.slack.click(answer, "roomusers_refresh")
    placeholder = await local.slack.next_message()
    assert "↻ Refreshing… started" in all_text(placeholder)
    failure = await local.slack.next_message()
    assert failure.ts == answer.ts  # "Refreshing…" does not stay up: the reason replaces it
    assert "Refreshing" not in all_text(failure)
    assert "could not load room" in all_text(failure)
    await local.until_idle()
    assert local.slack.unread() == []
