"""Identifiers in the shapes Slack uses: message timestamps, event/file/DM IDs, trigger IDs, URL tokens."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable

_UPPER_ALNUM = string.ascii_uppercase + string.digits
_ALNUM = string.ascii_letters + string.digits
# Two messages minted in the same microsecond still need distinct, ordered ts values; Slack's own
# timestamps commonly step by 100 µs (".000100", ".000200"), so the stand-in does too.
_TS_STEP_MICROS = 100


class TsClock:
    """Mints message `ts` strings ("1700000000.000100"): unique, strictly increasing, derived from the clock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._last_micros = 0

    def next(self) -> str:
        micros = max(int(self._clock() * 1_000_000), self._last_micros + _TS_STEP_MICROS)
        self._last_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def slack_id(prefix: str, length: int = 10) -> str:
    """An ID like Slack's ("F0ABC12345", "Ev0123ABCD"): a type prefix and upper-case alphanumerics."""
    return prefix + "".join(secrets.choice(_UPPER_ALNUM) for _ in range(length))


def block_id() -> str:
    """Slack gives blocks without a block_id a short random one when it stores the message."""
    return "".join(secrets.choice(_ALNUM) for _ in range(4))


def trigger_id(now: float) -> str:
    """A trigger_id shaped like Slack's ("<digits>.<digits>.<hex>"); opaque to apps."""
    return f"{int(now * 1000)}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"


def url_token() -> str:
    """The secret part of a response_url: unguessable, URL-safe."""
    return secrets.token_urlsafe(24)
