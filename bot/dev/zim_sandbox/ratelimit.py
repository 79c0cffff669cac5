"""The sandbox's QPS limits: sliding one-second windows of arrivals, like ZIM's 20 requests/s (the app) and
QueryRoomMembers' 5 requests/s (each room)."""

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

    def idle(self, now: float) -> bool:
        """Whether no arrival is left in the window at `now` (so the window can be forgotten)."""
        return not self._times or now - self._times[-1] >= self.window


class RoomWindows:
    """One `ArrivalWindow` per key (a room). Idle windows are dropped now and then, so memory stays bounded
    by the rooms active in the last second, not by every room ever asked about."""

    PRUNE_EVERY = 1024

    def __init__(self, window: float = 1.0) -> None:
        self.window = window
        self._windows: dict[str, ArrivalWindow] = {}
        self._added = 0

    def __len__(self) -> int:
        return len(self._windows)

    def arrive(self, key: str, now: float) -> int:
        """Record an arrival for `key`; return the arrivals in its window, this one included."""
        window = self._windows.get(key)
        if window is None:
            self._added += 1
            if self._added % self.PRUNE_EVERY == 0:
                self._windows = {k: w for k, w in self._windows.items() if not w.idle(now)}
            window = self._windows[key] = ArrivalWindow(self.window)
        return window.arrive(now)
