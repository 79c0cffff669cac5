"""At most N full ZIM reads of one ZEGO app at once; the others wait in line, first come first served, and can
say their place in it. `ReadQueue` counts this replica's reads; `ReadSlots` is what the service needs, which
bot/state/readslots.py also provides for every replica together (through Redis)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from bot.observability.metrics import READS_QUEUED


class Ticket:
    """One read's place: in line (`position` ≥ 1) until it gets a slot, then reading (`position` None)."""

    __slots__ = ("future", "position", "queued")

    def __init__(self) -> None:
        self.future: asyncio.Future[None] | None = None
        self.queued = asyncio.Event()  # set when the read had to wait in line
        self.position: int | None = None  # the place in a shared line, as last seen (bot/state/readslots.py)


class ReadSlots(Protocol):
    @property
    def running(self) -> int:
        """Reads holding a slot now."""

    def position(self, ticket: Ticket) -> int | None:
        """1-based place in line, or None when the read has its slot (or never queued)."""

    def slot(self, ticket: Ticket) -> AbstractAsyncContextManager[None]:
        """Hold a slot for the `async with` block, waiting in line first if none is free."""


class ReadQueue:
    def __init__(self, limit: int, *, profile: str = "") -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._profile = profile
        self._running = 0
        self._waiting: deque[Ticket] = deque()

    @property
    def running(self) -> int:
        return self._running

    def position(self, ticket: Ticket) -> int | None:
        """1-based place in line, or None when the read has its slot (or never queued)."""
        for place, waiting in enumerate(self._waiting, start=1):
            if waiting is ticket:
                return place
        return None

    @asynccontextmanager
    async def slot(self, ticket: Ticket) -> AsyncIterator[None]:
        if self._running < self.limit and not self._waiting:
            self._running += 1
        else:
            ticket.future = asyncio.get_running_loop().create_future()
            self._waiting.append(ticket)
            ticket.queued.set()
            READS_QUEUED.labels(self._profile).inc()
            try:
                await ticket.future  # a finishing read hands its slot over: _running stays as it is
            except asyncio.CancelledError:
                if ticket.future.done() and not ticket.future.cancelled():
                    self._release()  # the slot was handed over just as we were cancelled: pass it on
                elif ticket in self._waiting:
                    self._waiting.remove(ticket)
                raise
            finally:
                READS_QUEUED.labels(self._profile).dec()
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        while self._waiting:
            following = self._waiting.popleft()
            if following.future is not None and not following.future.done():
                following.future.set_result(None)
                return
        self._running -= 1
