"""The sandbox's QPS limit: a sliding one-second window of arrivals, like ZIM's 20 requests/s."""

from __future__ import annotations

from collections import deque


class ArrivalWindow:
    """Counts arrivals in the last `window` seconds; the caller refuses those beyond its limit.

    Refused arrivals stay in the window: a client that keeps hammering stays limited, which is how a
    real limiter punishes retry storms and what a well-behaved client's backoff must survive.
    """

    def __init__(self, window: float = 1.0) -> None:
        self.window = window
        self._times: deque[float] = deque()

    def arrive(self, now: float) -> int:
        """Record an arrival at monotonic time `now`; return the arrivals in the window, this one included."""
        times = self._times
        while times and now - times[0] >= self.window:
            times.popleft()
        times.append(now)
        return len(times)
