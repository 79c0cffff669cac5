"""How fast a whole room is read, against the floors that ZIM's QPS limit and the round-trip time set.

For each room size and injected RTT (the sandbox adds `latency_ms` before every answer) it measures:

* fetch, in process: wall time of `fetch_roster` in this process, with a fresh HTTP client and pacer per run;
* fetch of a known room, in process: the same with `size_hint` = the room's size, as the SnapshotService
  passes for a room it has read before (a Refresh, an expired snapshot): both chains start at once;
* end to end: wall time of a `python -m bot query load-N --json` subprocess, process start included, with
  its stdout checked (count == N, no duplicate user_id);

and compares them with the floors, for P = ceil(users / 500) pages:

* floor_qps = P / QPS       no client can send the pages faster without ZIM refusing some (660300006);
* floor_rtt = P × RTT / 2   pages form two sequential chains (oldest-first and newest-first);
* floor = max(floor_qps, floor_rtt).

The sandbox runs in its own process (see benchmarks/_sandbox.py) and its statistics are reset before every
run, so each run reports its own request count, 660300006 answers (which must be 0) and the most arrivals
in any one-second window. Runs are separated by a quiet gap longer than ZIM's one-second window, so one
run's tail can never count against the next run's start. One warm-up pass (not recorded) creates the
`load-N` rooms first; then the heap is frozen, as `serve` and `query` do (runs before 2026-12-02's fifth
pass of issue 10 were not).

Targets: a 50,000-user room at 100 ms RTT end to end within 1.3 × pages ÷ QPS; in process, every room
size at 100 ms RTT within 1.15 × floor; and (issue 10) in process at 100 ms RTT, fetch ≤ 1.10 × pages ÷ QPS
from 50,000 users up and ≤ 1.20 × at 10,000, judged for the cold fetch and for the known room.

Run: `python -m benchmarks.fetch_speed [--sizes 1000,5000,10000,50000,100000] [--rtts 20,100,200] [--qps 20]
[--repeat 1] [--quick]`. The table goes to stdout, progress to stderr, and the results to
benchmarks/results/fetch_speed.json and fetch_speed.md. Exit status 1 if any run was invalid (wrong or
duplicated users, any 660300006 answer); with --fail-on-miss, also if the target row misses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._common import (
    RESULTS_DIR,
    STOPPED,
    BenchmarkError,
    float_list,
    int_list,
    log,
    machine_info,
    machine_line,
    markdown_table,
    publish,
    run_measurement,
)
from benchmarks._sandbox import SandboxProcess, clean_env, run_python, stop_on_signals
from benchmarks._stack import QUIET_GAP_S, load_room, zim_client
from bot.heap import freeze_heap
from bot.zim import fetch_roster, new_http_client
from bot.zim.codes import ROOM_RATE_LIMITED
from bot.zim.pacing import DEFAULT_HEADROOM
from bot.zim.wire import MAX_LIMIT

NAME = "fetch_speed"
COMMAND = ".venv/bin/python -m benchmarks.fetch_speed"

DEFAULT_SIZES = (1_000, 5_000, 10_000, 50_000, 100_000)
DEFAULT_RTTS_MS = (20.0, 100.0, 200.0)
DEFAULT_QPS = 20.0
QUICK_SIZES = (10_000, 50_000)
QUICK_RTTS_MS = (100.0,)

# The target: this room, at this RTT and QPS, end to end within FACTOR × pages ÷ QPS, no 660300006.
TARGET_USERS = 50_000
TARGET_RTT_MS = 100.0
TARGET_QPS = 20.0
TARGET_FACTOR = 1.3
# The second target: in process, every room size at this RTT within FLOOR_FACTOR × floor.
FLOOR_TARGET_RTT_MS = 100.0
FLOOR_TARGET_FACTOR = 1.15
# Issue 10: in process at this RTT, fetch ÷ (pages ÷ QPS) at most the factor of the largest size listed <= users.
QPS_TARGET_RTT_MS = 100.0
QPS_TARGET_FACTORS = ((10_000, 1.20), (50_000, 1.10))

# QUIET_GAP_S (from _stack) > ZIM's 1-second arrival window, so runs never share a window
RUN_TIMEOUT_BASE_S = 30.0  # plus RUN_TIMEOUT_FLOORS × floor; a run slower than that is a failure


@dataclass(frozen=True)
class Floors:
    users: int
    rtt_ms: float
    qps: float
    pages: int
    qps_s: float  # pages ÷ QPS
    rtt_s: float  # pages × RTT ÷ 2
    floor_s: float

    @classmethod
    def of(cls, users: int, rtt_ms: float, qps: float) -> Floors:
        pages = max(1, math.ceil(users / MAX_LIMIT))
        qps_s = pages / qps
        rtt_s = pages * rtt_ms / 1000 / 2
        return cls(users, rtt_ms, qps, pages, qps_s, rtt_s, max(qps_s, rtt_s))


@dataclass
class Run:
    kind: str  # "fetch" (in process), "hinted" (in process, with size_hint) or "process" (python -m bot query)
    wall_s: float
    users: int
    requests: int
    rate_limited_660300006: int
    max_in_window_1s: int
    by_code: dict[str, int]
    pages_read: int | None = None  # in process only: pages fetch_roster consumed
    problems: list[str] = field(default_factory=list)


@dataclass
class Config:
    floors: Floors
    fetch_runs: list[Run] = field(default_factory=list)
    process_runs: list[Run] = field(default_factory=list)
    hinted_runs: list[Run] = field(default_factory=list)

    @property
    def runs(self) -> list[Run]:
        return self.fetch_runs + self.hinted_runs + self.process_runs

    @property
    def fetch_s(self) -> float:
        return statistics.median(run.wall_s for run in self.fetch_runs)

    @property
    def hinted_s(self) -> float:
        return statistics.median(run.wall_s for run in self.hinted_runs)

    def qps_factor(self) -> float | None:
        """The issue-10 limit on fetch ÷ (pages ÷ QPS) for this row, or None if none applies."""
        if self.floors.rtt_ms != QPS_TARGET_RTT_MS:
            return None
        factors = [factor for users, factor in QPS_TARGET_FACTORS if users <= self.floors.users]
        return factors[-1] if factors else None

    def qps_verdict(self, wall_s: float) -> str:
        factor = self.qps_factor()
        if factor is None:
            return ""
        return "PASS" if wall_s <= factor * self.floors.qps_s and not self.problems else "MISS"

    @property
    def process_s(self) -> float:
        return statistics.median(run.wall_s for run in self.process_runs)

    @property
    def rate_limited(self) -> int:
        return sum(run.rate_limited_660300006 for run in self.runs)

    @property
    def problems(self) -> list[str]:
        return [problem for run in self.runs for problem in run.problems]

    def is_target(self) -> bool:
        f = self.floors
        return f.users == TARGET_USERS and f.rtt_ms == TARGET_RTT_MS and f.qps == TARGET_QPS

    def is_floor_target(self) -> bool:
        return self.floors.rtt_ms == FLOOR_TARGET_RTT_MS

    def floor_verdict(self) -> str:
        passed = self.fetch_s <= FLOOR_TARGET_FACTOR * self.floors.floor_s and not self.problems
        return "PASS" if passed else "MISS"

    def target_limit_s(self) -> float:
        return TARGET_FACTOR * self.floors.qps_s

    def verdict(self) -> str:
        passed = self.process_s <= self.target_limit_s() and self.rate_limited == 0 and not self.problems
        return "PASS" if passed else "MISS"

    def summary(self) -> dict[str, Any]:
        f = self.floors
        return {
            "users": f.users,
            "rtt_ms": f.rtt_ms,
            "qps": f.qps,
            "pages": f.pages,
            "floor_qps_s": f.qps_s,
            "floor_rtt_s": f.rtt_s,
            "floor_s": f.floor_s,
            "fetch_s": self.fetch_s,
            "process_s": self.process_s,
            "fetch_over_floor_qps": self.fetch_s / f.qps_s,
            "fetch_over_floor": self.fetch_s / f.floor_s,
            "hinted_s": self.hinted_s,
            "hinted_over_floor_qps": self.hinted_s / f.qps_s,
            "fetch_spread_s": [min(r.wall_s for r in self.fetch_runs), max(r.wall_s for r in self.fetch_runs)],
            "hinted_spread_s": [min(r.wall_s for r in self.hinted_runs), max(r.wall_s for r in self.hinted_runs)],
            "qps_target_factor": self.qps_factor(),
            "qps_target_cold": self.qps_verdict(self.fetch_s) or None,
            "qps_target_hinted": self.qps_verdict(self.hinted_s) or None,
            "process_over_floor_qps": self.process_s / f.qps_s,
            "requests_fetch": statistics.median(run.requests for run in self.fetch_runs),
            "requests_process": statistics.median(run.requests for run in self.process_runs),
            "rate_limited_660300006": self.rate_limited,
            "max_in_window_1s": max(run.max_in_window_1s for run in self.runs),
            "problems": self.problems,
            "target": self.verdict() if self.is_target() else None,
            "floor_target": self.floor_verdict() if self.is_floor_target() else None,
            "runs": [asdict(run) for run in self.runs],
        }


# ----- one run of each kind ------------------------------------------------------------------------


def run_timeout(floors: Floors) -> float:
    return RUN_TIMEOUT_BASE_S + 5 * floors.floor_s


async def fetch_in_process(
    sandbox: SandboxProcess, floors: Floors, *, size_hint: int = 0
) -> tuple[float, int, list[str], int]:
    """Wall time of fetch_roster with a fresh client; the users read, problems found and pages consumed."""
    room_id = load_room(floors.users)
    async with new_http_client() as http:
        client = zim_client(sandbox, http, floors.qps)
        try:
            async with asyncio.timeout(run_timeout(floors)):
                started = time.perf_counter()
                roster = await fetch_roster(client, room_id, size_hint=size_hint)
                wall = time.perf_counter() - started
        except TimeoutError:
            raise BenchmarkError(f"fetch_roster({room_id!r}) took longer than {run_timeout(floors):.0f} s") from None
    ids = [user.user_id for user in roster.users]
    return wall, len(ids), check_users(ids, floors.users), roster.pages


async def fetch_in_subprocess(sandbox: SandboxProcess, floors: Floors) -> tuple[float, int, list[str]]:
    """Wall time of `python -m bot query load-N --json`, from spawning it to its exit; its output checked."""
    room_id = load_room(floors.users)
    env = clean_env(
        ZEGO_APP_ID=str(sandbox.app_id),
        ZEGO_SERVER_SECRET=sandbox.secret,
        ZEGO_API_BASE_URL=sandbox.base_url,
        ZEGO_QPS=f"{floors.qps:g}",
    )
    started = time.perf_counter()
    returncode, stdout, stderr = await run_python(
        "-m", "bot", "query", room_id, "--json", env=env, time_limit=run_timeout(floors)
    )
    wall = time.perf_counter() - started
    if returncode != 0:
        raise BenchmarkError(
            f"python -m bot query {room_id} exited {returncode}: {stderr.decode(errors='replace')[-500:]}"
        )
    payload = json.loads(stdout)
    ids = [user["user_id"] for user in payload["users"]]
    problems = check_users(ids, floors.users)
    if payload["count"] != floors.users:
        problems.append(f"{room_id}: the query printed count {payload['count']}, expected {floors.users}")
    if payload["room_id"] != room_id:
        problems.append(f"{room_id}: the query printed room_id {payload['room_id']!r}")
    return wall, len(ids), problems


def check_users(ids: Sequence[str], expected: int) -> list[str]:
    problems = []
    if len(ids) != expected:
        problems.append(f"load-{expected}: read {len(ids)} users, expected {expected}")
    duplicates = len(ids) - len(set(ids))
    if duplicates:
        problems.append(f"load-{expected}: {duplicates} duplicate user_id(s)")
    return problems


async def measured(sandbox: SandboxProcess, floors: Floors, kind: str) -> Run:
    """One run after a quiet gap and a stats reset, with the sandbox's view of it."""
    await asyncio.sleep(QUIET_GAP_S)
    await sandbox.reset_stats()
    pages_read: int | None = None
    if kind in ("fetch", "hinted"):
        hint = floors.users if kind == "hinted" else 0
        wall, users, problems, pages_read = await fetch_in_process(sandbox, floors, size_hint=hint)
    else:
        wall, users, problems = await fetch_in_subprocess(sandbox, floors)
    stats = await sandbox.stats()
    by_code = {str(key): int(value) for key, value in stats["by_code"].items()}
    rate_limited = by_code.get(str(ROOM_RATE_LIMITED), 0)
    if rate_limited:
        problems.append(f"load-{floors.users} at {floors.rtt_ms:g} ms ({kind}): {rate_limited} × {ROOM_RATE_LIMITED}")
    return Run(
        kind=kind,
        wall_s=wall,
        users=users,
        requests=int(stats["requests"]),
        rate_limited_660300006=rate_limited,
        max_in_window_1s=int(stats["max_in_window_1s"]),
        by_code=by_code,
        pages_read=pages_read,
        problems=problems,
    )


