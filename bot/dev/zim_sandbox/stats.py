"""Counters the sandbox keeps so tests and benchmarks can check what a client really sent."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class SandboxStats:
    """What the sandbox saw since the last reset.

    `by_code` keys are ZIM Codes (ints) for JSON answers and strings for answers without a Code:
    "http_<status>", "drop", "garbage". `arrivals` are the monotonic times of requests that passed the
    signature check, i.e. the ones the QPS window counts.
    """

    requests: int = 0
    members_requests: int = 0  # QueryRoomMembers among `requests`
    by_code: Counter[int | str] = field(default_factory=Counter)
    rate_limited: int = 0
    arrivals: list[float] = field(default_factory=list)
    per_room: Counter[str] = field(default_factory=Counter)
    faults_applied: Counter[str] = field(default_factory=Counter)
    duplicate_nonces: int = 0
    _nonces: set[str] = field(default_factory=set, repr=False)

    @property
    def nonces_seen(self) -> int:
        """Distinct signature nonces seen; compare with `duplicate_nonces` to spot reuse."""
        return len(self._nonces)

    def record_nonce(self, nonce: str) -> None:
        # Reuse is recorded, not refused: ZIM documents no replay check, so the sandbox must not invent one.
        if nonce in self._nonces:
            self.duplicate_nonces += 1
        else:
            self._nonces.add(nonce)

    def record_answer(self, key: int | str, *, rate_limited: bool) -> None:
        self.by_code[key] += 1
        if rate_limited:
            self.rate_limited += 1

    def max_in_window(self, window: float = 1.0) -> int:
        """The most arrivals inside any `window`-second span (same rule as the QPS limiter)."""
        best = start = 0
        times = self.arrivals
        for end, now in enumerate(times):
            while now - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    def reset(self) -> None:
        """Zero every counter in place, so references to this object stay valid."""
        self.requests = self.members_requests = self.rate_limited = self.duplicate_nonces = 0
        for counter in (self.by_code, self.per_room, self.faults_applied):
            counter.clear()
        self.arrivals.clear()
        self._nonces.clear()

    def to_json(self, *, include_arrivals: bool = False) -> dict[str, object]:
        data: dict[str, object] = {
            "requests": self.requests,
            "by_code": {str(key): count for key, count in self.by_code.items()},
            "rate_limited": self.rate_limited,
            "arrival_count": len(self.arrivals),
            "max_in_window_1s": self.max_in_window(1.0),
            "per_room": dict(self.per_room),
            "faults_applied": dict(self.faults_applied),
            "nonces_seen": self.nonces_seen,
            "duplicate_nonces": self.duplicate_nonces,
        }
        if include_arrivals:
            data["arrivals"] = list(self.arrivals)
        return data
