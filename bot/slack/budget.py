"""One app-wide budget for `chat.update`, Slack's Tier 3 method: about 50 calls per minute for the whole app.

Every loading mention edits its message with progress; six big rooms at once made 66 edits in a minute. The
budget admits progress edits only while at least `reserve` slots of the window are left, so final answers
(which must land) always find room: `final()` waits for a slot instead of failing. A 429 from Slack
(`hold`) stops everyone until its Retry-After has passed. The interval between a message's progress edits
grows with the number of messages loading, so they share the budget instead of racing for it.

In process: with N replicas, each has its own budget (`UpdateBudget(limit=45 // N)` would keep them under
Slack's limit together; a budget shared through Redis is not implemented).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class UpdateBudget:
    def __init__(
        self,
        *,
        limit: int = 45,  # a margin under Slack's ~50
        window: float = 60.0,
        reserve: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= reserve < limit:
            raise ValueError("reserve must be smaller than limit")
        self.limit, self.window, self.reserve = limit, window, reserve
        self._clock = clock
        self._used: deque[float] = deque()
        self._held_until = 0.0
        self._loading = 0

    def _prune(self, now: float) -> None:
        while self._used and self._used[0] <= now - self.window:
            self._used.popleft()

    def try_progress(self) -> bool:
        """Take a slot for a progress edit if one is spare (never from the finals' reserve)."""
        now = self._clock()
        self._prune(now)
        if now < self._held_until or len(self._used) >= self.limit - self.reserve:
            return False
        self._used.append(now)
        return True

    def wait_for_final(self) -> float:
        """Seconds until a final edit may go (0 = now, and the slot is taken)."""
        now = self._clock()
        self._prune(now)
        if now < self._held_until:
            return self._held_until - now
        if len(self._used) >= self.limit:
            return self._used[0] + self.window - now
        self._used.append(now)
        return 0.0

    async def final(self) -> None:
        """Wait for (and take) a slot for a final edit; finals may use the whole limit."""
        while (wait := self.wait_for_final()) > 0:  # noqa: ASYNC110 - waiting on the clock, not on an event
            await asyncio.sleep(wait)

    def hold(self, retry_after: float) -> None:
        """Slack answered 429: nobody edits until `retry_after` seconds from now."""
        self._held_until = max(self._held_until, self._clock() + retry_after)

    @contextmanager
    def loading(self) -> Iterator[None]:
        """Count a message as loading (it will want progress edits) while inside."""
        self._loading += 1
        try:
            yield
        finally:
            self._loading -= 1

    def progress_interval(self, minimum: float) -> float:
        """How long a loading message waits between progress edits, so all of them fit the spare slots."""
        spare = max(1, self.limit - self.reserve)
        return max(minimum, self._loading * self.window / spare)
