"""Sans-IO QueryRoomMembers: the user-ID rule (a property test), the query it sends, what each answer means."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from bot.dev.zim_sandbox.protocol import MembersParams, parse_members_params
from bot.zim import InvalidUserIds, RoomNotFound, ZimInvalidRequest, ZimRejected
from bot.zim.members import (
    MAX_MEMBERS_PER_CALL,
    Absence,
    AbsentUser,
    RoomMember,
    decode_members,
    members_query,
    user_id_problem,
    validate_user_ids,
)
from bot.zim.wire import TransientAnswer

COMMON = {"Action": "QueryRoomMembers", "AppId": "1", "Signature": "x"}


def is_control(char: str) -> bool:
    return ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0


def acceptable(user_id: str) -> bool:
    return 0 < len(user_id.encode("utf-8")) <= 32 and not any(is_control(c) for c in user_id)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_the_user_id_rule(user_id):
    """At most 32 bytes of UTF-8, not empty, no control characters; otherwise one sentence saying which."""
    problem = user_id_problem(user_id)
    assert (problem is None) == acceptable(user_id)
    if problem is not None:
        assert problem.endswith(".")
        assert "\n" not in problem
        with pytest.raises(InvalidUserIds):
            validate_user_ids([user_id])
    else:
        assert validate_user_ids([user_id]) == (user_id,)


user_ids = st.text(min_size=1, max_size=32).filter(acceptable)


@settings(max_examples=200, deadline=None)
@given(st.lists(user_ids, min_size=1, max_size=14))
def test_lists_of_ids_are_deduplicated_then_held_to_ten(ids):
    unique = list(dict.fromkeys(ids))
    if len(unique) > MAX_MEMBERS_PER_CALL:
        with pytest.raises(InvalidUserIds, match="at most 10 user IDs"):
            validate_user_ids(ids)
    else:
        assert validate_user_ids(ids) == tuple(unique)


@settings(max_examples=200, deadline=None)
@given(st.lists(user_ids, min_size=1, max_size=10, unique=True), st.sampled_from(["r1", "room#1+a&b", "%?=&+"]))
def test_any_valid_ids_reach_the_server_exactly_as_given(ids, room_id):
    """Percent-encoding round trip, as the sandbox's HTTP server (aiohttp/yarl) decodes the query."""
    sent = members_query(COMMON, room_id, tuple(ids))
    assert "+" not in sent  # a space is %20 and a plus %2B: nothing for the server to guess about
    query = URL(f"http://zim.test/?{sent}").query
    assert query.getall("UserId[]") == ids
    assert query.getall("RoomId") == [room_id]
    params = parse_members_params(query)
    assert isinstance(params, MembersParams), params
    assert params.user_ids == tuple(ids)


def test_validation_sentences():
    with pytest.raises(InvalidUserIds, match="at least one user ID"):
        validate_user_ids([])
    with pytest.raises(InvalidUserIds, match="11 were given"):
        validate_user_ids([f"u{i}" for i in range(11)])
    with pytest.raises(InvalidUserIds, match="33 bytes long; ZIM allows at most 32"):
        validate_user_ids(["ok", "x" * 33])
    with pytest.raises(InvalidUserIds, match=r"U\+000A"):
        validate_user_ids(["line\nbreak"])
    assert user_id_problem("李" * 10) is None  # 30 bytes
    assert "33 bytes" in (user_id_problem("李" * 11) or "")
    assert validate_user_ids(["a", "b", "a"]) == ("a", "b")


def answer(code: int = 0, *, users: Any = (), errors: Any = (), status: int = 200, **extra: Any) -> tuple[int, bytes]:
    payload = {"Code": code, "Message": "m", "RequestId": "42", "UserList": users, "ErrorList": errors, **extra}
    if users is None:
        payload["UserList"] = None
    return status, json.dumps(payload).encode()


def user(
    user_id: str, name: str | None = "Name", avatar: str | None = None, extra: str | None = None
) -> dict[str, Any]:
    return {"user_id": user_id, "user_name": name, "avatar": avatar, "extra": extra}


def decode(status_body: tuple[int, bytes], asked: tuple[str, ...] = ("a", "b")):
    status, body = status_body
    return decode_members(status, body, room_id="r", asked=asked)


