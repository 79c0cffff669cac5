"""Process-wide pacing of ZIM requests under the QPS limit.

ZIM counts request *arrivals* in any one-second window, so a token bucket's burst would trip it. The pacer
keeps that window's promise directly instead: with N = the whole requests ZIM admits a second (20 at 20 QPS),
slot k is at least N / (qps * headroom) seconds (the window, 1.042 s at 20 QPS) after slot k - N, and at least 1 / qps
after slot k - 1. First come first served, which also shares the rate fairly between concurrent fetches.
In steady use that is the rate of evenly spaced slots 1 / (qps * headroom) apart; unlike them, time left
idle (a read's first round trip) is caught up within the window, still never above ZEGO_QPS, and any N + 1
consecutive arrivals keep the headroom (42 ms at 0.96) for a sender paused between its slot and the wire.
A rate-limit answer pauses every sender.

Two priorities share one schedule. Interactive callers (a person is waiting) reserve slots exactly as above.
Background callers (watches) take a slot only when the schedule is free now (no interactive caller holds a
later slot and the window has room) and at most `background_share` of the rate, spaced evenly on their own
schedule: interactive requests always go first, and the total arrivals at ZIM stay one schedule. An
interactive caller arriving just after a background send waits 1 / qps for it (or for the window).
"""

from __future__ import annotations

from typing import Literal, Protocol

# Any qps + 1 consecutive slots at least 1 / 0.96 s apart leave ~42 ms for arrivals to bunch before qps + 1
# land together. Our own share is bounded: a sender later than LATE_FRACTION / qps (12.5 ms at 20 QPS) after
# its slot takes a new one, and the rest is the few ms from that check to the wire (the heap is frozen, as
# serve and query do, bot/heap.py, so no 50-80 ms collector pause: why it was 0.93, 75 ms, before).
# benchmarks/pacer_margin.py measured at most 17.5 ms used (at 0.93, where the window bound); the other ~24 ms
# are for network jitter, which the loopback sandbox cannot show. An overrun is a retried 660300006.
DEFAULT_HEADROOM = 0.96
# A sender that wakes later than this fraction of 1 / qps after its slot (an event-loop pause, a GC)
# must not send: it would land next to the following slots and put qps + 1 arrivals in one second.
LATE_FRACTION = 0.25
# The share of each ZEGO app's rate that background (watch) traffic may use: ROOMUSERS_WATCH_QPS_SHARE.
DEFAULT_BACKGROUND_SHARE = 0.25

Priority = Literal["interactive", "background"]


class Pacer(Protocol):
    async def wait_turn(self) -> float:
        """Wait for this request's send slot; return the seconds waited."""

    async def wait_background_turn(self) -> float:
        """Wait for a background slot: after every waiting interactive caller, within the background share."""

    async def cool_down(self, seconds: float) -> None:
        """Hold every sender for `seconds` (after ZIM said we were too fast)."""
