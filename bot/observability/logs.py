"""Log configuration: readable text by default, one JSON object per line with LOG_FORMAT=json."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from bot.settings import ConfigError

# httpx logs every request URL at INFO; ours carry signatures (never secrets, but noise), so keep it quiet.
QUIET_LOGGERS = ("httpx", "httpcore", "aiohttp.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per record; audit records contribute their fields as they are."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
        }
        audit = getattr(record, "audit", None)
        if isinstance(audit, dict):
            entry.update(audit)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_format(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    fmt = env.get("LOG_FORMAT", "text").strip().lower() or "text"
    if fmt not in ("text", "json"):
        raise ConfigError("LOG_FORMAT must be text or json.")
    return fmt


def configure_logging(level: int, fmt: str) -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
