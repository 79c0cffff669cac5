"""Priority in the Redis pacer, against a real redis-server: interactive first, background within its share,
one schedule for every replica, and the interactive key exactly as the previous version writes it.

Assertions are on Redis's clock (the slots the scripts hand out), not on how fast anything ran.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from bot.state import build_shared_state
from bot.state.pacer import FallbackPacer, RedisPacer, SmoothPacer
from bot.zim.pacing import DEFAULT_HEADROOM
from tests.redis_server import RedisServer

SLACK_US = 2e-6  # slots are whole microseconds


def gaps(slots):
    ordered = sorted(slots)
    return [b - a for a, b in itertools.pairwise(ordered)]


async def test_reserved_interactive_slots_keep_background_out_and_write_nothing(clients):
    pacer = RedisPacer(clients(), qps=50, key="t:busy")
    watcher = clients()
    reserved = [await pacer.reserve() for _ in range(10)]
    last_slot = reserved[-1][0]
    # Ten slots are far from a full window (50 at 50 QPS): 1 / QPS apart.
    assert last_slot - reserved[0][0] == pytest.approx(9 * pacer.min_gap, abs=SLACK_US * 10)
    slot, wait = await pacer.reserve_background()
    assert slot is None
    # It may try again once 1 / QPS after the last interactive slot has passed, not before: the ten slots
    # started about now (the first was free), so that is at most ten gaps away.
    assert reserved[0][1] == 0
    assert 8 * pacer.min_gap <= wait <= 10 * pacer.min_gap + SLACK_US
    assert await watcher.exists("t:busy:background") == 0
    # The interactive key keeps the old version's format: the next free slot, whole microseconds; the window
    # list holds the ten slots, newest first.
    assert int(await watcher.get("t:busy")) == round(last_slot * 1_000_000) + round(pacer.min_gap * 1_000_000)
    window = [int(raw) for raw in await watcher.lrange(pacer.window_key, 0, -1)]
    assert window == [round(slot * 1_000_000) for slot, _ in reversed(reserved)]


async def test_a_background_slot_is_a_slot_of_the_shared_schedule(clients):
    """Interactive and background callers share one schedule: a background slot pushes both."""
    new, old = RedisPacer(clients(), qps=50, key="t:mixed"), RedisPacer(clients(), qps=50, key="t:mixed")
    watcher = clients()
    background_slot, wait = await new.reserve_background()
    assert background_slot is not None
    assert wait == 0
    interactive_slot, _ = await old.reserve()
    assert interactive_slot - background_slot == pytest.approx(new.min_gap, abs=SLACK_US)
    raw = await watcher.get("t:mixed:background")
    assert int(raw) == round(background_slot * 1_000_000) + round(new.background_interval * 1_000_000)
    # Neither key has a TTL, so a volatile-* maxmemory policy never evicts the schedule.
    assert await watcher.pttl("t:mixed:background") == -1
    assert await watcher.pttl("t:mixed") == -1
    assert await watcher.pttl(new.window_key) == -1
    # And the background schedule holds the next background caller for its own, longer interval.
    slot, wait = await new.reserve_background()
    assert slot is None
    assert wait > new.interval


async def test_cool_down_holds_background_callers(clients):
    pacer = RedisPacer(clients(), qps=50, key="t:cool-bg")
    await pacer.cool_down(0.3)
    slot, wait = await pacer.reserve_background()
    assert slot is None
    assert 0.25 <= wait <= 0.3


async def test_two_replicas_interactive_first_background_within_its_share(clients):
    qps, share = 20.0, 0.25
    replicas = [RedisPacer(clients(), qps=qps, key="t:priority", background_share=share) for _ in range(2)]
    interactive_slots: list[float] = []
    background_slots: list[float] = []
    started = asyncio.Event()  # set once every person holds a slot: then the watches start asking

    async def person(replica: RedisPacer, sends: int) -> None:
        # Like wait_turn, recording the slot: reserve, sleep until it, send.
        for _ in range(sends):
            slot, delay = await replica.reserve()
            interactive_slots.append(slot)
            if len(interactive_slots) == 4:
                started.set()
            await asyncio.sleep(max(delay, 0.0))

    async def people() -> None:
        # Four people, each always holding a reserved slot: the schedule never has a free "now".
        await asyncio.gather(*(person(replicas[i % 2], 6) for i in range(4)))

    async def watch(replica: RedisPacer) -> None:
        await started.wait()
        for _ in range(2):
            background_slots.append(await replica.take_background_slot())

    await asyncio.gather(people(), *(watch(replicas[i % 2]) for i in range(2)))

    interval = replicas[0].interval
    assert interval == pytest.approx(1 / (qps * DEFAULT_HEADROOM))
    assert replicas[0].background_interval == pytest.approx(interval / share)
    # Interactive first: no background slot until the last interactive one had passed.
    assert min(background_slots) >= max(interactive_slots) + replicas[0].min_gap - SLACK_US
    # One schedule: nothing bunched, interactive and background together: 1 / QPS apart at least, and any
    # QPS + 1 consecutive slots a whole window apart.
    every = sorted(interactive_slots + background_slots)
    assert min(gaps(every)) >= replicas[0].min_gap - SLACK_US
    assert min(b - a for a, b in zip(every, every[int(qps) :], strict=False)) >= replicas[0].window - SLACK_US
    # Background within its share, evenly spaced on its own schedule across both replicas.
    assert min(gaps(background_slots)) >= replicas[0].background_interval - SLACK_US
    assert len(background_slots) == 4


async def test_background_alone_across_replicas_never_exceeds_its_share(clients):
    replicas = [RedisPacer(clients(), qps=50, key="t:bg-only", background_share=0.5) for _ in range(2)]

    async def watch(replica: RedisPacer) -> list[float]:
        return [await replica.take_background_slot() for _ in range(3)]

    slots = [slot for taken in await asyncio.gather(*(watch(r) for r in replicas)) for slot in taken]
    assert len(slots) == 6
    assert min(gaps(slots)) >= replicas[0].background_interval - SLACK_US


async def test_shared_state_pacers_carry_the_background_share(redis_url):
    state = await build_shared_state(redis_url, background_share=0.5)
    try:
        pacer = state.pacer_for("zim:7", qps=40)
        assert isinstance(pacer, FallbackPacer)
        assert isinstance(pacer.shared, RedisPacer)
        assert pacer.shared.key == "roomusers:pacer:zim:7"  # the name the previous version uses
        assert pacer.shared.background_key == "roomusers:pacer:zim:7:background"
        assert pacer.shared.background_interval == pytest.approx(2 * pacer.shared.interval)
        assert isinstance(pacer.local, SmoothPacer)
        assert pacer.local.background_interval == pytest.approx(2 * pacer.local.interval)
        assert await pacer.wait_background_turn() >= 0
        assert await pacer.wait_turn() >= 0
    finally:
        await state.aclose()
    memory = await build_shared_state(None, background_share=0.1)
    local = memory.pacer_for("zim:7", qps=40)
    assert isinstance(local, SmoothPacer)
    assert local.background_interval == pytest.approx(10 * local.interval)


async def test_background_callers_fall_back_to_the_local_pacer_when_redis_goes_away(caplog):
    with RedisServer() as server:
        state = await build_shared_state(server.url, probe_interval=60)
        try:
            pacer = state.pacer_for("zim:9", qps=50)
            assert await pacer.wait_background_turn() >= 0  # through Redis
            server.stop()
            assert await pacer.wait_background_turn() >= 0  # the local SmoothPacer, at the same share
            assert await pacer.wait_turn() >= 0
            assert await state.health() == {"redis": "unreachable"}
            assert sum("Redis is unreachable" in r.getMessage() for r in caplog.records) == 1
        finally:
            await state.aclose()


async def redis_now_us(redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1_000_000 + int(micros)


async def full_window(pacer: RedisPacer, redis, *, last_ago_us: int) -> int:
    """Write the schedule as 20 slots 1 / QPS apart would leave it, the newest `last_ago_us` ago (Redis time):
    the next free slot is past, but the window is full until the oldest is a window old. Returns the oldest."""
    now = await redis_now_us(redis)
    gap = round(pacer.min_gap * 1_000_000)
    slots = [now - last_ago_us - k * gap for k in range(20)]  # newest first, as the scripts keep them
    await redis.delete(pacer.window_key)
    await redis.rpush(pacer.window_key, *slots)
    await redis.set(pacer.key, slots[0] + gap)
    return slots[-1]


async def test_a_full_window_holds_interactive_and_background_slots_until_its_oldest_is_a_window_old(clients):
    pacer, redis = RedisPacer(clients(), qps=20, key="t:window"), clients()
    oldest = await full_window(pacer, redis, last_ago_us=60_000)
    slot, wait = await pacer.reserve_background()
    assert slot is None  # 1 / QPS since the last slot has passed, but a 21st send would be within the window
    assert wait * 1_000_000 == pytest.approx(oldest + pacer.window * 1_000_000 - await redis_now_us(redis), abs=5_000)
    slot, _delay = await pacer.reserve()
    assert slot * 1_000_000 == pytest.approx(oldest + pacer.window * 1_000_000, abs=1)


async def test_a_stall_during_the_redis_call_gives_the_slot_up(clients, monkeypatch: pytest.MonkeyPatch):
    pacer = RedisPacer(clients(), qps=20, key="t:stall")
    slots: list[float] = []
    reserve = pacer.reserve

    async def stalled_once() -> tuple[float, float]:
        answer = await reserve()
        slots.append(answer[0])
        if len(slots) == 1:
            time.sleep(0.06)  # noqa: ASYNC251 - the event loop itself stalls after Redis answered
        return answer

    monkeypatch.setattr(pacer, "reserve", stalled_once)
    await pacer.wait_turn()
    # The first slot was 60 ms stale when its answer was read: sending on it could land next to the slots
    # after it. The sender took a fresh one instead (at least 1 / QPS later: the stale one stays counted).
    assert len(slots) == 2 and slots[1] - slots[0] >= pacer.min_gap - SLACK_US


@pytest.mark.parametrize("qps", [10.5, 20.9])
async def test_a_fractional_qps_never_fits_one_more_request_in_a_second(clients, qps: float):
    """floor(qps) + 1 consecutive slots span at least the window, and the window is over a second."""
    for pacer in (RedisPacer(clients(), qps=qps, key="t:f"), SmoothPacer(qps)):
        assert pacer.window == pytest.approx(1.0 / DEFAULT_HEADROOM) and pacer.window > 1.0
