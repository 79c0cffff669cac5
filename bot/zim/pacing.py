"""Process-wide pacing of ZIM requests under the QPS limit.

ZIM counts request *arrivals* in any one-second window, so a token bucket's burst would trip it. The pacer
hands out evenly spaced send slots instead: one every 1 / (qps * headroom) seconds, first come first served,
which also shares the rate fairly between concurrent fetches. A rate-limit answer pauses every sender.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

# Slots 1 / (0.93 × qps) apart leave ~75 ms per one-second window for arrivals to bunch (network jitter, a
# paused event loop) before qps + 1 land together; 0.95 (53 ms) was measured to be overrun by 50-80 ms GC pauses.
DEFAULT_HEADROOM = 0.93
# A sender that wakes later than this fraction of an interval after its slot (an event-loop pause, a GC)
# must not send: it would land next to the following slots and put qps + 1 arrivals in one second.
LATE_FRACTION = 0.25


class Pacer(Protocol):
    async def wait_turn(self) -> float:
        """Wait for this request's send slot; return the seconds waited."""

    async def cool_down(self, seconds: float) -> None:
        """Hold every sender for `seconds` (after ZIM said we were too fast)."""


class SmoothPacer:
    """Evenly spaced send slots for one event loop's worth of requests."""

    __slots__ = ("_clock", "_interval", "_next_slot", "_sleep", "late_wakeups")

    def __init__(
        self,
        qps: float,
        *,
        headroom: float = DEFAULT_HEADROOM,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if qps <= 0 or not 0 < headroom <= 1:
            raise ValueError("qps must be positive and headroom in (0, 1]")
        self._interval = 1.0 / (qps * headroom)
        self._clock = clock
        self._sleep = sleep
        self._next_slot = float("-inf")
        self.late_wakeups = 0

    @property
    def interval(self) -> float:
        return self._interval

    async def wait_turn(self) -> float:
        started = self._clock()
        while True:
            now = self._clock()
            # Reserve the slot before sleeping, so concurrent callers queue up behind one another.
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._interval
            if slot > now:
                await self._sleep(slot - now)
            if self._clock() - slot <= self._interval * LATE_FRACTION:
                return max(0.0, slot - started)
            self.late_wakeups += 1  # give the slot up and queue again

    async def cool_down(self, seconds: float) -> None:
        self._next_slot = max(self._next_slot, self._clock() + seconds)
