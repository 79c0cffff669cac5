"""One structured audit line per command and action: who, where, which room, what happened, how fast.

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

    def note(self, **values: Any) -> None:
        self.fields.update({key: value for key, value in values.items() if value is not None})

    def emit(self, outcome: str) -> dict[str, Any]:
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
