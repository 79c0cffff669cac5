"""How often watches can poll within the background share of a ZEGO app's rate, and where a new group's polls
fall in the interval.

Available background rate = share × ZEGO_QPS × pacer headroom (what the pacer hands to background callers).
Needed rate = Σ over the app's poll groups of (requests per poll ÷ interval). When needed exceeds available,
every group's interval stretches by the same factor, needed ÷ available, so together they use exactly the
share and none is starved.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable

from bot.zim.members import MAX_MEMBERS_PER_CALL
from bot.zim.pacing import DEFAULT_HEADROOM


def requests_per_poll(*, counts: bool, user_ids: int) -> int:
    """One QueryRoomUserList page for count conditions, one QueryRoomMembers per 10 watched users."""
    return int(counts) + math.ceil(user_ids / MAX_MEMBERS_PER_CALL)


def available_rate(qps: float, share: float, headroom: float = DEFAULT_HEADROOM) -> float:
    return qps * headroom * share


def stretched_interval(interval: float, costs: Iterable[int], *, qps: float, share: float) -> float:
    """The interval every group of one app really polls at: `interval`, or longer when the share is short."""
    needed = sum(costs) / interval
    available = available_rate(qps, share)
    if needed <= available:
        return interval
    return interval * needed / available


def spread_offset(group: str, interval: float) -> float:
    """How far after its first watch is added a group's first regular poll falls, in (0, interval]: its name
    hashed, so groups added together are spread over the interval instead of bunched. (The place is relative to
    the moment of `add`; `next_due` then keeps each group in its place.)"""
    digest = hashlib.blake2b(group.encode("utf-8"), digest_size=8).digest()
    fraction = (int.from_bytes(digest, "big") + 1) / 2**64
    return interval * fraction


def next_due(due: float, now: float, interval: float) -> float:
    """When a group polled for the poll due at `due` (at `now`, or later) is next due: the first of its own
    places `due + k × interval` after `now`. Keeping the phase, a stall never bunches overdue groups together."""
    if now < due + interval:
        return due + interval
    return due + interval * math.ceil((now - due) / interval + 1e-9)
