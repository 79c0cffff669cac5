import asyncio
import heapq
import itertools

import pytest

from bot.state.pacer import SmoothPacer


class FakeTime:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def clock(self):
        return self.now

    async def sleep(self, seconds):
        self.sleeps.append(seconds)


def most_in_window(sends, window=1.0):
    return max(sum(1 for t in sends if start <= t < start + window) for start in sends)


async def test_slots_keep_at_most_qps_in_any_second_with_headroom():
    fake = FakeTime()
    pacer = SmoothPacer(20, headroom=0.95, clock=fake.clock, sleep=fake.sleep)
    waits = [await pacer.wait_turn() for _ in range(60)]
    window = 20 / 19  # 20 slots per 20 intervals of 1 / (20 × 0.95)
    assert (pacer.min_gap, pacer.window) == pytest.approx((1 / 20, window))
    # 20 slots 1 / QPS apart, then each slot one window after the slot 20 before it.
    assert waits == pytest.approx([(k // 20) * window + (k % 20) * (1 / 20) for k in range(60)])
    sends = [100.0 + w for w in waits]
    # Any 1-second window of send times holds at most 20 sends, with the headroom to spare: any 21
    # consecutive sends span a whole window (1.053 s), and no two sends are closer than 1 / QPS.
    assert most_in_window(sends) <= 20
    assert min(b - a for a, b in zip(sends, sends[20:], strict=False)) >= window - 1e-9
    assert min(b - a for a, b in itertools.pairwise(sends)) >= 1 / 20 - 1e-9
    # In steady use the rate is the even schedule's: 20 × 0.95 = 19 a second.
    assert (sends[59] - sends[19]) / 40 == pytest.approx(1 / 19)


async def test_time_left_idle_is_caught_up_within_the_window_never_above_qps():
    """A read's first round trip sends one request; the slots it left free are used after it, 1 / QPS apart."""
    fake = FakeTime()
    pacer = SmoothPacer(20, clock=fake.clock, sleep=fake.sleep)
    sends = []
    for k in range(45):
        if k == 1:
            fake.now += 0.08  # the first answer, one round trip later (80 ms + 19 × 50 ms fit in one window)
        sends.append(fake.now + await pacer.wait_turn())
    assert sends[2] - sends[1] == pytest.approx(1 / 20)  # not one interval (1 / 19.2 s)
    assert most_in_window(sends) <= 20
    assert min(b - a for a, b in zip(sends, sends[20:], strict=False)) >= pacer.window - 1e-9
    # The 41st send is two windows after the first: the idle round trip cost nothing.
    assert sends[40] - sends[0] == pytest.approx(2 * pacer.window)


async def test_idle_time_is_not_banked_into_a_burst():
    fake = FakeTime()
    pacer = SmoothPacer(10, headroom=1.0, clock=fake.clock, sleep=fake.sleep)
    await pacer.wait_turn()
    fake.now += 60
    assert await pacer.wait_turn() == 0
    assert await pacer.wait_turn() == pytest.approx(0.1)


async def test_cool_down_holds_every_sender():
    fake = FakeTime()
    pacer = SmoothPacer(10, headroom=1.0, clock=fake.clock, sleep=fake.sleep)
    await pacer.wait_turn()
    await pacer.cool_down(1.0)
    assert await pacer.wait_turn() == pytest.approx(1.0)


class VirtualTime:
    """A clock that only moves when every sleeper is waiting: wake-ups happen exactly on time, in order."""

    def __init__(self):
        self.now = 0.0
        self._sleepers = []
        self._order = itertools.count()

    def clock(self):
        return self.now

    async def sleep(self, seconds):
        woken = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), woken))
        await woken

    async def run(self, *coroutines):
        tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
        while not all(task.done() for task in tasks):
            for _ in range(10):  # let every runnable task reach its next sleep
                await asyncio.sleep(0)
            if self._sleepers:
                self.now, _, woken = heapq.heappop(self._sleepers)
                woken.set_result(None)
        return [task.result() for task in tasks]


async def test_concurrent_callers_are_served_first_come_first_served():
    virtual = VirtualTime()
    pacer = SmoothPacer(200, headroom=1.0, clock=virtual.clock, sleep=virtual.sleep)
    starts = []

    async def caller(number):
        await pacer.wait_turn()
        starts.append((virtual.now, number))

    await virtual.run(*(caller(number) for number in range(5)))
    assert [number for _, number in starts] == [0, 1, 2, 3, 4]
    assert [at for at, _ in starts] == pytest.approx([0.0, 0.005, 0.010, 0.015, 0.020])


def test_invalid_rates_are_refused():
    with pytest.raises(ValueError, match="qps"):
        SmoothPacer(0)


async def test_a_sender_woken_late_takes_a_new_slot_instead_of_bunching():
    now = [0.0]
    pauses = [0.07]  # the first sleep overruns by 70 ms (a GC pause): that slot is given up

    async def sleep(seconds):
        now[0] += seconds + (pauses.pop(0) if pauses else 0.0)

    pacer = SmoothPacer(20, headroom=0.95, clock=lambda: now[0], sleep=sleep)
    await pacer.wait_turn()  # slot 0, immediate
    sends = [now[0]]
    for _ in range(60):
        await pacer.wait_turn()
        sends.append(now[0])
    gaps = [b - a for a, b in itertools.pairwise(sends)]
    # The late sender gave its slot up and went in a later one: no gap is shorter than 1 / QPS, and the
    # given-up slot still counts in the window, so any 21 consecutive sends span more than a window.
    assert min(gaps) >= (1 / 20) - 1e-9
    assert gaps[0] >= 0.07 + 1 / 20 - 1e-9
    assert min(b - a for a, b in zip(sends, sends[20:], strict=False)) >= pacer.window - 1e-9
    assert max(sum(1 for t in sends if start <= t < start + 1) for start in sends) <= 20
