"""ZIM return codes and what the client does with each (see shared/reference/zim-api.md §4)."""

from __future__ import annotations

SUCCESS = 0
ROOM_NOT_FOUND = 660300001
USER_NOT_IN_ROOM = 660300002
APP_RATE_LIMITED = 660300005
ROOM_RATE_LIMITED = 660300006
ROOM_UNAVAILABLE = 660300007
ROOM_EMPTY = 660300008
SIGNATURE_EXPIRED = 100000004
SIGNATURE_INVALID = 100000005

RATE_LIMITED = frozenset({7, APP_RATE_LIMITED, ROOM_RATE_LIMITED})
RETRYABLE = frozenset({1, 7, 105001, 100000015, 660000001, 660000003, APP_RATE_LIMITED, ROOM_RATE_LIMITED})
INVALID_PARAMETER = frozenset({2, 660000002, 100000002, 100000003, 100000006, 100000007, 100000008})
INVALID_PARAMETER |= {100000009, 100000013, 100000014}

# Codes that mean our settings are wrong, with the setting to check.
CREDENTIAL_HINTS: dict[int, str] = {
    3: "ZIM rejected the credentials; check ZEGO_APP_ID and ZEGO_SERVER_SECRET",
    100000000: "ZIM says this is the wrong host; check ZEGO_API_BASE_URL / ZEGO_REGION",
    100000001: "ZIM says the AppId is malformed; check ZEGO_APP_ID",
    SIGNATURE_EXPIRED: "ZIM says the request signature expired; check this machine's clock",
    SIGNATURE_INVALID: "ZIM rejected the request signature; check ZEGO_SERVER_SECRET and ZEGO_APP_ID",
    100000010: "ZIM could not find a server secret for this AppId; check ZEGO_APP_ID",
    100000011: "ZIM could not load this app's configuration; check ZEGO_APP_ID or contact ZEGO support",
    100000016: "This ZEGO app is not set up for production use; check it in the ZEGO console",
    100000017: "ZIM is not activated for this ZEGO app; activate it in the ZEGO console",
}