async def measure(sizes: Sequence[int], rtts: Sequence[float], qps: float, repeat: int) -> list[Config]:
    configs: list[Config] = []
    stop_on_signals()
    async with SandboxProcess(latency_ms=0) as sandbox:
        log(f"sandbox pid {sandbox.pid} at {sandbox.base_url}")
        log("warm-up (not recorded): creating the load rooms at 0 ms RTT")
        for users in sizes:
            warm_up = await measured(sandbox, Floors.of(users, 0.0, qps), "fetch")
            for problem in warm_up.problems:
                log(f"warm-up: {problem}")
        # `serve` and `query` freeze their heap once started (bot/heap.py); without it this process's full
        # collections scan everything the benchmark built and pause its reads longer than a frozen serve's.
        freeze_heap()
        for rtt_ms in rtts:
            await sandbox.set_latency(rtt_ms)
            for users in sizes:
                config = Config(Floors.of(users, rtt_ms, qps))
                for attempt in range(1, repeat + 1):
                    config.fetch_runs.append(await measured(sandbox, config.floors, "fetch"))
                    config.hinted_runs.append(await measured(sandbox, config.floors, "hinted"))
                    config.process_runs.append(await measured(sandbox, config.floors, "process"))
                    fetch, hinted, process = config.fetch_runs[-1], config.hinted_runs[-1], config.process_runs[-1]
                    log(
                        f"{users:>7,} users {rtt_ms:>5g} ms #{attempt}: fetch {fetch.wall_s:6.2f} s "
                        f"({fetch.requests} req), known room {hinted.wall_s:6.2f} s ({hinted.requests} req), "
                        f"process {process.wall_s:6.2f} s ({process.requests} req), floor {config.floors.floor_s:.2f} s"
                    )
                configs.append(config)
    return configs


