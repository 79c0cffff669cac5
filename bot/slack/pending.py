"""Work under way, so a shutdown (SIGTERM) can let it finish, or tell its requester to try again.

Each listener runs its slow part through `run(work, on_abandon)`. `drain(grace)` waits for the jobs; any still running
when the grace period ends get their `on_abandon` (a "try again" message) and are cancelled. Nothing is left
unanswered by a rolling deploy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Abandon = Callable[[], Awaitable[object]]
NOTIFY_TIMEOUT_SECONDS = 3.0


def _answers(count: int) -> str:
    return "1 answer" if count == 1 else f"{count:,} answers"


class PendingAnswers:
    def __init__(self) -> None:
        self._jobs: dict[asyncio.Task[object], Abandon] = {}
        self.closing = False

    def __len__(self) -> int:
        return len(self._jobs)

    async def run(self, work: Callable[[], Awaitable[object]], on_abandon: Abandon) -> None:
        """Do `work` as a tracked job; once shutting down, only `on_abandon` (a "try again" message)."""
        if self.closing:
            await on_abandon()
            return
        task = asyncio.current_task()
        assert task is not None  # Bolt runs every listener in a task of its own
        self._jobs[task] = on_abandon
        try:
            await work()
        finally:
            self._jobs.pop(task, None)

    async def drain(self, grace: float) -> int:
        """Stop taking work, wait up to `grace` seconds, then notify and cancel what is left; return that count."""
        self.closing = True
        if self._jobs:
            log.info("waiting up to %.0f s for %s in progress", grace, _answers(len(self._jobs)))
            await asyncio.wait(list(self._jobs), timeout=grace)
        left = list(self._jobs.items())
        for task, on_abandon in left:
            try:
                async with asyncio.timeout(NOTIFY_TIMEOUT_SECONDS):  # not wait_for: 3.11's can lose a cancel
                    await on_abandon()
            except Exception as error:  # a failed goodbye must not stop the others'
                log.warning("could not tell a requester to retry: %s", type(error).__name__)
            task.cancel()
        if left:
            await asyncio.gather(*(task for task, _ in left), return_exceptions=True)
            log.warning(
                "%s cut short by the shutdown; their requesters were asked to retry",
                "1 answer was" if len(left) == 1 else f"{len(left):,} answers were",
            )
        return len(left)
