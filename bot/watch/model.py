"""One watch as stored: who set it, where its alert goes, what it waits for, and until when."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from bot.watch.conditions import Condition

# What the check made when a watch is set found: fired at once, not true yet, ZIM not answering, already ended.
FirstCheck = Literal["fired", "waiting", "failed", "ended"]
# Failed polls in a row after which the conversation is told the watch can't be checked (once).
FAILURES_BEFORE_NOTICE = 10


def group_of(profile: str, room_id: str) -> str:
    """The poll group: every watch on one room of one ZEGO app shares one poll."""
    return f"{profile}\0{room_id}"


def split_group(group: str) -> tuple[str, str]:
    profile, _, room_id = group.partition("\0")
    return profile, room_id


_WATCH_ID = re.compile(r"[0-9a-f]{16}")


def new_watch_id() -> str:
    return secrets.token_hex(8)


def is_watch_id(text: str) -> bool:
    """Whether `text` has the form `new_watch_id` makes (checked before a button's value names any key)."""
    return _WATCH_ID.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class Watch:
    id: str
    team_id: str
    channel_id: str
    thread_ts: str | None  # a mention's thread: the alert goes there
    creator: str
    profile: str
    room_id: str
    condition: Condition
    created_at: float  # epoch seconds
    until: float  # epoch seconds: after this the watch ends with a short note
    consecutive_failures: int = 0
    failure_notice_posted: bool = False

    @property
    def group(self) -> str:
        return group_of(self.profile, self.room_id)

    def expired(self, now: float) -> bool:
        return now >= self.until

    def after_poll(self, ok: bool) -> Watch:
        """This watch after one more poll that worked (`ok`) or failed."""
        if ok:
            return replace(self, consecutive_failures=0, failure_notice_posted=False)
        return replace(self, consecutive_failures=self.consecutive_failures + 1)

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        data["condition"] = self.condition.to_json()
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Watch:
        """Tolerant across versions: keys this version does not know are ignored, fields it added take defaults."""
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        kept = {key: value for key, value in data.items() if key in known}
        kept["condition"] = Condition.from_json(kept["condition"])
        return cls(**kept)
