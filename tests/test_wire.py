import json

import pytest

from bot.zim.errors import RoomNotFound, RoomUnavailable, ZimCredentialsRejected, ZimInvalidRequest, ZimRejected
from bot.zim.wire import TransientAnswer, decode_page


def body(**fields):
    return json.dumps({"Message": "m", "RequestId": "r-1", **fields}).encode()


def test_success_page_decodes_users_count_and_cursor():
    page = decode_page(
        200, body(Code=0, Count=7, NextFlag="abc", UserList=[{"UserId": "u1", "UserName": "A"}, {"UserId": "u2"}])
    )
    assert [u.user_id for u in page.users] == ["u1", "u2"]
    assert page.users[1].user_name == ""
    assert (page.count, page.next_flag, page.request_id) == (7, "abc", "r-1")


@pytest.mark.parametrize("flag", ["", "0", None, 0])
def test_empty_zero_null_and_missing_cursor_all_mean_done(flag):
    fields = {"Code": 0, "Count": 1, "UserList": []}
    if flag is not None:
        fields["NextFlag"] = flag
    assert decode_page(200, body(**fields)).next_flag is None
    assert decode_page(200, body(Code=0, Count=1, NextFlag=None)).next_flag is None


def test_empty_room_code_is_an_empty_page_not_an_error():
    page = decode_page(200, body(Code=660300008))
    assert page.being_destroyed and page.users == () and page.next_flag is None


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (660300001, RoomNotFound),
        (660300007, RoomUnavailable),
        (100000005, ZimCredentialsRejected),
        (100000004, ZimCredentialsRejected),
        (3, ZimCredentialsRejected),
        (660000002, ZimInvalidRequest),
        (424242, ZimRejected),
    ],
)
def test_error_codes_become_typed_errors_with_request_id(code, error):
    with pytest.raises(error) as raised:
        decode_page(200, body(Code=code))
    assert raised.value.request_id == "r-1"
    assert "r-1" in str(raised.value)


def test_credential_errors_name_the_setting_to_check():
    with pytest.raises(ZimCredentialsRejected, match="ZEGO_SERVER_SECRET"):
        decode_page(200, body(Code=100000005))


@pytest.mark.parametrize("code", [1, 7, 105001, 100000015, 660000001, 660000003, 660300005, 660300006])
def test_retryable_codes_are_transient(code):
    with pytest.raises(TransientAnswer) as raised:
        decode_page(200, body(Code=code))
    assert raised.value.request_id == "r-1"


@pytest.mark.parametrize(("status", "payload"), [(200, b"<html>"), (502, b"bad gateway"), (503, b""), (200, b"[1]")])
def test_garbage_and_5xx_are_transient(status, payload):
    with pytest.raises(TransientAnswer):
        decode_page(status, payload)


def test_non_json_4xx_is_a_configuration_problem():
    with pytest.raises(ZimRejected, match="ZEGO_API_BASE_URL"):
        decode_page(404, b"not found")
