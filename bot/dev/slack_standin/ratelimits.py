"""Slack's rate limits for the two methods an answer leans on (slack-platform.md §10, §13).

- `chat.update` is Tier 3: about 50 calls per minute for the whole app (per workspace). Modelled as a sliding
  window: at most `update_limit` calls in any `update_window` seconds.
- `chat.postMessage` allows about one message per second per channel, with short bursts. Modelled as a token
  bucket per channel; the burst size is not documented (an assumption: 3).

Past a limit Slack answers HTTP 429 `{"ok": false, "error": "ratelimited"}` with `Retry-After` in seconds.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bot.dev.slack_standin.models import JsonDict


@dataclass(frozen=True, slots=True)
class RateLimits:
    update_limit: int = 50
    update_window: float = 60.0
    post_rate: float = 1.0  # chat.postMessage per channel per second ...
    post_burst: int = 3  # ... with bursts this size (undocumented: an assumption)


UNLIMITED = RateLimits(update_limit=10**9, post_rate=1e9, post_burst=10**9)


class RateLimiter:
    def __init__(self, limits: RateLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._updates: deque[float] = deque()
        self._buckets: dict[str, tuple[float, float]] = {}  # channel -> (tokens, at)

    def admit(self, method: str, channel: str | None) -> int | None:
        """None: the call goes on (and is counted). Otherwise the Retry-After (whole seconds, >= 1) of a 429."""
        now = self._clock()
        if method == "chat.update":
            return self._admit_update(now)
        if method == "chat.postMessage" and channel:
            return self._admit_post(channel, now)
        return None

    def _admit_update(self, now: float) -> int | None:
        window, limit = self.limits.update_window, self.limits.update_limit
        while self._updates and self._updates[0] <= now - window:
            self._updates.popleft()
        if len(self._updates) >= limit:
            return max(1, math.ceil(self._updates[0] + window - now))
        self._updates.append(now)
        return None

    def _admit_post(self, channel: str, now: float) -> int | None:
        rate, burst = self.limits.post_rate, float(self.limits.post_burst)
        tokens, at = self._buckets.get(channel, (burst, now))
        tokens = min(burst, tokens + (now - at) * rate)
        if tokens < 1.0:
            self._buckets[channel] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / rate))
        self._buckets[channel] = (tokens - 1.0, now)
        return None


def channel_of(args: JsonDict) -> str | None:
    channel = args.get("channel")
    return channel if isinstance(channel, str) and channel else None


def max_in_window(times: Iterable[float], window: float) -> int:
    """The most calls that fell in any `window`-second span (the number Slack's limit is about)."""
    ordered = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(ordered):
        while ordered[start] <= at - window:
            start += 1
        most = max(most, end - start + 1)
    return most
