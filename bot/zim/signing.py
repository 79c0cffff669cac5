"""ZIM server API request signing (md5 of AppId + nonce + secret + timestamp).

Pure functions: no I/O, no clock of their own, so the reference test vectors apply directly.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from urllib.parse import quote

SIGNATURE_VERSION = "2.0"


def signature(app_id: int, nonce: str, secret: str, timestamp: int) -> str:
    """Return ZIM's signature: lowercase hex md5 of the four values joined with no separator."""
    material = f"{app_id}{nonce}{secret}{timestamp}".encode()
    # md5 is what the ZIM API mandates; it authenticates, it does not protect a password.
    return hashlib.md5(material, usedforsecurity=False).hexdigest()


def new_nonce() -> str:
    """A fresh 16-hex-character nonce, as the newer ZIM docs specify."""
    return secrets.token_hex(8)


def common_params(
    action: str,
    app_id: int,
    secret: str,
    *,
    clock: Callable[[], float] = time.time,
    nonce_factory: Callable[[], str] = new_nonce,
) -> dict[str, str]:
    """The signed common parameters for one request; call once per request, retries included."""
    nonce = nonce_factory()
    timestamp = int(clock())
    return {
        "Action": action,
        "AppId": str(app_id),
        "SignatureNonce": nonce,
        "Timestamp": str(timestamp),
        "SignatureVersion": SIGNATURE_VERSION,
        "Signature": signature(app_id, nonce, secret, timestamp),
    }


def encode_query(params: dict[str, str]) -> str:
    """Percent-encode every reserved character (room IDs may hold `# % & + = ?`); never `+` for space."""
    return "&".join(f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in params.items())