# ----- reporting -------------------------------------------------------------------------------------


def seconds(value: float) -> str:
    return f"{value:.2f}"


def ratio(value: float) -> str:
    return f"{value:.2f}×"


HEADERS = (
    "users",
    "RTT ms",
    "pages",
    "pages÷QPS s",
    "floor_rtt s",
    "floor s",
    "fetch s (in process)",
    "fetch ÷ (pages÷QPS)",
    "fetch ÷ floor",
    "known room s (size hint)",
    "known room ÷ (pages÷QPS)",
    "end to end s (process)",
    "process ÷ (pages÷QPS)",
    "requests (fetch / known / process)",
    "660300006",
    "max arrivals in 1 s",
    "target",
    f"fetch ≤ {FLOOR_TARGET_FACTOR:g}× floor",
    "issue 10: fetch / known room ≤ 1.20× (10k) · 1.10× (≥ 50k) pages÷QPS",
)
ALIGN = ("---:",) * (len(HEADERS) - 3) + (":---:", ":---:", ":---:")


def table(configs: Sequence[Config]) -> str:
    rows = []
    for config in configs:
        f = config.floors
        s = config.summary()
        cells = (
            f"{f.users:,}",
            f"{f.rtt_ms:g}",
            str(f.pages),
            seconds(f.qps_s),
            seconds(f.rtt_s),
            seconds(f.floor_s),
            seconds(config.fetch_s),
            ratio(s["fetch_over_floor_qps"]),
            ratio(s["fetch_over_floor"]),
            seconds(config.hinted_s),
            ratio(s["hinted_over_floor_qps"]),
            seconds(config.process_s),
            ratio(s["process_over_floor_qps"]),
            f"{s['requests_fetch']:g} / {statistics.median(r.requests for r in config.hinted_runs):g} / "
            f"{s['requests_process']:g}",
            str(config.rate_limited),
            str(s["max_in_window_1s"]),
            f"**{config.verdict()}**" if config.is_target() else "",
            f"**{config.floor_verdict()}**" if config.is_floor_target() else "",
            f"**{config.qps_verdict(config.fetch_s)}** / **{config.qps_verdict(config.hinted_s)}**"
            if config.qps_factor() is not None
            else "",
        )
        rows.append(cells)
    return markdown_table(HEADERS, rows, ALIGN)


