"""The conversation model: channels, threads and ephemerals as a user would see them, plus waiting on changes.

Every message is keyed by its `ts`, which the stand-in mints globally unique, so one dict holds visible
messages, thread replies and ephemerals alike. Tests never sleep: they `wait_for` a predicate over this
state or take the app's messages one by one with `next_message`.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from bot.dev.slack_standin import ids
from bot.dev.slack_standin.models import (
    ApiCall,
    JsonDict,
    Origin,
    ResponseUrlPost,
    StoredFile,
    StoredMessage,
)

T = TypeVar("T")

# public/private channels, a DM or group DM between humans, or the DM between a user and the app.
ConversationKind = Literal["public", "private", "im", "mpim", "app_dm"]
_KIND_BY_PREFIX: dict[str, ConversationKind] = {"C": "public", "G": "private", "D": "im"}


@dataclass(slots=True)
class Conversation:
    """Who is in a conversation: whether the bot is, and the humans seen acting there."""

    id: str
    kind: ConversationKind
    name: str
    bot_member: bool
    members: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Slot:
    """A place held in the conversation for a message whose content is not known yet (a command's ack)."""

    ts: str
    arrival_index: int


class Workspace:
    """One Slack workspace's state as the stand-in keeps it."""

    def __init__(self, *, clock: Callable[[], float]) -> None:
        self.ts = ids.TsClock(clock)
        self.files: list[StoredFile] = []
        self.api_calls: list[ApiCall] = []
        self.response_url_posts: list[ResponseUrlPost] = []
        # Things Slack accepts but our app must never do (blocks without fallback text, link_names, ...).
        self.warnings: list[str] = []
        self.channel_names: dict[str, str] = {"C0OPS": "ops"}
        # The bot is in #ops only; every other conversation it meets is one it was never added to.
        self.conversations: dict[str, Conversation] = {"C0OPS": Conversation("C0OPS", "public", "ops", bot_member=True)}
        # Whether users can DM the app (manifest features.app_home.messages_tab_enabled).
        self.messages_tab_enabled = True
        # The bot scopes granted (the manifest's), for methods that need one beyond chat:write.
        self.scopes: frozenset[str] = frozenset()
        # Ephemerals Slack accepted but never shows (posted into a thread that has no replies).
        self.invisible: list[StoredMessage] = []
        # User groups (S... -> member user IDs) for usergroups.users.list; tests fill this in.
        self.usergroups: dict[str, list[str]] = {}
        self._messages: dict[str, StoredMessage] = {}
        self._dms: dict[str, str] = {}
        # Snapshots of the app's new and replaced messages, in arrival order, for next_message().
        self._arrivals: list[StoredMessage] = []
        self._next_arrival = 0
        self._condition = asyncio.Condition()

    # -- reading -----------------------------------------------------------------------------------------

    def message(self, ts: str) -> StoredMessage | None:
        """The message with this ts (visible or ephemeral), unless it was deleted."""
        found = self._messages.get(ts)
        return found if found is not None and not found.deleted else None

    def messages(self, channel: str) -> list[StoredMessage]:
        """Visible messages in `channel`, thread replies included (they carry thread_ts), oldest first."""
        return [m for m in self._live() if m.channel == channel and not m.ephemeral]

    def ephemerals(self, user: str) -> list[StoredMessage]:
        """Ephemeral messages only `user` can see, in any channel, oldest first."""
        return [m for m in self._live() if m.ephemeral and m.user == user and not m.invisible]

    def visible_to(self, user: str, channel: str) -> list[StoredMessage]:
        """Everything `user` sees in `channel`: its visible messages plus their own ephemerals, in order."""
        return [
            m for m in self._live() if m.channel == channel and (not m.ephemeral or m.user == user) and not m.invisible
        ]

    def thread(self, channel: str, thread_ts: str) -> list[StoredMessage]:
        """A thread's replies, oldest first (the parent itself excluded)."""
        return [m for m in self.messages(channel) if m.thread_ts == thread_ts and m.ts != thread_ts]

    def _live(self) -> list[StoredMessage]:
        return sorted((m for m in self._messages.values() if not m.deleted), key=_ts_order)

    def channel_name(self, channel: str) -> str:
        if channel.startswith("D"):
            return "directmessage"
        return self.channel_names.get(channel, channel.lower())

    def dm_channel(self, user: str) -> str:
        """The DM channel between the bot and `user`; the same ID every time, as in Slack."""
        if user not in self._dms:
            self._dms[user] = ids.slack_id("D")
            dm = self._dms[user]
            self.conversations[dm] = Conversation(dm, "app_dm", "directmessage", bot_member=True, members={user})
        return self._dms[user]

    def add_conversation(
        self,
        channel: str,
        *,
        kind: ConversationKind | None = None,
        name: str | None = None,
        bot_member: bool = True,
        members: Iterable[str] = (),
    ) -> Conversation:
        """Create (or redefine) a conversation; its kind defaults from the ID's prefix (C, G or D)."""
        chosen = kind or _KIND_BY_PREFIX.get(channel[:1], "public")
        label = name or self.channel_names.get(channel) or channel.lower()
        self.channel_names.setdefault(channel, label)
        conversation = Conversation(channel, chosen, label, bot_member=bot_member, members=set(members))
        self.conversations[channel] = conversation
        return conversation

    def ensure_conversation(self, channel: str, user: str) -> Conversation:
        """The conversation a human acts in; one never seen before is one the bot was not added to."""
        conversation = self.conversations.get(channel) or self.add_conversation(channel, bot_member=False)
        conversation.members.add(user)
        return conversation

    # -- writing -----------------------------------------------------------------------------------------

    def add(
        self,
        *,
        channel: str,
        text: str | None,
        blocks: list[JsonDict] | None,
        author: str,
        origin: Origin,
        user: str | None = None,
        thread_ts: str | None = None,
        missing_text: bool = False,
        slot: Slot | None = None,
        tag: str = "",
    ) -> StoredMessage:
        """Store a new message with a fresh ts (or the one `slot` held); `user` makes it an ephemeral.

        Slack does not show an ephemeral posted into a "thread" that has no replies (a lone message's ts):
        it is accepted, stored as invisible, and flagged, since the app meant someone to read it.
        """
        invisible = user is not None and thread_ts is not None and not self.thread(channel, thread_ts)
        message = StoredMessage(
            channel=channel,
            ts=slot.ts if slot else self.ts.next(),
            text=text,
            blocks=_with_block_ids(blocks or []),
            user=user,
            thread_ts=thread_ts,
            ephemeral=user is not None,
            origin=origin,
            author=author,
            missing_text=missing_text,
            invisible=invisible,
            tag=tag,
        )
        self._messages[message.ts] = message
        if invisible:
            self.invisible.append(message)
            self.warn(f"ephemeral to {user} in thread {thread_ts} with no replies: Slack does not show it")
            return message
        if origin != "user":
            # A slot keeps its place in arrival order unless next_message already went past it.
            index = max(slot.arrival_index, self._next_arrival) if slot else len(self._arrivals)
            self._arrivals.insert(index, message.snapshot())
        return message

    def hold_slot(self) -> Slot:
        """Hold the next ts and arrival position for a message that will be stored later."""
        return Slot(ts=self.ts.next(), arrival_index=len(self._arrivals))

    def replace(
        self,
        message: StoredMessage,
        *,
        text: str | None,
        blocks: list[JsonDict],
        missing_text: bool,
        tag: str | None = None,
    ) -> StoredMessage:
        """Edit a message in place: same ts, same channel, same ephemeral viewer (`tag`: the exchange that did it)."""
        if tag is not None:
            message.tag = tag
        message.text = text
        message.blocks = _with_block_ids(blocks)
        message.missing_text = missing_text
        message.replaced_count += 1
        self._arrivals.append(message.snapshot())
        return message

    def delete(self, message: StoredMessage) -> None:
        message.deleted = True

    def warn(self, warning: str) -> None:
        self.warnings.append(warning)

    # -- waiting -----------------------------------------------------------------------------------------
    # `timeout` parameters (rather than asking callers for asyncio.timeout) keep every test's wait bounded by
    # default: a forgotten timeout would otherwise hang the suite when the app never answers.

    async def changed(self) -> None:
        """Wake everything waiting in wait_for/next_message; call after each change."""
        async with self._condition:
            self._condition.notify_all()

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:  # noqa: ASYNC109
        """Wait until `predicate()` is truthy and return its value; TimeoutError after `timeout` seconds."""
        async with self._condition:
            try:
                return await asyncio.wait_for(self._condition.wait_for(predicate), timeout)
            except TimeoutError:
                raise TimeoutError(f"Slack stand-in: condition still false after {timeout} s") from None

    def unread(self) -> list[StoredMessage]:
        """The messages that arrived and `next_message` has not handed out yet (without waiting)."""
        return self._arrivals[self._next_arrival :]

    async def next_message(self, timeout: float = 5.0) -> StoredMessage:  # noqa: ASYNC109
        """The app's next new or replaced message (a snapshot), in the order Slack received them."""
        await self.wait_for(lambda: len(self._arrivals) > self._next_arrival, timeout)
        arrival = self._arrivals[self._next_arrival]
        self._next_arrival += 1
        return arrival

    def has_news(self, files_seen: int) -> bool:
        """Whether next_message has an arrival waiting, or more than `files_seen` files were uploaded."""
        return len(self._arrivals) > self._next_arrival or len(self.files) > files_seen

    def take_arrivals(self) -> list[StoredMessage]:
        """Every arrival next_message would still return, in order, consumed at once."""
        taken = self._arrivals[self._next_arrival :]
        self._next_arrival = len(self._arrivals)
        return taken


def _ts_order(message: StoredMessage) -> tuple[int, int]:
    # Exact, unlike float(ts), which cannot tell microseconds apart at today's epoch.
    seconds, _, micros = message.ts.partition(".")
    return int(seconds), int(micros or 0)


def _with_block_ids(blocks: list[JsonDict]) -> list[JsonDict]:
    """A copy of `blocks` where each block has a block_id, as Slack assigns one when the app gives none."""
    stored = copy.deepcopy(blocks)
    for block in stored:
        block.setdefault("block_id", ids.block_id())
    return stored
