"""Liveness and readiness, each from real observations: the event loop's lag, the link to Slack, Redis, and
each ZEGO app's last credential probe.

* live (GET /healthz) — 503 when the event loop has stalled for `loop_stall` seconds, or the Socket Mode
  connection has been down for `socket_down` seconds after having been up: a restart is what helps then.
* ready (GET /readyz) — 503 while Slack is not connected, any profile's credentials were rejected at the last
  probe (or its first probe has not finished), or the process is shutting down. Redis unreachable is reported
  but keeps the replica ready: it carries on with in-process state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bot.observability.metrics import EVENT_LOOP_LAG
from bot.slack.link import SlackLink
from bot.state import SharedState
from bot.zim.probe import CredentialProbe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timings:
    """How quickly health reacts; the defaults are production's, tests pass smaller ones."""

    loop_stall: float = 10.0
    socket_down: float = 120.0
    lag_interval: float = 0.25
    socket_poll: float = 2.0
    lag_window: float = 10.0


class LoopLagMonitor:
    """Measures how late a periodic timer fires: the event loop's lag, and how long it has been stalled."""

    def __init__(
        self, *, interval: float = 0.25, window: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = interval
        self._window = window
        self._clock = clock
        self._samples: deque[tuple[float, float]] = deque()
        self._last_tick: float | None = None  # None until run() has started
        self._last_warning = -float("inf")

    async def run(self) -> None:
        while True:
            before = self._clock()
            await asyncio.sleep(self._interval)
            now = self._clock()
            lag = max(0.0, now - before - self._interval)
            self._last_tick = now
            self._samples.append((now, lag))
            while self._samples and self._samples[0][0] < now - self._window:
                self._samples.popleft()
            EVENT_LOOP_LAG.set(self.worst_lag())
            if lag > 1.0 and now - self._last_warning > 60:
                self._last_warning = now
                log.warning("the event loop stalled for %.1f s", lag)

    def worst_lag(self) -> float:
        """The worst lag seen in the window."""
        return max((lag for _, lag in self._samples), default=0.0)

    def stalled_for(self) -> float:
        """The longest stall in the window, or how overdue the monitor's own next tick is, whichever is more."""
        overdue = 0.0 if self._last_tick is None else self._clock() - self._last_tick - self._interval
        return max(overdue, self.worst_lag())


class ProcessHealth:
    """What /healthz and /readyz answer."""

    def __init__(
        self,
        *,
        link: SlackLink,
        lag: LoopLagMonitor,
        state: SharedState,
        probes: Mapping[str, CredentialProbe],
        timings: Timings = Timings(),
    ) -> None:
        self.link = link
        self.lag = lag
        self.state = state
        self.probes = dict(probes)
        self.timings = timings
        self.draining = False
        # HTTP mode is ready only once the Slack endpoint accepts requests (the ops port may open first); in
        # Socket Mode nothing listens here, and the link (Slack's connection) is what readiness waits for.
        self.accepting = link.mode == "socket"

    def liveness(self) -> tuple[bool, dict[str, str]]:
        stalled = self.lag.stalled_for()
        loop_ok = stalled < self.timings.loop_stall
        checks = {"event_loop": f"ok (lag {self.lag.worst_lag():.3f} s)" if loop_ok else f"stalled {stalled:.1f} s"}
        live = loop_ok
        if self.link.mode == "socket":
            checks["slack"] = self.link.describe()
            down = self.link.down_for()
            if down is not None and down >= self.timings.socket_down:
                live = False
        return live, checks

    async def readiness(self) -> tuple[bool, dict[str, str]]:
        checks = {"slack": self.link.describe()}
        checks["redis"] = (await self.state.health())["redis"]
        for name, probe in self.probes.items():
            checks[f"zim:{name}"] = probe.check()
        if self.draining:
            checks["process"] = "shutting down"
        elif not self.accepting:
            checks["process"] = "starting"
        ready = (
            self.link.ready()
            and self.accepting
            and not self.draining
            and all(probe.verdict not in ("checking", "rejected") for probe in self.probes.values())
        )
        return ready, checks