def target_sentence(configs: Sequence[Config]) -> str:
    goal = (
        f"{TARGET_USERS:,} users at {TARGET_RTT_MS:g} ms RTT and {TARGET_QPS:g} QPS, end to end (process start "
        f"included) within {TARGET_FACTOR:g} × pages ÷ QPS, with zero {ROOM_RATE_LIMITED} answers"
    )
    row = next((config for config in configs if config.is_target()), None)
    if row is None:
        return f"Target ({goal}): NOT MEASURED (that configuration was not run)."
    limit = row.target_limit_s()
    return (
        f"Target ({goal}): **{row.verdict()}**: {row.process_s:.2f} s against a limit of {limit:.2f} s "
        f"({TARGET_FACTOR:g} × {row.floors.qps_s:.2f} s), i.e. {row.process_s / row.floors.qps_s:.2f}× pages ÷ QPS, "
        f"{limit - row.process_s:+.2f} s to spare; {row.rate_limited} × {ROOM_RATE_LIMITED}."
    )


def floor_target_sentence(configs: Sequence[Config]) -> str:
    goal = f"fetch (in process) ≤ {FLOOR_TARGET_FACTOR:g} × floor at {FLOOR_TARGET_RTT_MS:g} ms RTT"
    rows = [config for config in configs if config.is_floor_target()]
    if not rows:
        return f"Target ({goal}): NOT MEASURED (no run at that RTT)."
    misses = [config for config in rows if config.floor_verdict() != "PASS"]
    ratios = ", ".join(f"{c.floors.users:,}: {c.fetch_s / c.floors.floor_s:.2f}×" for c in rows)
    if not misses:
        return f"Target ({goal}): **PASS** for every size ({ratios})."
    missed = ", ".join(
        f"{c.floors.users:,} users ({c.fetch_s:.2f} s against {FLOOR_TARGET_FACTOR * c.floors.floor_s:.2f} s, "
        f"{c.fetch_s - FLOOR_TARGET_FACTOR * c.floors.floor_s:+.2f} s)"
        for c in misses
    )
    return f"Target ({goal}): **MISS** for {missed}; ratios {ratios}."


