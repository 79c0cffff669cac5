import re

import pytest

from bot.zim.signing import common_params, encode_query, new_nonce, signature

VECTORS = [
    (1234567890, "15215528852396", "12345678900987654321123456789012", 1234567890, "74258f97e90f27985b42c201699b7b83"),
    (12345, "4fd24687296dd9f3", "9193cc662a4c0ec135ec71fb57194b38", 1615186943, "43e5cfcca828314675f91b001390566a"),
    (
        1234567890,
        "0123456789abcdef",
        "12345678900987654321123456789012",
        1700000000,
        "758c19c80253ea7fdd05a8369d9db98e",
    ),
]


@pytest.mark.parametrize(("app_id", "nonce", "secret", "timestamp", "expected"), VECTORS)
def test_signature_matches_reference_vectors(app_id, nonce, secret, timestamp, expected):
    assert signature(app_id, nonce, secret, timestamp) == expected


def test_signed_url_matches_the_reference_example():
    params = common_params(
        "QueryRoomUserList",
        1234567890,
        "12345678900987654321123456789012",
        clock=lambda: 1234567890.7,
        nonce_factory=lambda: "15215528852396",
    )
    params.update({"RoomId": "room#1+a&b", "Mode": "0", "NextFlag": "0", "Limit": "500"})
    assert encode_query(params) == (
        "Action=QueryRoomUserList&AppId=1234567890&SignatureNonce=15215528852396&Timestamp=1234567890"
        "&SignatureVersion=2.0&Signature=74258f97e90f27985b42c201699b7b83&RoomId=room%231%2Ba%26b"
        "&Mode=0&NextFlag=0&Limit=500"
    )


def test_every_request_gets_a_fresh_nonce_and_signature():
    first = common_params("QueryRoomUserList", 1, "a" * 32, clock=lambda: 1000)
    second = common_params("QueryRoomUserList", 1, "a" * 32, clock=lambda: 1000)
    assert first["SignatureNonce"] != second["SignatureNonce"]
    assert first["Signature"] != second["Signature"]
    assert re.fullmatch(r"[0-9a-f]{16}", new_nonce())


def test_reserved_characters_are_percent_encoded_and_never_plus():
    assert encode_query({"RoomId": "a b%=?#&+"}) == "RoomId=a%20b%25%3D%3F%23%26%2B"
