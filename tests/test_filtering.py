"""How a filter matches names: the way people read them (NFKC, invisible characters, quotes, accents)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.roster.model import RoomUser
from bot.roster.view import filter_users, match_key

ZERO_WIDTH = ["\u200b", "\u200c", "\u2060", "\ufeff", "\u00ad"]


def users(*names: str) -> tuple[RoomUser, ...]:
    return tuple(RoomUser(f"u{index}", name) for index, name in enumerate(names, 1))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("José", "jose"),
        ("JOSÉ", "jose"),
        ("Jose\u0301", "jose"),
        ("jose\u200b", "jose"),
        ("ｊｏｓｅ", "jose"),
        ("O’Brien", "o'brien"),
        ("O`Brien", "o'brien"),
        ("“quoted”", '"quoted"'),
        ("Łódź", "lodz"),
        ("Straße", "strasse"),
        ("\u202eabc", "abc"),
        ("Ærø", "aero"),
    ],
)
def test_match_keys(text: str, key: str) -> None:
    assert match_key(text) == key


def test_marks_of_other_scripts_are_kept() -> None:
    assert match_key("が") != match_key("か")
    assert match_key("कि") == "कि"
    assert filter_users(users("한국"), "하") == ()


def test_accents_and_case_are_optional() -> None:
    people = users("José", "jose", "Jose\u0301", "JOSÉ", "Joseph", "Ann")
    found = filter_users(people, "jose")
    assert found == people[:5]
    assert filter_users(people, "José") == found
    assert filter_users(people, "JOSÉ") == found


def test_quotes_are_unified_both_ways() -> None:
    people = users("Sean O’Brien", "Mary O'Brien", "Obrien")
    assert filter_users(people, "O'Brien") == people[:2]
    assert filter_users(people, "O’Brien") == people[:2]


def test_invisible_characters_are_ignored() -> None:
    people = users("Ann Lee", "Bob")
    assert filter_users(people, "ann\u200b") == people[:1]
    assert filter_users(users("An\u200bn"), "ann") == users("An\u200bn")
    assert filter_users(people, "\u200b") == people  # blank once normalised: no filter


def test_ids_match_too() -> None:
    people = (RoomUser("Agent-Ü1", "x"), RoomUser("u2", "y"))
    assert filter_users(people, "agent-u") == people[:1]


_names = st.text(st.characters(codec="utf-8"), max_size=20)


@settings(max_examples=200, deadline=None)
@given(_names)
def test_match_key_is_idempotent(text: str) -> None:
    assert match_key(match_key(text)) == match_key(text)


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=1, max_size=12), st.data())
def test_zero_width_characters_change_nothing(name: str, data: st.DataObject) -> None:
    where = data.draw(st.integers(min_value=0, max_value=len(name)))
    invisible = data.draw(st.sampled_from(ZERO_WIDTH))
    needle = data.draw(st.text(max_size=4))
    plain = users(name)
    padded = users(name[:where] + invisible + name[where:])
    assert bool(filter_users(plain, needle)) == bool(filter_users(padded, needle))
    assert filter_users(plain, needle) == filter_users(plain, needle[:1] + invisible + needle[1:])


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[A-Za-zÀ-ÿ' ’一-龥]{1,16}", fullmatch=True), st.data())
def test_any_part_of_a_name_finds_it(name: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(min_value=0, max_value=len(name) - 1))
    end = data.draw(st.integers(min_value=start + 1, max_value=len(name)))
    part = name[start:end]
    if " ".join(part.split()) == part.strip() and part.strip() and "  " not in name:
        assert filter_users(users(name), part) == users(name)


@settings(max_examples=100, deadline=None)
@given(st.lists(_names, max_size=8), st.text(max_size=5))
def test_a_filter_keeps_a_subset_in_order(names: list[str], needle: str) -> None:
    people = users(*names)
    found = filter_users(people, needle)
    assert set(found) <= set(people)
    assert [people.index(user) for user in found] == sorted(people.index(user) for user in found)