def spread_sentence(configs: Sequence[Config]) -> str:
    """Every run's wall time, not only the medians: on a shared machine the spread is the honest part."""
    rows = [
        f"{c.floors.users:,} at {c.floors.rtt_ms:g} ms: cold {', '.join(seconds(r.wall_s) for r in c.fetch_runs)}; "
        f"known room {', '.join(seconds(r.wall_s) for r in c.hinted_runs)}"
        for c in configs
    ]
    return "In-process runs (s): " + " · ".join(rows) + "."


def markdown(configs: Sequence[Config], machine: dict[str, Any], settings: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"# {NAME}",
            "",
            f"{machine_line(machine)}; QPS {settings['qps']:g}, pacer headroom "
            f"{settings['pacer_headroom']:g}, {settings['page_size']} users a page, median of "
            f"{settings['repeat']} run(s). Regenerate: `{COMMAND}`.",
            "",
            table(configs),
            "",
            target_sentence(configs),
            "",
            floor_target_sentence(configs),
            "",
            spread_sentence(configs),
            "",
        ]
    )


# ----- command line ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fetch_speed", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes", type=int_list, default=DEFAULT_SIZES, help="room sizes (default 1000,5000,10000,50000,100000)"
    )
    parser.add_argument("--rtts", type=float_list, default=DEFAULT_RTTS_MS, help="injected RTTs in ms (20,100,200)")
    parser.add_argument("--qps", type=float, default=DEFAULT_QPS, help="ZEGO_QPS for the client (default 20)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per configuration; the median is reported")
    parser.add_argument("--quick", action="store_true", help="only 10,000 and 50,000 users at 100 ms")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where to write the results")
    parser.add_argument("--fail-on-miss", action="store_true", help="exit 1 if the target row misses")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.repeat < 1:
        build_parser().error("--repeat must be at least 1")
    if not 0 < args.qps <= 1000:
        build_parser().error("--qps must be greater than 0 and at most 1000")
    sizes, rtts = (QUICK_SIZES, QUICK_RTTS_MS) if args.quick else (args.sizes, args.rtts)
    settings = {
        "sizes": list(sizes),
        "rtts_ms": list(rtts),
        "qps": args.qps,
        "repeat": args.repeat,
        "quick": args.quick,
        "page_size": MAX_LIMIT,
        "pacer_headroom": DEFAULT_HEADROOM,
        "quiet_gap_s": QUIET_GAP_S,
    }
    configs = run_measurement(measure(sizes, rtts, args.qps, args.repeat))
    if configs is None:
        return STOPPED
    machine = machine_info()
    target = next((config for config in configs if config.is_target()), None)
    sections = {
        "settings": settings,
        "target": {
            "users": TARGET_USERS,
            "rtt_ms": TARGET_RTT_MS,
            "qps": TARGET_QPS,
            "factor": TARGET_FACTOR,
            "limit_s": target.target_limit_s() if target else None,
            "process_s": target.process_s if target else None,
            "verdict": target.verdict() if target else "NOT MEASURED",
        },
        "floor_target": {
            "rtt_ms": FLOOR_TARGET_RTT_MS,
            "factor": FLOOR_TARGET_FACTOR,
            "verdicts": {str(c.floors.users): c.floor_verdict() for c in configs if c.is_floor_target()},
        },
        "results": [config.summary() for config in configs],
    }
    problems = [problem for config in configs for problem in config.problems]
    report = markdown(configs, machine, settings)
    if publish(args.results_dir, NAME, COMMAND, machine, report, sections, problems):
        return 1
    if args.fail_on_miss and target is not None and target.verdict() != "PASS":
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
