"""Failures a test can schedule: broken or slow response_urls, rate-limited or failing Web API methods.

Each knob is consumed by the next matching requests, in order, so a test states exactly which calls fail
("the next 2 response_url posts get 500") and everything after them behaves normally again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

ANY_METHOD = "*"

# Bodies Slack's hooks answer with; anything else gets a generic one.
_RESPONSE_URL_BODIES = {404: "no_service", 410: "expired_url", 429: "rate_limited", 500: "internal_error"}


@dataclass(frozen=True, slots=True)
class ApiFault:
    """How one Web API call is to fail: HTTP status, Slack error code, and Retry-After for 429s."""

    status: int
    error: str
    retry_after: int | None = None


class Faults:
    def __init__(self) -> None:
        self._response_failures: deque[int] = deque()
        self._response_delays: deque[float] = deque()
        self._api_faults: dict[str, deque[ApiFault]] = {}
        self._api_drops: dict[str, int] = {}

    def fail_response_urls(self, status: int, count: int) -> None:
        self._response_failures.extend([status] * count)

    def delay_response_urls(self, seconds: float, count: int) -> None:
        self._response_delays.extend([seconds] * count)

    def fail_api_calls(self, method: str, fault: ApiFault, count: int) -> None:
        self._api_faults.setdefault(method, deque()).extend([fault] * count)

    def drop_api_calls(self, method: str, count: int) -> None:
        self._api_drops[method] = self._api_drops.get(method, 0) + count

    def take_api_drop(self, method: str) -> bool:
        """Whether the next call of `method` loses its connection before any answer (a network failure)."""
        for key in (method, ANY_METHOD):
            if self._api_drops.get(key):
                self._api_drops[key] -= 1
                return True
        return False

    def take_response_delay(self) -> float:
        return self._response_delays.popleft() if self._response_delays else 0.0

    def take_response_failure(self) -> tuple[int, str] | None:
        """(status, body) for the next response_url post if it is to fail."""
        if not self._response_failures:
            return None
        status = self._response_failures.popleft()
        return status, _RESPONSE_URL_BODIES.get(status, "injected_failure")

    def take_api_fault(self, method: str) -> ApiFault | None:
        for key in (method, ANY_METHOD):
            queue = self._api_faults.get(key)
            if queue:
                return queue.popleft()
        return None
