"""UpdateBudget: progress edits take only spare slots, finals always get one, a 429 holds everyone."""

from __future__ import annotations

import pytest

from bot.slack.budget import UpdateBudget


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_stops_at_the_reserve_and_finals_use_the_rest():
    clock = Clock()
    budget = UpdateBudget(limit=5, window=60.0, reserve=2, clock=clock)
    assert [budget.try_progress() for _ in range(4)] == [True, True, True, False]
    clock.now = 110.0
    assert [budget.wait_for_final() for _ in range(2)] == [0.0, 0.0]  # the reserve
    clock.now = 130.0
    assert budget.wait_for_final() == pytest.approx(30.0)  # until the oldest slots (t=100) expire
    clock.now = 160.0
    assert budget.try_progress() is True  # the three progress slots expired: 2 finals + this one
    assert budget.try_progress() is False


def test_a_429_holds_progress_and_finals():
    clock = Clock()
    budget = UpdateBudget(limit=10, window=60.0, reserve=2, clock=clock)
    budget.hold(5.0)
    assert budget.try_progress() is False
    assert budget.wait_for_final() == pytest.approx(5.0)
    clock.now += 5.0
    assert budget.try_progress() is True


def test_the_progress_interval_grows_with_the_messages_loading():
    budget = UpdateBudget(limit=45, window=60.0, reserve=10)
    assert budget.progress_interval(3.0) == 3.0
    with budget.loading():
        assert budget.progress_interval(3.0) == 3.0  # 1 x 60 / 35 < 3
        with budget.loading(), budget.loading(), budget.loading():
            assert budget.progress_interval(3.0) == pytest.approx(4 * 60 / 35)
    assert budget.progress_interval(3.0) == 3.0


def test_the_reserve_must_leave_room_for_progress():
    with pytest.raises(ValueError, match="reserve"):
        UpdateBudget(limit=5, reserve=5)
