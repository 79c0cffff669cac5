"""Priority in the in-process pacer, on virtual time: interactive callers always first, background (watch)
callers within their share, one smooth schedule for both, nobody bunched."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from bot.state.pacer import SmoothPacer
from bot.zim.pacing import DEFAULT_BACKGROUND_SHARE, DEFAULT_HEADROOM

from .test_pacing import VirtualTime

QPS = 20.0
EPS = 1e-9


def make_pacer(virtual: VirtualTime, **options: float) -> SmoothPacer:
    return SmoothPacer(QPS, clock=virtual.clock, sleep=virtual.sleep, **options)


def most_in_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    return max((sum(1 for t in times if start <= t < start + window) for start in times), default=0)


class Traffic:
    """Callers of one pacer on virtual time, recording (arrived, sent) per priority."""

    def __init__(self, virtual: VirtualTime, pacer: SmoothPacer) -> None:
        self.virtual = virtual
        self.pacer = pacer
        self.interactive: list[tuple[float, float]] = []
        self.background: list[tuple[float, float]] = []

    async def interactive_at(self, at: float) -> None:
        await self.virtual.sleep(at)
        arrived = self.virtual.now
        waited = await self.pacer.wait_turn()
        assert waited == pytest.approx(self.virtual.now - arrived)
        self.interactive.append((arrived, self.virtual.now))

    async def background_at(self, at: float, calls: int = 1) -> None:
        await self.virtual.sleep(at)
        for _ in range(calls):
            arrived = self.virtual.now
            waited = await self.pacer.wait_background_turn()
            assert waited == pytest.approx(self.virtual.now - arrived)
            self.background.append((arrived, self.virtual.now))

    def sends(self) -> list[float]:
        return sorted(sent for _, sent in self.interactive + self.background)


def test_defaults_and_refused_shares():
    pacer = SmoothPacer(QPS)
    assert DEFAULT_BACKGROUND_SHARE == 0.25
    assert pacer.interval == pytest.approx(1 / (QPS * DEFAULT_HEADROOM))
    assert pacer.background_interval == pytest.approx(pacer.interval / 0.25)
    for share in (0.0, -0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match="background_share"):
            SmoothPacer(QPS, background_share=share)
    assert SmoothPacer(QPS, background_share=1.0).background_interval == pytest.approx(pacer.interval)


async def test_interactive_callers_are_as_fast_as_without_background_traffic():
    """The same burst, alone and with background callers queued throughout: the same send times."""
    burst = [0.5 + 0.001 * i for i in range(30)]

    async def run(with_background: bool) -> Traffic:
        virtual = VirtualTime()
        traffic = Traffic(virtual, make_pacer(virtual))
        callers = [traffic.interactive_at(at) for at in burst]
        if with_background:
            # Background demand before, during and after the burst; its last slot before the burst is
            # well over an interval before 0.5, so the burst finds the schedule free.
            callers += [traffic.background_at(0.0, calls=4) for _ in range(5)]
        await virtual.run(*callers)
        return traffic

    alone, mixed = await run(False), await run(True)
    pacer = make_pacer(VirtualTime())
    sent = sorted(at for _, at in alone.interactive)
    assert sent[0] == pytest.approx(0.5)
    # 20 sends 1 / QPS apart, then each a window after the one 20 before it.
    assert sent == pytest.approx([0.5 + (k // 20) * pacer.window + (k % 20) * pacer.min_gap for k in range(30)])
    # With background traffic the burst ends at the same time: the background sends of the second before it
    # count in ZIM's window (so they may hold one of its first 20 sends), none goes while it waits.
    with_background = sorted(at for _, at in mixed.interactive)
    assert with_background[-1] == pytest.approx(sent[-1])
    assert all(a >= b - EPS for a, b in zip(with_background, sent, strict=True))
    assert most_in_window(mixed.sends()) <= QPS
    first, last = sent[0], sent[-1]
    assert all(not first - pacer.min_gap < at < last + pacer.min_gap - EPS for _, at in mixed.background)
    assert len(mixed.background) == 20


async def test_an_interactive_caller_right_after_a_background_send_waits_at_most_one_interval():
    virtual = VirtualTime()
    pacer = make_pacer(virtual)
    traffic = Traffic(virtual, pacer)
    await virtual.run(traffic.background_at(0.0), traffic.interactive_at(0.001))
    ((arrived, sent),) = traffic.interactive
    assert traffic.background == [(0.0, 0.0)]
    assert sent - arrived <= pacer.min_gap + EPS
    assert sent == pytest.approx(pacer.min_gap)  # one schedule: exactly 1 / QPS after the background send


async def test_background_alone_is_held_to_its_share_and_evenly_spaced():
    virtual = VirtualTime()
    pacer = make_pacer(virtual)
    traffic = Traffic(virtual, pacer)
    await virtual.run(*(traffic.background_at(0.0, calls=6) for _ in range(10)))
    sent = [at for _, at in traffic.background]
    assert sent == sorted(sent)
    assert [b - a for a, b in itertools.pairwise(sent)] == pytest.approx([pacer.background_interval] * 59)
    # At most share × rate: 0.25 × 20 × 0.96 = 4.8 per second, so never more than 5 in any one second.
    assert most_in_window(sent) <= math.ceil(DEFAULT_BACKGROUND_SHARE * QPS)
    assert (len(sent) - 1) / (sent[-1] - sent[0]) <= DEFAULT_BACKGROUND_SHARE * QPS * DEFAULT_HEADROOM + EPS


async def test_background_callers_are_served_first_come_first_served():
    virtual = VirtualTime()
    pacer = make_pacer(virtual, background_share=0.5)
    order: list[int] = []

    async def caller(number: int) -> None:
        await virtual.sleep(number * 0.001)
        await pacer.wait_background_turn()
        order.append(number)

    await virtual.run(*(caller(number) for number in range(8)))
    assert order == list(range(8))


@pytest.mark.parametrize("seed", range(5))
async def test_mixed_load_interactive_first_background_within_share_nobody_bunches(seed):
    rng = random.Random(seed)
    virtual = VirtualTime()
    pacer = make_pacer(virtual, background_share=rng.choice([0.1, 0.25, 0.5, 1.0]))
    traffic = Traffic(virtual, pacer)
    # Interactive arrivals in clumps (a command, a click, a big room's pages), background demand throughout.
    arrivals = sorted(rng.uniform(0, 8) for _ in range(12))
    interactive = [at + rng.uniform(0, 0.05) for at in arrivals for _ in range(rng.randint(1, 25))]
    await virtual.run(
        *(traffic.interactive_at(at) for at in interactive),
        *(traffic.background_at(rng.uniform(0, 1), calls=15) for _ in range(6)),
    )
    sends = traffic.sends()
    # One schedule: no two sends closer than 1 / QPS, never more than ZEGO_QPS in any second, and any
    # QPS + 1 consecutive sends span a whole window (the headroom).
    assert min(b - a for a, b in itertools.pairwise(sends)) >= pacer.min_gap - EPS
    assert most_in_window(sends) <= QPS
    assert min(b - a for a, b in zip(sends, sends[int(QPS) :], strict=False)) >= pacer.window - EPS
    # Background: evenly spaced at its own slower rate.
    background = sorted(at for _, at in traffic.background)
    assert min(b - a for a, b in itertools.pairwise(background)) >= pacer.background_interval - EPS
    # Interactive first: no background send while an interactive caller was waiting for its slot.
    for _, at in traffic.background:
        waiting = [(arrived, sent) for arrived, sent in traffic.interactive if arrived < at - EPS and sent > at + EPS]
        assert waiting == [], (at, waiting)
    # Interactive callers only ever wait behind interactive callers, plus at most one background send.
    for arrived, sent in traffic.interactive:
        ahead = sum(1 for a, s in traffic.interactive if a <= arrived and s < sent)
        assert sent - arrived <= (ahead + 1) * pacer.interval + EPS


async def test_cool_down_holds_background_callers_too():
    virtual = VirtualTime()
    pacer = make_pacer(virtual)
    traffic = Traffic(virtual, pacer)
    await pacer.cool_down(1.0)
    await virtual.run(traffic.background_at(0.0))
    ((arrived, sent),) = traffic.background
    assert arrived == 0.0
    assert sent == pytest.approx(1.0)


async def test_a_background_send_is_never_followed_by_a_bunched_interactive_one():
    """Background slots are slots of the one schedule: the interactive caller after one is 1 / QPS later."""
    virtual = VirtualTime()
    pacer = make_pacer(virtual)
    traffic = Traffic(virtual, pacer)
    await virtual.run(
        traffic.background_at(0.0, calls=3),
        *(traffic.interactive_at(pacer.background_interval * k + 0.0001) for k in range(3)),
    )
    sends = traffic.sends()
    assert len(sends) == 6
    assert min(b - a for a, b in itertools.pairwise(sends)) >= pacer.min_gap - EPS
