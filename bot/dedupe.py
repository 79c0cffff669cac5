"""Answer each Slack event once: Slack retries deliveries it thinks failed, with the same event_id."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from cachetools import TTLCache

EVENT_TTL_SECONDS = 3600.0  # Slack's last retry comes about 5 minutes after the first delivery


class EventDeduper(Protocol):
    async def first_sighting(self, event_id: str) -> bool:
        """True the first time `event_id` is seen within the TTL, False for every repeat."""


class MemoryEventDeduper:
    def __init__(
        self, *, ttl: float = EVENT_TTL_SECONDS, max_events: int = 100_000, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._seen: TTLCache[str, bool] = TTLCache(maxsize=max_events, ttl=ttl, timer=timer)

    async def first_sighting(self, event_id: str) -> bool:
        if event_id in self._seen:
            return False
        self._seen[event_id] = True
        return True
