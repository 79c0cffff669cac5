"""Prometheus metrics (text format at GET /metrics): what on-call needs to see the app and ZIM from outside.

Metric objects live in prometheus-client's default registry, which is process-wide by design; every replica
exposes its own numbers and Prometheus sums them.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

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
    "Whole-room reads by result: complete, or why incomplete (changed, destroyed, cursor_repeated, cursor_endless)",
    ["result"],
)
LIMITER_WAIT_SECONDS = Histogram(
    "roomusers_limiter_wait_seconds",
    "Time a ZIM request waited for its send slot under the QPS limit",
    buckets=(0, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def exposition() -> tuple[bytes, str]:
    """The current metrics in Prometheus text format, with its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
