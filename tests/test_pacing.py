import asyncio
import itertools

import pytest

from bot.zim.pacing import SmoothPacer


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


async def test_concurrent_callers_queue_fairly_on_a_real_loop():
    pacer = SmoothPacer(200, headroom=1.0)
    loop = asyncio.get_running_loop()
    starts = []

    async def caller(number):
        await pacer.wait_turn()
        starts.append((loop.time(), number))

    await asyncio.gather(*(caller(number) for number in range(5)))
    assert [number for _, number in starts] == [0, 1, 2, 3, 4]  # first come, first served
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(starts)]
    # Slots are 5 ms apart; a sender may wake up to a quarter interval late and still send.
    assert all(gap >= 0.005 * 0.75 - 1e-6 for gap in gaps)


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
    assert pacer.late_wakeups == 1
    gaps = [b - a for a, b in itertools.pairwise(sends)]
    assert min(gaps) >= (1 / 19) * (1 - 0.25) - 1e-9
    assert max(sum(1 for t in sends if start <= t < start + 1) for start in sends) <= 20