def test_code_0_with_an_empty_error_list_is_everyone_in():
    result = decode(answer(users=[user("b", "Bee", avatar="https://x/y.png"), user("a", None, extra='{"k":1}')]))
    assert result.present == (RoomMember("a", "", None, '{"k":1}'), RoomMember("b", "Bee", "https://x/y.png", None))
    assert result.absent == ()
    assert result.request_id == "42"
    assert result.is_in("a")
    assert not result.being_destroyed


def test_code_0_and_no_error_list_counts_an_unlisted_asked_user_in_with_no_name():
    result = decode(answer(users=[user("a")], errors=None))
    assert [m.user_id for m in result.present] == ["a", "b"]
    assert result.present[1].user_name == ""


def test_a_non_zero_code_with_an_error_list_is_an_answer_none_in():
    errors = [{"UserId": "a", "SubCode": 660300012}, {"UserId": "b", "SubCode": 660200001}]
    result = decode(answer(660300012, users=None, errors=errors))
    assert result.present == ()
    assert result.absent == (
        AbsentUser("a", Absence.NOT_IN_ROOM, 660300012),
        AbsentUser("b", Absence.NOT_LOGGED_IN, 660200001),
    )


@pytest.mark.parametrize("code", [0, 660300012])
def test_some_in_some_not_whatever_the_code(code):
    result = decode(answer(code, users=[user("a", "Ay")], errors=[{"UserId": "b", "SubCode": 660300012}]))
    assert result.present == (RoomMember("a", "Ay"),)
    assert result.absent == (AbsentUser("b", Absence.NOT_IN_ROOM, 660300012),)


def test_unasked_and_odd_entries_are_ignored_and_unknown_sub_codes_say_so():
    result = decode(
        answer(
            1,
            users=[user("zzz"), "junk", user("a", "<!channel>")],
            errors=[{"UserId": "b", "SubCode": 123}, {"UserId": "q", "SubCode": 660300012}, 7],
        ),
        asked=("a", "b", "c"),
    )
    assert result.present == (RoomMember("a", "<!channel>"),)
    assert result.absent == (AbsentUser("b", Absence.UNKNOWN, 123), AbsentUser("c", Absence.UNKNOWN))


def test_a_room_being_destroyed_is_an_answer_nobody_in():
    result = decode(answer(660300008, users=[], errors=[]))
    assert result.being_destroyed
    assert result.present == ()
    assert [(a.user_id, a.reason) for a in result.absent] == [
        ("a", Absence.ROOM_BEING_DESTROYED),
        ("b", Absence.ROOM_BEING_DESTROYED),
    ]


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (660000002, ZimInvalidRequest),
        (660000011, ZimInvalidRequest),
        (660000012, ZimInvalidRequest),
        (660300001, RoomNotFound),
        (660300007, ZimRejected),
        (100000005, ZimRejected),
    ],
)
def test_a_non_zero_code_with_an_empty_error_list_is_an_error(code, error):
    with pytest.raises(error) as raised:
        decode(answer(code))
    assert raised.value.code == code
    assert raised.value.request_id == "42"
    assert "42" in str(raised.value)


@pytest.mark.parametrize("code", [1, 7, 660000001, 660300005, 660300006, 100000015])
def test_busy_and_rate_limited_answers_are_transient(code):
    with pytest.raises(TransientAnswer) as raised:
        decode(answer(code))
    assert raised.value.code == code


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, b"<html>proxy</html>"), (502, b"bad gateway"), (200, b"[]"), (200, b'{"Code":0,"ErrorList":"x"}')],
)
def test_garbage_is_transient(status, body):
    with pytest.raises(TransientAnswer):
        decode_members(status, body, room_id="r", asked=("a",))


def test_a_non_json_4xx_names_the_setting_to_check():
    with pytest.raises(ZimRejected, match="ZEGO_API_BASE_URL"):
        decode_members(404, b"not found", room_id="r", asked=("a",))


def test_one_string_is_not_taken_for_a_list_of_ids():
    with pytest.raises(TypeError, match="not one string"):
        validate_user_ids("alice")
