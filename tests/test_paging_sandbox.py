"""Random change schedules against the real ZimClient and the sandbox over loopback HTTP (hypothesis, bounded).

The sandbox applies each change right after it answers a given page of a given Mode (no sleeps), so every
schedule lands exactly where hypothesis put it; the interleaving of the two chains is whatever the event
loop does, and the oracle does not depend on it. Small pages (Limit 5) and rooms (at most 60 users) keep
the examples fast while exercising every meeting and shift the big rooms have.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.dev.zim_sandbox import ZimSandbox
from bot.roster.model import Roster
from bot.state.pacer import SmoothPacer
from bot.zim import RetryPolicy, ZimClient, fetch_roster
from bot.zim.paging import NEWEST_FIRST, OLDEST_FIRST

LIMIT = 5
QUICK = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01, total_budget=2.0)

op_json = st.one_of(
    st.builds(lambda i: {"op": "leave", "index": i}, st.integers(-3, 3)),
    st.builds(lambda i: {"op": "reconnect", "index": i}, st.integers(-3, 3)),
    st.just({"op": "join", "count": 1}),
    st.builds(lambda state: {"op": "destroy", "state": state}, st.sampled_from(["destroying", "gone"])),
)
change = st.tuples(st.sampled_from([0, 1]), st.integers(1, 6), st.lists(op_json, min_size=1, max_size=2))


def invisible(events: list[tuple[str, Any, str]], delivered: set[str]) -> bool:
    """A leave and a join between two pages the client received (see tests/test_paging_core.py)."""
    gap: set[str] = set()
    for kind, what, who in events:
        if kind == "page":
            if who in delivered:
                gap = set()
        elif who:
            gap.add(str(what))
            if {"leave", "join"} <= gap:
                return True
    return False


def unpaced_client(sandbox: ZimSandbox, http: httpx.AsyncClient) -> ZimClient:
    return ZimClient(
        app_id=sandbox.app_id,
        server_secret=sandbox.secret,
        base_url=sandbox.base_url,
        pacer=SmoothPacer(100_000),
        http=http,
        retry=QUICK,
        page_limit=LIMIT,
    )


async def read_with_changes(
    n: int, first_mode: int, changes: list[tuple[int, int, list[dict[str, Any]]]], size_hint: int = 0
) -> tuple[Roster, list[tuple[str, Any, str]], list[tuple[str, ...]], list[str]]:
    async with ZimSandbox(qps=100_000) as sandbox, httpx.AsyncClient(verify=False) as http:  # noqa: S501  # plain HTTP on loopback: no CA bundle to load
        room = sandbox.add_room("prop", n, record_history=True)
        for mode, page, ops in changes:
            sandbox.schedule("prop", after=(mode, page), ops=ops)
        client = unpaced_client(sandbox, http)
        roster = await fetch_roster(client, "prop", first_mode=first_mode, size_hint=size_hint)
        assert room.history is not None
        return roster, sandbox.events("prop"), room.history, [uid for uid, _ in room.users]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 60),
    first_mode=st.sampled_from([OLDEST_FIRST, NEWEST_FIRST]),
    changes=st.lists(change, max_size=3),
    size_hint=st.sampled_from([0, 1_000]),  # 1,000: both chains' first pages go out at once
)
def test_random_change_schedules_over_http(
    n: int, first_mode: int, changes: list[tuple[int, int, list[dict[str, Any]]]], size_hint: int
) -> None:
    roster, events, history, final = asyncio.run(read_with_changes(n, first_mode, changes, size_hint))
    ids = [user.user_id for user in roster.users]
    applied = [(what, who) for kind, what, who in events if kind == "op"]
    assert len(set(ids)) == len(ids), "a user listed twice"
    if not applied:
        assert roster.complete, "a still room is always complete"
        assert ids == final, "a still room is read exactly, in join order"
    if roster.complete:
        assert len(ids) == roster.reported_count
        if not invisible(events, set(roster.request_ids)):
            destroyed_empty = roster.being_destroyed and not ids  # 660300008 on the first page
            assert destroyed_empty or any(sorted(ids) == sorted(m) for m in history), "complete, but no moment"
    else:
        assert f"{len(ids):,} of {roster.reported_count:,}" in roster.problem
    if not any(what == "destroy" for what, _ in applied):
        stable = set(history[0]).intersection(*map(set, history))
        skips = sum(what in ("leave", "reconnect") and bool(who) for what, who in applied)
        assert len(stable - set(ids)) <= skips, "the read stopped early"


async def read_still_room(n: int, first_mode: int) -> tuple[Roster, int]:
    # No pacing, and a latency far longer than a send takes to arrive: every page sent is counted by the
    # sandbox before any answer could end the read, so the count is the pages the read's rule sent.
    async with ZimSandbox(qps=100_000, latency_ms=30) as sandbox, httpx.AsyncClient(verify=False) as http:  # noqa: S501  # plain HTTP on loopback: no CA bundle to load
        sandbox.add_room("still", n)
        client = unpaced_client(sandbox, http)
        roster = await fetch_roster(client, "still", first_mode=first_mode)
        return roster, sandbox.stats.requests


@pytest.mark.parametrize("first_mode", [OLDEST_FIRST, NEWEST_FIRST])
@pytest.mark.parametrize("n", [3, 7, 12, 48, 49, 100, 103])
def test_a_still_room_sends_no_page_it_does_not_need(n: int, first_mode: int) -> None:
    """Above one page, the read needs every user once plus at least one both chains read where they meet:
    ceil((n + 1) / Limit) pages, and never fewer than three (the first page, the first chain's second and the
    other chain's first, which checks the far end). A page one chain would send while the other chain's
    pages already on their way end the read is never sent."""
    roster, requests = asyncio.run(read_still_room(n, first_mode))
    assert roster.complete and len(roster.users) == n
    assert requests == (1 if n <= LIMIT else max(3, math.ceil((n + 1) / LIMIT)))
