"""The ZIM credential probe: does ZIM accept this profile's AppId and ServerSecret right now?

One signed QueryRoomUserList for a valid but unlikely room ID, at start-up and every few minutes, paced by the
profile's shared pacer like any other request and sent straight to the client (so no room-does-not-exist cache
can answer it). A rejection does not stop the process; readiness reports it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from typing import Literal

from bot.observability.metrics import ZIM_CREDENTIALS_REJECTED
from bot.zim import codes
from bot.zim.client import ZimClient
from bot.zim.errors import ZimError, ZimRejected

log = logging.getLogger(__name__)

PROBE_ROOM_PREFIX = "roomusers-probe-"
PROBE_OK = frozenset({codes.SUCCESS, codes.ROOM_NOT_FOUND})
PROBE_REJECTED = frozenset(
    {3, 100000001, codes.SIGNATURE_EXPIRED, codes.SIGNATURE_INVALID, 100000010, 100000016, 100000017}
)
PROBE_INTERVAL_SECONDS = 300.0

Verdict = Literal["checking", "unknown", "ok", "rejected"]


def probe_room_id() -> str:
    return PROBE_ROOM_PREFIX + secrets.token_hex(6)


class CredentialProbe:
    """The last verdict on one profile's credentials. ZIM being down leaves the last verdict as it was."""

    def __init__(self, client: ZimClient, *, profile: str, interval: float = PROBE_INTERVAL_SECONDS) -> None:
        self._client = client
        self.profile = profile
        self._interval = interval
        self.verdict: Verdict = "checking"
        self.code: int | None = None
        self.detail = ""  # why the last probe gave no verdict (ZIM unavailable …)
        self.probes = 0

    def check(self) -> str:
        """What /readyz says about this profile."""
        said = f"credentials rejected ({self.code})" if self.verdict == "rejected" else self.verdict
        return f"{said} (last probe: {self.detail})" if self.detail else said

    @property
    def settled(self) -> bool:
        """The first probe has finished (with a verdict or without one)."""
        return self.verdict != "checking"

    async def probe_once(self) -> None:
        try:
            page = await self._client.query_page(probe_room_id(), mode=0, cursor="")
        except ZimRejected as error:
            code = error.code if error.code is not None else -1
            message = str(error)
        except ZimError as error:  # unavailable, timed out: no verdict
            self._no_verdict(str(error))
            return
        else:
            code = codes.ROOM_EMPTY if page.being_destroyed else codes.SUCCESS
            message = ""
        finally:
            self.probes += 1
        if code in PROBE_OK:
            self._set("ok", code)
        elif code in PROBE_REJECTED:
            if self.verdict != "rejected" or self.code != code:
                log.error("ZEGO app %s: %s", self.profile, message)
            self._set("rejected", code)
        else:
            self._no_verdict(f"ZIM answered {code}")

    async def run(self) -> None:
        """Probe now, then every interval (± 10 %), until cancelled."""
        rng = random.Random()
        while True:
            await self.probe_once()
            await asyncio.sleep(self._interval * rng.uniform(0.9, 1.1))

    def _set(self, verdict: Verdict, code: int) -> None:
        if verdict == "ok" and self.verdict == "rejected":
            log.info("ZEGO app %s: ZIM accepts the credentials again", self.profile)
        self.verdict, self.code, self.detail = verdict, code, ""
        ZIM_CREDENTIALS_REJECTED.labels(self.profile).set(1 if verdict == "rejected" else 0)

    def _no_verdict(self, detail: str) -> None:
        if self.verdict == "checking":
            self.verdict = "unknown"
        self.detail = detail
        log.warning("ZEGO app %s: the credential probe got no verdict (%s)", self.profile, detail)
