"""The rules of watches as properties (bounded hypothesis runs): condition parsing and what a condition means,
the stretching of poll intervals within the background share, and where new groups' polls fall."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.settings import ConfigError, WatchSettings, load_watch_settings
from bot.slack.parsing import InvalidRequest, WatchRequest, parse_command_text
from bot.watch.budget import available_rate, spread_offset, stretched_interval
from bot.watch.conditions import ConditionProblem, parse_condition
from bot.watch.model import Watch

BOUNDED = settings(max_examples=200, deadline=None)


@BOUNDED
@given(st.integers(min_value=0, max_value=10_000_000))
def test_whole_numbers_parse_and_compare(number: int):
    below = parse_condition("--when-below", str(number))
    above = parse_condition("--when-above", str(number))
    assert below.is_true(number - 1, ()) and not below.is_true(number, ())
    assert above.is_true(number + 1, ()) and not above.is_true(number, ())


@BOUNDED
@given(st.text(min_size=1, max_size=12).filter(lambda text: not text.isascii() or not text.isdigit()))
def test_anything_but_a_whole_number_is_refused_with_a_sentence(value: str):
    with pytest.raises(ConditionProblem, match=r"whole number|needs a value|at most"):
        parse_condition("--when-below", value)


@BOUNDED
@given(
    st.text(
        alphabet=st.characters(min_codepoint=0xA0, max_codepoint=0x2FFF) | st.sampled_from("abcXYZ019-_"),
        min_size=1,
        max_size=40,
    )
)
def test_user_ids_up_to_32_bytes_are_accepted_and_longer_refused(user_id: str):
    if len(user_id.encode()) <= 32:
        condition = parse_condition("--when-leaves", user_id)
        assert condition.is_true(3, {"someone else"}) and not condition.is_true(3, {user_id})
        joins = parse_condition("--when-joins", user_id)
        assert joins.is_true(1, {user_id}) and not joins.is_true(1, ())
    else:
        with pytest.raises(ConditionProblem, match="bytes long"):
            parse_condition("--when-leaves", user_id)


@BOUNDED
@given(st.sampled_from(["--when-empty", "--when-below 3", "--when-above 0", "--when-joins host"]))
def test_watch_commands_parse_in_any_order(condition: str):
    for text in (f"lobby --watch {condition}", f"--watch {condition} lobby", f"{condition} lobby --watch"):
        parsed = parse_command_text(text)
        assert isinstance(parsed, WatchRequest) and parsed.view.room_id == "lobby"


def test_a_condition_survives_storage():
    condition = parse_condition("--when-joins", "héllo")
    watch = Watch("id", "T1", "C1", None, "U1", "default", "lobby", condition, 1.0, 2.0)
    assert Watch.from_json(watch.to_json()) == watch


@pytest.mark.parametrize("text", ["lobby --watch --when-below", "lobby --watches", "lobby --watch --when-empty x"])
def test_incomplete_or_mixed_watch_commands_are_refused(text: str):
    assert isinstance(parse_command_text(text), InvalidRequest)


@BOUNDED
@given(
    costs=st.lists(st.integers(min_value=1, max_value=30), min_size=0, max_size=400),
    interval=st.floats(min_value=1, max_value=3600),
    qps=st.floats(min_value=1, max_value=100),
    share=st.floats(min_value=0.01, max_value=1),
)
def test_stretched_polls_never_exceed_the_share_and_stretch_only_when_needed(
    costs: list[int], interval: float, qps: float, share: float
):
    real = stretched_interval(interval, costs, qps=qps, share=share)
    assert real >= interval
    used = sum(costs) / real  # every group polls at the same, real interval: evenly stretched
    assert used <= available_rate(qps, share) * (1 + 1e-9)
    if sum(costs) / interval > available_rate(qps, share):
        assert used == pytest.approx(available_rate(qps, share))  # the whole share, not less
    else:
        assert real == interval


@BOUNDED
@given(st.integers(min_value=20, max_value=300), st.floats(min_value=1, max_value=600))
def test_new_groups_are_spread_over_the_interval(groups: int, interval: float):
    offsets = sorted(spread_offset(f"default\0room-{index}", interval) for index in range(groups))
    assert all(0 < offset <= interval for offset in offsets)
    # Not bunched: in every quarter of the interval lie some of them (a hash spreads them about evenly).
    quarters = [sum(q * interval / 4 < o <= (q + 1) * interval / 4 for o in offsets) for q in range(4)]
    assert min(quarters) >= groups // 10


@pytest.mark.parametrize(
    ("variable", "raw", "sentence"),
    [
        ("ROOMUSERS_WATCH_INTERVAL_SECONDS", "0", "must be between 1 and 3600 seconds"),
        ("ROOMUSERS_WATCH_INTERVAL_SECONDS", "3601", "must be between 1 and 3600 seconds"),
        ("ROOMUSERS_WATCH_HOURS", "0", "above 0 and at most 168"),
        ("ROOMUSERS_MAX_WATCHES_PER_CONVERSATION", "0", "whole number of watches from 1"),
        ("ROOMUSERS_MAX_WATCHES_PER_WORKSPACE", "many", "whole number of watches from 1"),
    ],
)
def test_watch_settings_out_of_range_are_one_sentence_naming_the_variable(variable: str, raw: str, sentence: str):
    with pytest.raises(ConfigError) as refused:
        load_watch_settings({variable: raw})
    assert str(refused.value).startswith(variable) and sentence in str(refused.value)


def test_watch_settings_defaults():
    assert load_watch_settings({}) == WatchSettings(
        interval=30.0, hours=8.0, max_per_conversation=20, max_per_workspace=200
    )
