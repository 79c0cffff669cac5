"""Opaque, tamper-evident NextFlag cursors.

ZIM documents NextFlag as opaque, so the sandbox makes it genuinely opaque: a client that parses it, builds
its own, or reuses one from another room or Mode is caught (660000002) instead of silently working here and
failing against the real service. A cursor holds an offset from the start of the Mode's order, so users
who join or leave between pages shift the list exactly as an offset-based server would.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from typing import NamedTuple

_MAC_BYTES = 12
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


class Cursor(NamedTuple):
    room_id: str
    mode: int
    offset: int


class CursorCodec:
    """Issues and verifies cursors with an HMAC key private to one sandbox instance."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, room_id: str, mode: int, offset: int) -> str:
        # The room ID goes last because it may itself contain '|'.
        payload = f"{mode}|{offset}|{room_id}".encode()
        return base64.urlsafe_b64encode(payload + self._mac(payload)).rstrip(b"=").decode("ascii")

    def decode(self, token: str) -> Cursor | None:
        """The cursor `token` stands for, or None if this codec did not issue it."""
        if not _TOKEN.fullmatch(token):
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except binascii.Error:  # a length no encoder produces
            return None
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, self._mac(payload)):
            return None
        mode, offset, room_id = payload.decode().split("|", 2)
        return Cursor(room_id=room_id, mode=int(mode), offset=int(offset))
