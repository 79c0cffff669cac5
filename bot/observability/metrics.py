"""Prometheus metrics (text format at GET /metrics): what on-call needs to see the app and ZIM from outside.

Metric objects live in prometheus-client's default registry, which is process-wide by design; every replica
exposes its own numbers and Prometheus sums them.
"""

from __future__ import annotations

import platform
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

ACK_DEADLINE_SECONDS = 3.0  # Slack shows the user operation_timeout when the ack takes longer

COMMANDS = Counter(
    "roomusers_commands_total",
    "Slash commands, mentions and button clicks, by surface and outcome",
    ["surface", "outcome"],
)
ZIM_REQUESTS = Counter(
    "roomusers_zim_requests_total",
    "QueryRoomUserList requests by ZIM return code, or by failure: http_<status>, timeout, connection, not_json",
    ["code"],
)
ZIM_RETRIES = Counter("roomusers_zim_retries_total", "ZIM requests retried after a transient failure")
SNAPSHOT_LOOKUPS = Counter("roomusers_snapshot_lookups_total", "Snapshot cache lookups", ["result"])
FETCH_SECONDS = Histogram(
    "roomusers_fetch_duration_seconds",
    "Time to read a whole room from ZIM",
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60),
)
ROSTER_SHORTFALL = Histogram(
    "roomusers_roster_shortfall_users",
    "Users missing against ZIM's Count, per read (0 for a complete one)",
    buckets=(0, 1, 5, 20, 100, 500, 2000, 10000, 100000),
)
ROSTER_READS = Counter(
    "roomusers_roster_reads_total",
    "Whole-room reads by result: complete, or why incomplete (changed, destroyed, cursor_repeated, cursor_endless,"
    " deadline)",
    ["result"],
)
LIMITER_WAIT_SECONDS = Histogram(
    "roomusers_limiter_wait_seconds",
    "Time a ZIM request waited for its send slot under the QPS limit",
    buckets=(0, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
UNDELIVERED = Counter(
    "roomusers_undelivered_total",
    "Answers that reached nobody: not where they were asked, nor in the requester's DM with the app",
    ["surface", "error"],
)

ACK_SECONDS = Histogram(
    "roomusers_ack_seconds",
    "Time from receiving a Slack request to acknowledging it, by surface (command, action, event)",
    ["surface"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5),
)
ACK_DEADLINE_MISSES = Counter(
    "roomusers_ack_deadline_misses_total",
    "Slack requests acknowledged after Slack's 3 s deadline (the user saw operation_timeout), by surface",
    ["surface"],
)
SLACK_API_ERRORS = Counter(
    "roomusers_slack_api_errors_total",
    "Slack Web API calls (and response_url posts) that failed, by method and Slack's error code",
    ["method", "error"],
)
EVENT_LOOP_LAG = Gauge(
    "roomusers_event_loop_lag_seconds", "The worst event-loop lag seen in the last 10 s (how late timers fire)"
)
FETCHES_IN_FLIGHT = Gauge(
    "roomusers_fetches_in_flight", "Full ZIM reads of a room under way on this replica, by ZEGO app", ["profile"]
)
FETCH_OUTCOMES = Counter(
    "roomusers_fetch_outcomes_total",
    "Full ZIM reads by how they ended: complete, incomplete (cut short or deadline), failed",
    ["profile", "outcome"],
)
SHARED_STATE_FALLBACK = Gauge(
    "roomusers_shared_state_fallback", "1 while Redis is unreachable and this replica runs on in-process state"
)
ZIM_CREDENTIALS_REJECTED = Gauge(
    "roomusers_zim_credentials_rejected",
    "1 when the last credential probe of a ZEGO app was rejected by ZIM",
    ["profile"],
)
SLACK_CONNECTED = Gauge(
    "roomusers_slack_connected",
    "1 while Slack is reachable (HTTP mode: auth.test answered; Socket Mode: the WebSocket is connected)",
)
CHANGES_ANSWERS = Counter(
    "roomusers_changes_answers_total",
    "`--changes` answers by profile and outcome: ok, unchanged, no_baseline, incomplete (a fresh read never "
    "diffed), too_soon (the last complete read is younger than ROOMUSERS_REFRESH_MIN_SECONDS: no read)",
    ["profile", "outcome"],
)
READS_QUEUED = Gauge("roomusers_reads_queued", "Reads waiting for a free reader, by ZEGO app", ["profile"])
BUILD_INFO = Gauge("roomusers_build_info", "Always 1; the labels say which build runs", ["version", "python"])
WATCHES_ACTIVE = Gauge("roomusers_watches_active", "Watches waiting for their condition (all replicas, with Redis)")
WATCH_ZIM_REQUESTS = Counter(
    "roomusers_watch_zim_requests_total", "ZIM requests made to check watches", ["profile", "api"]
)
WATCH_POLL_LAG_SECONDS = Histogram(
    "roomusers_watch_poll_lag_seconds",
    "How late a watch poll started after its due time",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
WATCH_ALERTS_UNDELIVERED = Counter(
    "roomusers_watch_alerts_undelivered_total",
    "Watch alerts and notices that could be posted neither where the watch was set nor in its creator's DM",
)


def _version() -> str:
    try:
        return version("roomusers")
    except PackageNotFoundError:
        return "unknown"


BUILD_INFO.labels(_version(), platform.python_version()).set(1)


@contextmanager
def timed_ack(surface: str) -> Iterator[None]:
    """Time from here to the end of the block as one ack of `surface`; count it if Slack's deadline passed."""
    started = time.perf_counter()
    try:
        yield
    finally:
        took = time.perf_counter() - started
        ACK_SECONDS.labels(surface).observe(took)
        if took > ACK_DEADLINE_SECONDS:
            ACK_DEADLINE_MISSES.labels(surface).inc()


_ERROR_CODE = re.compile(r"[a-z_]{1,40}")


def slack_error_label(code: object, status: int | None = None) -> str:
    """Slack's error code as a label value: a known shape, else `http_<status>` or `other` (bounded cardinality)."""
    text = str(code or "").strip()
    if _ERROR_CODE.fullmatch(text):
        return text
    return f"http_{status}" if status is not None and status != 200 else "other"


def exposition() -> tuple[bytes, str]:
    """The current metrics in Prometheus text format, with its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
