"""Process-wide pacing of ZIM requests under the QPS limit.

ZIM counts request *arrivals* in any one-second window, so a token bucket's burst would trip it. The pacer
hands out evenly spaced send slots instead: one every 1 / (qps * headroom) seconds, first come first served,
which also shares the rate fairly between concurrent fetches. A rate-limit answer pauses every sender.
"""

from __future__ import annotations

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
