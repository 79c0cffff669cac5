"""Refusing replayed Slack requests in HTTP mode.

Slack signs every request (`X-Slack-Signature`, HMAC-SHA256 over `v0:{timestamp}:{raw body}`), and Bolt
refuses signatures that are wrong or whose timestamp is more than 5 minutes from our clock. Neither stops
someone who captured a genuine request (a proxy log, a leaked HAR file) from sending it again within those
minutes: the copy is byte-identical, so its signature verifies. A signature is unique to its timestamp and
body, so remembering each verified signature for as long as it could still verify refuses every copy.

Slack's own retries are usually different requests: each carries a new `X-Slack-Request-Timestamp`, hence a
new signature, and is answered once by the event deduper (same `event_id`), not refused here.

The key is the signature alone. `X-Slack-Retry-Num` is not covered by the signature, so it cannot be part of
the key (anyone replaying a request could add it to get through). A repeated signature that carries the
header (Slack retrying within the same second, or a replay dressed as one) is `ALREADY_ANSWERED`: answered
200 with `X-Slack-No-Retry: 1` and never handled again; without it, `REPLAYED_REQUEST` (401).

Only signatures that verify are remembered, so forged traffic cannot fill the cache. The in-process guard
protects one process; replicas behind a load balancer need a shared guard (e.g. Redis `SET key 1 NX EX ttl`)
implementing the same protocol.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from slack_sdk.signature import Clock, SignatureVerifier

from bot.state.once import MemoryReplayGuard, ReplayGuard

__all__ = [
    "ALREADY_ANSWERED",
    "INVALID_REQUEST",
    "REPLAYED_REQUEST",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "ReplayFilter",
]

log = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"
RETRY_HEADER = "X-Slack-Retry-Num"
INVALID_REQUEST = "invalid request"  # Bolt's own 401 body for a bad signature
REPLAYED_REQUEST = "replayed request"
ALREADY_ANSWERED = "already answered"


class _Clock(Clock):
    """slack_sdk's Clock over a plain callable (so tests can move time)."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


class ReplayFilter:
    """Verify a request exactly as Bolt will, then let only the first use of its signature through."""

    def __init__(
        self, signing_secret: str, guard: ReplayGuard | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._verifier = SignatureVerifier(signing_secret, clock=_Clock(clock))
        self._guard: ReplayGuard = guard if guard is not None else MemoryReplayGuard()

    def __repr__(self) -> str:  # never show the signing secret the verifier holds
        return f"ReplayFilter(guard={type(self._guard).__name__})"

    async def refusal(self, body: str, headers: Mapping[str, str]) -> str | None:
        """None when the request may go on to Bolt; otherwise the reason to answer 401 with.

        `body` must be the exact text Bolt verifies (`AsyncBoltRequest.raw_body`); `headers` a case-insensitive
        mapping such as aiohttp's `request.headers` (its `get` gives the first value, as Bolt reads it).
        Requests that fail verification are refused without being remembered; junk headers that make
        SignatureVerifier raise (and Bolt answer 500) count as failures.
        """
        timestamp, signature = headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER)
        try:
            verified = self._verifier.is_valid(body, timestamp, signature)
        except (ValueError, OverflowError, TypeError):  # int("junk"), a 400-digit timestamp, a non-ASCII signature
            verified = False
        if not verified or timestamp is None or signature is None:
            log.info("refused a Slack request whose signature does not verify (timestamp %.20r)", timestamp)
            return INVALID_REQUEST
        if not await self._guard.first_use(signature, timestamp):
            if headers.get(RETRY_HEADER) is not None:
                log.info("a retry of a Slack request already taken (timestamp %s): not handled again", timestamp)
                return ALREADY_ANSWERED
            log.warning("refused a replayed Slack request (timestamp %s, already answered once)", timestamp)
            return REPLAYED_REQUEST
        return None
