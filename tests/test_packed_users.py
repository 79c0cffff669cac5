"""The packed user sequence behaves exactly like the tuple of users it replaces."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.roster.model import RoomUser, Roster
from bot.roster.packed import PackedUsers, ReversedUsers

names = st.text(max_size=300)  # any code point, lone surrogates included


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(names, names), max_size=60), st.integers(-70, 70), st.integers(-70, 70), st.integers(-3, 3))
def test_packed_users_match_a_tuple(pairs, start, stop, step):
    users = tuple(RoomUser(*pair) for pair in pairs)
    packed = PackedUsers(users)
    assert len(packed) == len(users)
    assert list(packed) == list(users)
    assert list(reversed(packed)) == list(reversed(users))
    assert packed == users
    if step:
        assert list(packed[start:stop:step]) == list(users[start:stop:step])
    for index in (0, -1, len(users) // 2):
        if users:
            assert packed[index] == users[index]
    view = ReversedUsers(packed)
    assert list(view) == list(users[::-1])
    if step:
        assert list(view[start:stop:step]) == list(users[::-1][start:stop:step])


def test_roster_packs_what_it_is_given_and_orders_without_copying():
    roster = Roster(room_id="r", users=(RoomUser("a", "A"), RoomUser("b", "B")), reported_count=2, fetched_at=0)
    assert isinstance(roster.users, PackedUsers)
    assert [u.user_id for u in roster.ordered(newest_first=True)] == ["b", "a"]
