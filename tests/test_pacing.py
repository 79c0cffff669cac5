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


async def test_slots_are_evenly_spaced_with_headroom_and_no_burst():
    fake = FakeTime()
    pacer = SmoothPacer(20, headroom=0.95, clock=fake.clock, sleep=fake.sleep)
    waits = [await pacer.wait_turn() for _ in range(40)]
    interval = 1 / 19
    assert waits[0] == 0
    assert waits == pytest.approx([i * interval for i in range(40)])
    # Any 1-second window of send times holds at most 20 sends.
    sends = [100.0 + w for w in waits]
    assert max(sum(1 for t in sends if start <= t < start + 1) for start in sends) <= 20


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
    for _ in range(40):
        await pacer.wait_turn()
        sends.append(now[0])
    gaps = [b - a for a, b in itertools.pairwise(sends)]
    # The late sender gave its slot up: it went one slot later, so no gap is shorter than an interval.
    assert min(gaps) >= (1 / 19) - 1e-9
    assert max(gaps) >= 2 * (1 / 19) - 1e-9
    assert max(sum(1 for t in sends if start <= t < start + 1) for start in sends) <= 20
