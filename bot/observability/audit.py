"""One structured audit line per command and action: who, where, which room, what happened, how fast.

Each request gets exactly one line, with its final outcome (a big room's answer is audited when it is
complete, not when its first page went out); a second `emit` is a bug, logged and not counted.

Written to the `roomusers.audit` logger as a JSON object (so it stays one line and machine-readable whatever
the log format). Never carries tokens, secrets or user lists.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from bot.observability.metrics import COMMANDS

audit_log = logging.getLogger("roomusers.audit")
MAX_REQUEST_IDS = 10


@dataclass
class AuditRecord:
    surface: str  # "command", "mention", "action:roomusers_next", ...
    user: str
    channel: str
    started: float = field(default_factory=time.monotonic)
    fields: dict[str, Any] = field(default_factory=dict)
    emitted: str | None = None  # the outcome, once emitted

    def note(self, **values: Any) -> None:
        self.fields.update({key: value for key, value in values.items() if value is not None})

    def ensure(self, outcome: str) -> None:
        """Emit `outcome` unless the request already has its line (listeners call this in a `finally`)."""
        if self.emitted is None:
            self.emit(outcome)

    def emit(self, outcome: str) -> dict[str, Any]:
        if self.emitted is not None:
            audit_log.error("audit record emitted twice: %s/%s then %s", self.surface, self.emitted, outcome)
            return {}
        self.emitted = outcome
        request_ids = list(self.fields.pop("request_ids", ()) or ())
        line: dict[str, Any] = {
            "event": "audit",
            "surface": self.surface,
            "user": self.user,
            "channel": self.channel,
            "outcome": outcome,
            "latency_ms": round((time.monotonic() - self.started) * 1000),
            **self.fields,
        }
        if request_ids:
            line["zim_request_ids"] = request_ids[:MAX_REQUEST_IDS]
            if len(request_ids) > MAX_REQUEST_IDS:
                line["zim_request_ids_total"] = len(request_ids)
        COMMANDS.labels(self.surface, outcome).inc()
        audit_log.info(json.dumps(line, ensure_ascii=False), extra={"audit": line})
        return line
