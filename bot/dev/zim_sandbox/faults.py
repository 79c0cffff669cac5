"""Fault injection: scripted misbehaviour for the sandbox to act out, and simulated network latency.

Faults come in two phases, so a fault's `count` is only spent on requests it can actually affect:

* transport faults (`code`, `http_status`, `drop`, `garbage`, `delay`) are consulted for every request that
  passed the signature and QPS checks, before its business parameters are read (their `room_id`/`mode`/
  `action` filters compare against the raw query values; a QueryRoomMembers request has no mode, so a fault
  with a `mode` filter never selects one). Because they come after the QPS check, a faulted request
  still counts as an arrival in the rate window, as a real overloaded gateway's would.
* page faults (`repeat_cursor`, `endless_cursor`, `count_drift`, `short_page`) are consulted only when a
  successful page is about to be sent, and only where they change that page (see `page_fault_applies`).

Each phase applies at most one fault per request: the first active fault that matches, in insertion order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Literal, get_args

FaultKind = Literal[
    "code",
    "http_status",
    "drop",
    "garbage",
    "delay",
    "repeat_cursor",
    "endless_cursor",
    "count_drift",
    "short_page",
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
TRANSPORT_KINDS = frozenset({"code", "http_status", "drop", "garbage", "delay"})
PAGE_KINDS = frozenset({"repeat_cursor", "endless_cursor", "count_drift", "short_page"})

# Messages for injected codes, worded after ZEGO's return-code table.
CODE_MESSAGES: dict[int, str] = {
    1: "request failed, server busy",
    2: "invalid input parameter",
    3: "authentication failed",
    7: "request rate exceeds the system limit",
    105001: "database request failed",
    100000005: "invalid signature",
    100000015: "gateway internal error",
    660000001: "general business error",
    660000003: "server logic error",
    660300005: "QPS limit exceeded (AppID level)",
    660300006: "QPS limit exceeded (20/s)",
    660300007: "failed to get room",
    660300008: "room has no users",
}
DEFAULT_GARBAGE = "<html>upstream error</html>"
_ACTIONS = (None, "QueryRoomUserList", "QueryRoomMembers")


@dataclass
class Fault:
    """One scripted fault.

    Common: `kind`; `count` = how many matching requests it affects (then it is removed); optional
    `room_id`, `mode` and `action` (QueryRoomUserList or QueryRoomMembers) filters. Kind-specific: `code`
    and `message` (kind "code"); `status` and `body` (kind "http_status"; `body` also for "garbage");
    `seconds` ("delay"); `delta` ("count_drift"); `size` ("short_page": users returned instead of Limit).
    """

    kind: FaultKind
    count: int = 1
    room_id: str | None = None
    mode: int | None = None
    action: str | None = None
    code: int = 1
    message: str | None = None
    status: int = 503
    body: str | None = None
    seconds: float = 1.0
    delta: int = 7
    size: int = 100

    def __post_init__(self) -> None:
        _check(self.kind in FAULT_KINDS, f"kind must be one of {', '.join(FAULT_KINDS)}")
        _check(self.count >= 1, "count must be at least 1")
        _check(self.mode in (None, 0, 1), "mode must be 0, 1 or null")
        _check(self.action in _ACTIONS, "action must be QueryRoomUserList, QueryRoomMembers or null")
        _check(100 <= self.status <= 599, "status must be an HTTP status (100-599)")
        _check(math.isfinite(self.seconds) and self.seconds >= 0, "seconds must be >= 0")
        _check(self.size >= 1, "size must be at least 1")

    def matches(self, room_id: str | None, mode: int | None, action: str | None = None) -> bool:
        """Whether this fault's filters select a request for `room_id` in `mode` (of `action`, if known)."""
        if self.room_id is not None and self.room_id != room_id:
            return False
        if self.action is not None and action is not None and self.action != action:
            return False
        return self.mode is None or self.mode == mode

    @property
    def error_message(self) -> str:
        return self.message if self.message is not None else CODE_MESSAGES.get(self.code, "sandbox fault")

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> Fault:
        """Build a Fault from decoded JSON, rejecting unknown keys and wrong types with ValueError."""
        if not isinstance(data, Mapping):
            raise ValueError("a fault must be a JSON object")
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        _check(not unknown, f"unknown fault field(s): {', '.join(map(str, unknown))}")
        _check("kind" in data, "a fault needs a 'kind'")
        for key, value in data.items():
            _check(_FIELD_TYPES[key](value), f"fault field {key!r} has the wrong type")
        return cls(**data)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return _is_int(value) or isinstance(value, float)


def _optional(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda value: value is None or check(value)


def _is_str(value: object) -> bool:
    return isinstance(value, str)


_FIELD_TYPES: dict[str, Callable[[object], bool]] = {
    "kind": _is_str,
    "count": _is_int,
    "room_id": _optional(_is_str),
    "mode": _optional(_is_int),
    "action": _optional(_is_str),
    "code": _is_int,
    "message": _optional(_is_str),
    "status": _is_int,
    "body": _optional(_is_str),
    "seconds": _is_number,
    "delta": _is_int,
    "size": _is_int,
}


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def page_fault_applies(fault: Fault, *, offset: int, end: int, total: int, from_start: bool) -> bool:
    """Whether a page fault would change the page [offset, end) of `total` users.

    `short_page` needs more users than its `size`; `repeat_cursor` needs a cursor to repeat (the first
    page has none); `endless_cursor` only acts where the list would otherwise end.
    """
    if fault.kind == "short_page":
        return end - offset > fault.size
    if fault.kind == "repeat_cursor":
        return not from_start
    if fault.kind == "endless_cursor":
        return end >= total
    return True


class FaultPlan:
    """The active faults plus latency settings; consulted by the sandbox for each request."""

    def __init__(self, *, latency_ms: float = 0.0, jitter_ms: float = 0.0) -> None:
        self.faults: list[Fault] = []
        self.latency_ms = 0.0
        self.jitter_ms = 0.0
        self.set_latency(latency_ms=latency_ms, jitter_ms=jitter_ms)

    def add(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()

    def take(
        self,
        kinds: frozenset[str],
        *,
        room_id: str | None,
        mode: int | None,
        action: str | None = None,
        applies: Callable[[Fault], bool] | None = None,
    ) -> Fault | None:
        """Spend one use of the first active fault of `kinds` that matches; None if there is none."""
        for index, fault in enumerate(self.faults):
            if fault.kind in kinds and fault.matches(room_id, mode, action) and (applies is None or applies(fault)):
                fault.count -= 1
                if fault.count <= 0:
                    del self.faults[index]
                return fault
        return None

    def set_latency(self, *, latency_ms: float | None = None, jitter_ms: float | None = None) -> None:
        """Change the simulated latency; None leaves a setting as it is."""
        for name, value in (("latency_ms", latency_ms), ("jitter_ms", jitter_ms)):
            if value is not None:
                _check(math.isfinite(value) and value >= 0, f"{name} must be >= 0")
                setattr(self, name, float(value))

    def latency_seconds(self, rng: random.Random) -> float:
        """This answer's added delay: `latency_ms` plus uniform jitter in [0, `jitter_ms`]."""
        jitter = rng.uniform(0.0, self.jitter_ms) if self.jitter_ms else 0.0
        return (self.latency_ms + jitter) / 1000.0
