"""The running schedule of watch polls: each group keeps its own place in the interval, also after a stall (a
Redis outage, every replica down, an event-loop pause), so polls that were spread stay spread."""

from __future__ import annotations

import asyncio
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.watch.budget import next_due
from bot.watch.conditions import parse_condition
from bot.watch.model import Watch, group_of, new_watch_id
from bot.watch.poller import Reading, WatchPoller
from bot.watch.store import Limits, MemoryWatchStore

BOUNDED = settings(max_examples=300, deadline=None)
INTERVAL = 30.0


def phase(at: float, interval: float) -> float:
    return math.fmod(at, interval)


@BOUNDED
@given(
    st.floats(min_value=0, max_value=1e6),
    st.floats(min_value=0, max_value=1e5),
    st.floats(min_value=1, max_value=3600),
)
def test_the_next_poll_is_the_groups_own_next_place_after_now(due: float, late: float, interval: float):
    now = due + late
    upcoming = next_due(due, now, interval)
    assert now < upcoming <= now + interval * (1 + 1e-6)
    steps = (upcoming - due) / interval
    assert abs(steps - round(steps)) < 1e-6 and round(steps) >= 1  # the same phase as before


@BOUNDED
@given(
    st.lists(st.floats(min_value=0.01, max_value=INTERVAL), min_size=2, max_size=40, unique=True).filter(
        lambda offsets: min(abs(a - b) for a in offsets for b in offsets if a != b) > 1e-3
    ),
    st.floats(min_value=0, max_value=10_000),
)
def test_groups_polled_together_after_a_stall_stay_spread(offsets: list[float], stall: float):
    now = max(offsets) + stall  # every group overdue, all polled in one turn at `now`
    upcoming = [next_due(offset, now, INTERVAL) for offset in offsets]
    assert len(set(upcoming)) == len(offsets)  # never bunched on one instant
    for offset, at in zip(offsets, upcoming, strict=True):
        assert (
            abs(phase(at, INTERVAL) - phase(offset, INTERVAL)) < 1e-6
            or abs(abs(phase(at, INTERVAL) - phase(offset, INTERVAL)) - INTERVAL) < 1e-6
        )


class NothingToSay:
    """No ZEGO app is configured in this test, so the poller has nothing to post; any call is a failure."""

    async def alert(self, watch: Watch, reading: Reading) -> None:
        raise AssertionError("no alert expected")

    async def checking_failed(self, watch: Watch, problem: str) -> None:
        raise AssertionError("no notice expected")

    async def checking_works(self, watch: Watch) -> None:
        raise AssertionError("no notice expected")

    async def expired(self, watch: Watch) -> None:
        raise AssertionError("no expiry expected")


async def test_the_poller_keeps_each_groups_place_after_a_stall():
    clock = [1000.0]
    store = MemoryWatchStore(clock=lambda: clock[0])
    offsets = [1.5, 19.9, 22.1, 26.0, 26.2]  # the reviewer's case: after a 120 s stall all landed on one instant
    condition = parse_condition("--when-empty", None)
    for index, offset in enumerate(offsets):
        watch = Watch(new_watch_id(), "T1", "C1", None, "U1", "nowhere", f"r{index}", condition, 0.0, 9e12)
        await store.add(watch, limits=Limits(100, 100), first_due_in=offset)
    clock[0] += max(offsets) + 120
    poller = WatchPoller(store, {}, NothingToSay(), interval=INTERVAL, share=0.25, clock=lambda: clock[0])
    poller.start()
    try:
        async with asyncio.timeout(30):
            while len(poller.spans) < len(offsets) or poller.polling or (await store.next_due_in() or 0) <= 0:  # noqa: ASYNC110 - plain attributes
                await asyncio.sleep(0.01)
    finally:
        await poller.aclose()
    upcoming = dict(store._due)  # the schedule itself is what is tested
    assert len(set(upcoming.values())) == len(offsets)
    for index, offset in enumerate(offsets):
        at = upcoming[group_of("nowhere", f"r{index}")]
        assert at > clock[0]
        steps = (at - (1000.0 + offset)) / INTERVAL
        assert abs(steps - round(steps)) < 1e-6
