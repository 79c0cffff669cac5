"""Throughput of 1, 2 and 4 app replicas sharing one redis-server: the ZIM limit is global, so it must not grow.

Every run uses the real product (`bot.dev.local_stack.local_replicas`: Bolt apps over HTTP, the Slack stand-in)
with all replicas sharing one real `redis-server` (snapshots, the smooth pacer under ZEGO_QPS, single-flight
leases, event dedupe), against one in-process ZIM sandbox with injected latency (50 ms by default).

Workload: M distinct rooms of N users (16 × 5,000 = 160 pages of 500 by default), each requested with
`/roomusers <room>` by its own user, spread round-robin over the replicas and sent all at once. The clock
stops when every whole room is in the shared store. For each replica count it reports:

* wall time, and aggregate throughput: users/s delivered (total users ÷ wall) and pages/s;
* the floor, pages ÷ QPS (no deployment can read the pages faster without ZIM refusing some), and wall ÷ floor;
* limiter accuracy: the most arrivals in any 1-s window at the sandbox (must be ≤ QPS), and the mean arrival
  rate over the busy period (first to last arrival) against QPS × 0.95 (the pacer's headroom);
* 660300006 answers (must be 0), requests per page (two chains per room meet in the middle, so a little
  over 1 is their overlap; a duplicate fetch by another replica would add a whole room's pages) and
  fetches (must equal M: one per room, whichever replica was asked).

Then one more run: the same room requested on every replica at once; it must be fetched once (requests ≈ its
pages). Before every run Redis is flushed, the sandbox's statistics reset, and a quiet gap longer than
ZIM's one-second window (and the pacer key's expiry) is left, so runs never share a window.

Everything (sandbox, replicas, stand-in) shares this process's event loop, so each run also records the
event-loop stalls (a 5 ms ticker's overshoot) and generation-2 garbage collections (gc.callbacks). The pacer
spaces sends 1 / (QPS × 0.95) apart, which leaves 20/19 − 1 s ≈ 53 ms of slack per window at 20 QPS: a send
held up longer than that after its slot lets QPS + 1 arrivals into one second. Every over-limit window is
reported with the largest stall just before it. `--gc-freeze` moves everything alive after set-up into
gc's permanent generation (gc.freeze()) to show how much of that comes from full collections.

Run: `python -m benchmarks.replicas [--replicas 1,2,4] [--rooms 16] [--users 5000] [--latency-ms 50]
[--qps 20] [--repeat 3] [--gc-freeze]`. The table goes to stdout, progress to stderr, and the results to
benchmarks/results/replicas.json and replicas.md. Exit status 1 if any run broke an invariant (wrong or
incomplete rosters, any 660300006 answer, more than QPS arrivals in a 1-s window, extra fetches, a command
left unanswered).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

from benchmarks._common import (
    RESULTS_DIR,
    STOPPED,
    BenchmarkError,
    host_info,
    host_line,
    log,
    markdown_table,
    number_list,
    publish,
    run_measurement,
    whole_number,
)
from benchmarks._redis import RedisServer
from benchmarks._stack import QUIET_GAP_S
from bot.dev.local_stack import LocalReplicas, local_replicas
from bot.dev.zim_sandbox import ZimSandbox, generated_users
from bot.zim.codes import ROOM_RATE_LIMITED
from bot.zim.pacing import DEFAULT_HEADROOM
from bot.zim.wire import MAX_LIMIT

NAME = "replicas"
COMMAND = ".venv/bin/python -m benchmarks.replicas"

DEFAULT_REPLICAS = (1, 2, 4)
DEFAULT_ROOMS = 16
DEFAULT_USERS = 5_000
DEFAULT_LATENCY_MS = 50.0
DEFAULT_QPS = 20.0
DEFAULT_REPEAT = 3

# QUIET_GAP_S (from _stack) > ZIM's 1-second window and the pacer key's 1-s expiry: runs never share a window
POLL_S = 0.02  # how often the shared store is polled for finished rooms
TICK_S = 0.005  # the loop-stall ticker's period
STALL_MIN_S = 0.002  # overshoots below this are not recorded
STALL_LOOKBACK_S = 0.15  # a stall ending this long before (or during) an over-limit window's first arrival
RUN_TIMEOUT_BASE_S = 30.0  # plus 5 × the floor; a run slower than that is a failure
ANSWER_TIMEOUT_S = 10.0  # after the rooms are stored, every command must have had its answer by then
FETCH_COUNT_METRIC = "roomusers_fetch_duration_seconds_count"  # one observation per whole-room fetch


# ----- one run -------------------------------------------------------------------------------------


@dataclass
class Run:
    replicas: int
    rooms: int
    users_per_room: int
    pages: int
    wall_s: float
    requests: int
    fetches: int
    rate_limited_660300006: int
    max_in_window_1s: int
    arrivals: int
    busy_s: float
    mean_rate: float
    max_ack_s: float
    max_loop_stall_ms: float
    gen2_collections: int
    gen2_max_ms: float
    over_limit_windows: list[dict[str, Any]]
    by_code: dict[str, int]
    requests_per_room: dict[str, int]
    answers_whole: bool = True  # every roster stored whole and every command answered
    problems: list[str] = field(default_factory=list)


def room_names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i:02d}" for i in range(count)]


def add_rooms(sandbox: ZimSandbox, rooms: Sequence[str], users: int, seed: int) -> None:
    """Create the rooms (distinct members each) and build their JSON fragments now, not during a run."""
    for offset, room_id in enumerate(rooms):
        room = sandbox.add_room(room_id, generated_users(users, seed=seed + offset))
        room.encoded(reverse=False)
        room.encoded(reverse=True)


def fetch_count() -> float:
    return REGISTRY.get_sample_value(FETCH_COUNT_METRIC) or 0.0


def busy_rate(arrivals: Sequence[float]) -> tuple[float, float]:
    """(busy period in s, mean arrivals per second over it): first to last arrival, n - 1 intervals."""
    if len(arrivals) < 2:
        return 0.0, math.nan
    busy = arrivals[-1] - arrivals[0]
    return busy, (len(arrivals) - 1) / busy if busy > 0 else math.nan


class LoopWatch:
    """Event-loop stalls (how late a TICK_S sleep woke) and generation-2 collections, on time.monotonic(),
    the sandbox's arrival clock. `async with LoopWatch() as watch:`; the ticker stops on exit."""

    def __init__(self) -> None:
        self.stalls: list[tuple[float, float]] = []  # (when the stall ended, seconds)
        self.collections: list[tuple[float, float]] = []  # (when a gen-2 collection ended, seconds)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._gc_started = 0.0

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        now = time.monotonic()
        if phase == "start":
            self._gc_started = now
        else:
            self.collections.append((now, now - self._gc_started))

    async def _tick(self) -> None:
        while not self._stop.is_set():  # bounded: __aexit__ sets the event
            before = time.monotonic()
            await asyncio.sleep(TICK_S)
            after = time.monotonic()
            lag = after - before - TICK_S
            if lag >= STALL_MIN_S:
                self.stalls.append((after, lag))

    async def __aenter__(self) -> LoopWatch:
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            await self._task

    def worst_stall_before(self, moment: float) -> tuple[float, float]:
        """(largest stall, largest gen-2 collection) ending within STALL_LOOKBACK_S before `moment` (or just
        after it, since the stall's end and the arrival's stamp are a few microseconds apart)."""

        def near(events: list[tuple[float, float]]) -> float:
            return max((s for end, s in events if moment - STALL_LOOKBACK_S <= end <= moment + 0.01), default=0.0)

        return near(self.stalls), near(self.collections)


def over_limit_windows(arrivals: Sequence[float], limit: int, watch: LoopWatch) -> list[dict[str, Any]]:
    """Every maximal run of more than `limit` arrivals within one second (same rule as the sandbox's window),
    by its first arrival: offset from the first arrival of the run, count, and the stall just before it."""
    found: dict[int, int] = {}  # index of a window's first arrival -> most arrivals counted from it
    start = 0
    for end, now in enumerate(arrivals):
        while now - arrivals[start] >= 1.0:
            start += 1
        if end - start + 1 > limit:
            found[start] = max(found.get(start, 0), end - start + 1)
    windows = []
    for index, count in sorted(found.items()):
        stall, collection = watch.worst_stall_before(arrivals[index])
        gaps = [arrivals[i + 1] - arrivals[i] for i in range(index, min(index + count, len(arrivals)) - 1)]
        windows.append(
            {
                "at_s": arrivals[index] - arrivals[0],
                "arrivals": count,
                "stall_before_ms": stall * 1000,
                "gen2_gc_before_ms": collection * 1000,
                "min_gap_ms": min(gaps) * 1000 if gaps else math.nan,
            }
        )
    return windows


def describe_window(window: dict[str, Any]) -> str:
    cause = (
        f"right after a {window['stall_before_ms']:.0f} ms event-loop stall"
        + (f" (a {window['gen2_gc_before_ms']:.0f} ms gen-2 GC)" if window["gen2_gc_before_ms"] else "")
        if window["stall_before_ms"]
        else "with no event-loop stall just before it"
    )
    return f"{window['arrivals']} arrivals in the 1-s window from +{window['at_s']:.2f} s, {cause}"


def run_timeout(pages: int, qps: float) -> float:
    return RUN_TIMEOUT_BASE_S + 5 * pages / qps


async def wait_until_stored(local: LocalReplicas, rooms: Sequence[str], *, within: float) -> None:
    """Poll the shared store (Redis) until every whole room is in it; each stored room leaves the poll list."""
    snapshots = local.replicas[0].running.zego_apps.by_profile["default"].snapshots
    pending = list(rooms)
    try:
        async with asyncio.timeout(within):
            while pending:
                pending = [room for room in pending if await snapshots.cached(room) is None]
                if pending:
                    await asyncio.sleep(POLL_S)
    except TimeoutError:
        raise BenchmarkError(f"{len(pending)} room(s) not stored within {within:.0f} s: {pending[:5]}") from None


async def check_rosters(local: LocalReplicas, sandbox: ZimSandbox, rooms: Sequence[str]) -> list[str]:
    """Every stored roster holds exactly the sandbox room's members, each once."""
    snapshots = (
        local.replicas[-1].running.zego_apps.by_profile["default"].snapshots
    )  # read back through another replica
    problems = []
    for room_id in rooms:
        roster = await snapshots.cached(room_id)
        expected = {user_id for user_id, _ in sandbox.rooms[room_id].users}
        ids = [user.user_id for user in roster.users] if roster is not None else []
        if len(ids) != len(expected) or set(ids) != expected:
            problems.append(f"{room_id}: stored {len(ids)} users ({len(set(ids))} distinct), expected {len(expected)}")
    return problems


async def check_answers(local: LocalReplicas, users: Sequence[str], expected_text: str) -> list[str]:
    """Every user who ran the command got an answer through response_url that names the room's size."""

    def answered(user: str) -> bool:
        return any(
            m.origin == "response_url" and expected_text in json.dumps({"t": m.text, "b": m.blocks}, ensure_ascii=False)
            for m in local.slack.ephemerals(user)
        )

    try:
        await local.slack.wait_for(lambda: all(answered(user) for user in users), timeout=ANSWER_TIMEOUT_S)
    except TimeoutError:
        missing = [user for user in users if not answered(user)]
        return [f"no answer naming {expected_text!r} for {len(missing)} command(s): {missing[:5]}"]
    return []


async def send_all(local: LocalReplicas, commands: Sequence[tuple[int, str, str]]) -> float:
    """Send `/roomusers <room>` as each (replica, room, user) all at once; return the slowest ack's seconds."""
    sends = []
    for replica, room_id, user in commands:
        local.route(replica)
        sends.append(asyncio.create_task(local.slack.send_command(room_id, user_id=user)))
        await asyncio.sleep(0)  # the task reads the routed URL before the next route() call
    responses = await asyncio.gather(*sends)
    bad = [r.status for r in responses if r.status != 200]
    if bad:
        raise BenchmarkError(f"{len(bad)} command(s) not acked with 200: {bad[:5]}")
    return max(r.elapsed for r in responses)


async def one_run(
    sandbox: ZimSandbox,
    redis: RedisServer,
    *,
    replicas: int,
    rooms: Sequence[str],
    spread: bool,
    users: int,
    qps: float,
) -> Run:
    """Request every room through /roomusers (round-robin over the replicas when `spread`, else every room on
    every replica) and wait until all are stored. Only the time from the first send to the last room stored
    is measured; starting the replicas is not."""
    pages_per_room = max(1, math.ceil(users / MAX_LIMIT))
    pages = pages_per_room * len(rooms)
    redis.flush()
    await asyncio.sleep(QUIET_GAP_S)
    sandbox.reset_stats()
    if spread:
        commands = [(i % replicas, room_id, f"U0BENCH{i:03d}") for i, room_id in enumerate(rooms)]
    else:
        commands = [(r, room_id, f"U0SAME{r:02d}{i:03d}") for i, room_id in enumerate(rooms) for r in range(replicas)]
    async with local_replicas(replicas, sandbox=sandbox, redis_url=redis.url, qps=qps) as local:
        fetches_before = fetch_count()
        async with LoopWatch() as watch:
            started = time.perf_counter()
            async with asyncio.timeout(run_timeout(pages, qps)):
                max_ack = await send_all(local, commands)
            await wait_until_stored(local, rooms, within=run_timeout(pages, qps))
            wall = time.perf_counter() - started
        fetches = round(fetch_count() - fetches_before)
        stats = sandbox.stats
        arrivals = list(stats.arrivals)
        windows = over_limit_windows(arrivals, math.floor(qps), watch)
        run = Run(
            replicas=replicas,
            rooms=len(rooms),
            users_per_room=users,
            pages=pages,
            wall_s=wall,
            requests=stats.requests,
            fetches=fetches,
            rate_limited_660300006=stats.rate_limited,
            max_in_window_1s=stats.max_in_window(1.0),
            arrivals=len(arrivals),
            busy_s=busy_rate(arrivals)[0],
            mean_rate=busy_rate(arrivals)[1],
            max_ack_s=max_ack,
            max_loop_stall_ms=max((lag for _, lag in watch.stalls), default=0.0) * 1000,
            gen2_collections=len(watch.collections),
            gen2_max_ms=max((seconds for _, seconds in watch.collections), default=0.0) * 1000,
            over_limit_windows=windows,
            by_code={str(key): count for key, count in stats.by_code.items()},
            requests_per_room=dict(stats.per_room),
        )
        run.problems.extend(await check_rosters(local, sandbox, rooms))
        run.problems.extend(await check_answers(local, [user for _, _, user in commands], f"{users:,} users"))
        run.problems.extend(f"Slack stand-in warning: {warning}" for warning in local.slack.warnings)
        run.answers_whole = not run.problems
    if run.rate_limited_660300006:
        run.problems.append(f"{run.rate_limited_660300006} × {ROOM_RATE_LIMITED} answers")
    if run.max_in_window_1s > qps:
        run.problems.append(f"{run.max_in_window_1s} arrivals in one 1-s window, over the limit of {qps:g}")
        run.problems.extend(describe_window(window) for window in windows)
    if run.fetches != len(rooms):
        run.problems.append(f"{run.fetches} fetches for {len(rooms)} room(s)")
    return run


# ----- the whole measurement ---------------------------------------------------------------------------


@dataclass
class Config:
    replicas: int
    qps: float
    runs: list[Run] = field(default_factory=list)

    @property
    def median(self) -> Run:
        """The run with the median wall time (the lower middle one for an even count)."""
        ordered = sorted(self.runs, key=lambda run: run.wall_s)
        return ordered[(len(ordered) - 1) // 2]

    @property
    def problems(self) -> list[str]:
        return [f"{self.replicas} replica(s): {problem}" for run in self.runs for problem in run.problems]

    def summary(self) -> dict[str, Any]:
        run = self.median
        floor = run.pages / self.qps
        total_users = run.rooms * run.users_per_room
        return {
            "replicas": self.replicas,
            "rooms": run.rooms,
            "users_per_room": run.users_per_room,
            "users": total_users,
            "pages": run.pages,
            "qps": self.qps,
            "wall_s": run.wall_s,
            "users_per_s": total_users / run.wall_s,
            "pages_per_s": run.pages / run.wall_s,
            "floor_s": floor,
            "wall_over_floor": run.wall_s / floor,
            "max_in_window_1s": max(r.max_in_window_1s for r in self.runs),
            "runs": len(self.runs),
            "runs_over_limit": sum(r.max_in_window_1s > self.qps for r in self.runs),
            "runs_rate_limited": sum(r.rate_limited_660300006 > 0 for r in self.runs),
            "mean_rate_busy": run.mean_rate,
            "target_rate": self.qps * DEFAULT_HEADROOM,
            "busy_s": run.busy_s,
            "rate_limited_660300006": sum(r.rate_limited_660300006 for r in self.runs),
            "requests": run.requests,
            "requests_per_page": run.requests / run.pages,
            "fetches": run.fetches,
            "max_ack_s": run.max_ack_s,
            "max_loop_stall_ms": max(r.max_loop_stall_ms for r in self.runs),
            "gen2_max_ms": max(r.gen2_max_ms for r in self.runs),
            "gen2_collections_median": statistics.median(r.gen2_collections for r in self.runs),
            "problems": self.problems,
            "each_run": [asdict(r) for r in self.runs],
        }


async def measure(
    replica_counts: Sequence[int],
    rooms: int,
    users: int,
    latency_ms: float,
    qps: float,
    repeat: int,
    *,
    gc_freeze: bool = False,
) -> tuple[list[Config], Run]:
    workload = room_names("bench", rooms)
    shared = "bench-shared"
    configs = [Config(replicas=count, qps=qps) for count in replica_counts]
    with RedisServer() as redis:
        log(f"redis-server on {redis.url}")
        async with ZimSandbox(latency_ms=latency_ms, qps=math.floor(qps)) as sandbox:
            add_rooms(sandbox, [*workload, shared], users, seed=10_000)
            if gc_freeze:
                gc.collect()
                gc.freeze()
                log(f"gc.freeze(): {gc.get_freeze_count():,} objects moved to the permanent generation")
            for round_number in range(repeat):
                for config in configs:
                    log(
                        f"[{round_number + 1}/{repeat}] {config.replicas} replica(s): {rooms} rooms × {users:,} "
                        f"users, round-robin, at once"
                    )
                    run = await one_run(
                        sandbox, redis, replicas=config.replicas, rooms=workload, spread=True, users=users, qps=qps
                    )
                    config.runs.append(run)
                    log(
                        f"    {run.wall_s:.2f} s, {run.requests} requests, max {run.max_in_window_1s} in 1 s, "
                        f"{run.rate_limited_660300006} × {ROOM_RATE_LIMITED}, {run.fetches} fetches, "
                        f"max loop stall {run.max_loop_stall_ms:.0f} ms, gen-2 GC max {run.gen2_max_ms:.0f} ms"
                    )
            same_replicas = max(replica_counts)
            log(f"same room on all {same_replicas} replica(s) at once")
            same = await one_run(
                sandbox, redis, replicas=same_replicas, rooms=[shared], spread=False, users=users, qps=qps
            )
            log(f"    {same.wall_s:.2f} s, {same.requests} requests for {same.pages} pages, {same.fetches} fetch(es)")
    return configs, same


# ----- report ------------------------------------------------------------------------------------------


def table(configs: Sequence[Config]) -> str:
    headers = (
        "replicas",
        "users (rooms × size)",
        "pages",
        "wall",
        "users/s",
        "pages/s",
        "floor (pages ÷ QPS)",
        "× floor",
        "max arrivals in 1 s (≤ QPS; runs over)",
        "mean rate, busy (vs QPS × 0.95)",
        f"{ROOM_RATE_LIMITED} (runs with any)",
        "requests (per page)",
        "fetches",
        "max loop stall (max gen-2 GC)",
    )
    rows = []
    for config in configs:
        s = config.summary()
        cells = (
            str(s["replicas"]),
            f"{s['users']:,} ({s['rooms']} × {s['users_per_room']:,})",
            str(s["pages"]),
            f"{s['wall_s']:.2f} s",
            f"{s['users_per_s']:,.0f}",
            f"{s['pages_per_s']:.1f}",
            f"{s['floor_s']:.2f} s",
            f"{s['wall_over_floor']:.2f}×",
            f"{s['max_in_window_1s']} / {s['qps']:g} ({s['runs_over_limit']} of {s['runs']})",
            f"{s['mean_rate_busy']:.2f}/s (vs {s['target_rate']:g})",
            f"{s['rate_limited_660300006']} ({s['runs_rate_limited']} of {s['runs']})",
            f"{s['requests']} ({s['requests_per_page']:.3f})",
            str(s["fetches"]),
            f"{s['max_loop_stall_ms']:.0f} ms ({s['gen2_max_ms']:.0f} ms)",
        )
        rows.append(cells)
    return markdown_table(headers, rows)


def same_room_summary(run: Run) -> dict[str, Any]:
    return {
        "replicas": run.replicas,
        "users": run.users_per_room,
        "pages": run.pages,
        "commands": run.replicas,
        "requests": run.requests,
        "requests_per_page": run.requests / run.pages,
        "fetches": run.fetches,
        "expected_fetches": 1,
        "wall_s": run.wall_s,
        "rate_limited_660300006": run.rate_limited_660300006,
        "max_in_window_1s": run.max_in_window_1s,
        "problems": [f"same room: {problem}" for problem in run.problems],
        "run": asdict(run),
    }


def same_room_sentence(run: Run) -> str:
    verdict = "as expected" if run.fetches == 1 and not run.problems else "**NOT as expected**"
    return (
        f"Same room ({run.users_per_room:,} users, {run.pages} pages) requested on all {run.replicas} replicas at "
        f"once: **{run.fetches} fetch** ({verdict}; 1 expected), **{run.requests} requests** to ZIM "
        f"({run.requests / run.pages:.2f} per page), whole room stored after {run.wall_s:.2f} s, "
        f"{run.rate_limited_660300006} × {ROOM_RATE_LIMITED}."
    )


def limit_sentence(configs: Sequence[Config], settings: dict[str, Any]) -> str:
    runs = [run for config in configs for run in config.runs]
    over = [(run, window) for run in runs for window in run.over_limit_windows]
    limited = sum(run.rate_limited_660300006 for run in runs)
    slack = settings["pacer_slack_per_window_ms"]
    if not over and not limited:
        return (
            f"Limit: all {len(runs)} runs stayed at or under {settings['qps']:g} arrivals in every 1-s window, with "
            f"zero {ROOM_RATE_LIMITED} answers (the pacer leaves {slack:.0f} ms of slack a window)."
        )
    whole = (
        "every roster still came back whole"
        if all(run.answers_whole for run in runs)
        else "**and some rosters or answers were wrong: see the JSON's problems**"
    )
    lines = [
        f"Limit: **{len({id(run) for run, _ in over})} of {len(runs)} runs went over {settings['qps']:g} arrivals in "
        f"a 1-s window; {limited} × {ROOM_RATE_LIMITED} in all** (each retried after the pacer's cool-down; "
        f"{whole}). The pacer leaves {slack:.0f} ms of slack a window; sandbox, replicas and "
        f"stand-in share one event loop here, so a stall longer than that holds back a send past its slot:"
    ]
    lines += [f"- {run.replicas} replica(s): {describe_window(window)}" for run, window in over]
    return "\n".join(lines)


def markdown(configs: Sequence[Config], same: Run, machine: dict[str, Any], settings: dict[str, Any]) -> str:
    freeze = " gc.freeze() after set-up." if settings["gc_freeze"] else ""
    return "\n".join(
        [
            f"# {NAME}",
            "",
            f"{host_line(machine)}. Replicas share one local redis-server "
            f"(snapshots, pacer, single-flight); one in-process ZIM sandbox with {settings['latency_ms']:g} ms "
            f"injected latency; ZEGO_QPS={settings['qps']:g} (pacer headroom {settings['pacer_headroom']:g}); "
            f"{settings['page_size']} users a page. All `/roomusers` commands sent at once, round-robin over the "
            f"replicas; wall = first command to every whole room in the shared store. {settings['repeat']} run(s) "
            f"per replica count: wall, throughput, rate and requests are from the median run; arrivals in 1 s, "
            f"{ROOM_RATE_LIMITED} and stalls are the worst or total over all runs.{freeze} "
            f"Regenerate: `{COMMAND}`.",
            "",
            table(configs),
            "",
            limit_sentence(configs, settings),
            "",
            same_room_sentence(same),
            "",
        ]
    )


# ----- command line --------------------------------------------------------------------------------------


def replica_counts(text: str) -> tuple[int, ...]:
    values = number_list(text, whole_number, "whole numbers")
    if not values or any(not 1 <= value <= 16 for value in values):
        raise argparse.ArgumentTypeError("expected replica counts between 1 and 16")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replicas", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--replicas", type=replica_counts, default=DEFAULT_REPLICAS, help="replica counts (default 1,2,4)"
    )
    parser.add_argument("--rooms", type=int, default=DEFAULT_ROOMS, help="distinct rooms (default 16)")
    parser.add_argument("--users", type=int, default=DEFAULT_USERS, help="users per room (default 5000)")
    parser.add_argument("--latency-ms", type=float, default=DEFAULT_LATENCY_MS, help="sandbox latency (default 50)")
    parser.add_argument("--qps", type=float, default=DEFAULT_QPS, help="ZEGO_QPS, also the sandbox's limit (20)")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="runs per replica count (default 3)")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after set-up (a contrast run)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where to write the results")
    parser.add_argument("--quick", action="store_true", help="one run per replica count (for run_all --quick)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat = 1
    if not 1 <= args.repeat <= 10:
        parser.error("--repeat must be between 1 and 10")
    if not 1 <= args.rooms <= 100:
        parser.error("--rooms must be between 1 and 100")
    if not 1 <= args.users <= 100_000:
        parser.error("--users must be between 1 and 100000")
    if not 0 <= args.latency_ms <= 1000:
        parser.error("--latency-ms must be between 0 and 1000")
    if not 1 <= args.qps <= 1000 or args.qps != math.floor(args.qps):
        parser.error("--qps must be a whole number between 1 and 1000 (the sandbox's limit is an integer)")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    settings = {
        "replicas": list(args.replicas),
        "rooms": args.rooms,
        "users_per_room": args.users,
        "latency_ms": args.latency_ms,
        "qps": args.qps,
        "repeat": args.repeat,
        "page_size": MAX_LIMIT,
        "pacer_headroom": DEFAULT_HEADROOM,
        "quiet_gap_s": QUIET_GAP_S,
        "store_poll_s": POLL_S,
        "gc_freeze": args.gc_freeze,
        "pacer_slack_per_window_ms": (math.floor(args.qps) / (args.qps * DEFAULT_HEADROOM) - 1) * 1000,
    }
    try:
        measured = run_measurement(
            measure(
                args.replicas, args.rooms, args.users, args.latency_ms, args.qps, args.repeat, gc_freeze=args.gc_freeze
            )
        )
    except BenchmarkError as exc:
        log(f"FAILED: {exc}; no results written")
        return 1
    if measured is None:
        return STOPPED
    configs, same = measured
    # The machine and interpreter only: this benchmark's results have never recorded the load or the commit.
    machine = host_info()
    problems = [problem for config in configs for problem in config.problems]
    same_summary = same_room_summary(same)
    problems += same_summary["problems"]
    sections = {
        "settings": settings,
        "results": [config.summary() for config in configs],
        "same_room": same_summary,
        "throughput_spread": _spread([config.summary()["pages_per_s"] for config in configs]),
        "problems": problems,
    }
    report = markdown(configs, same, machine, settings)
    return publish(args.results_dir, NAME, COMMAND, machine, report, sections, problems)


def _spread(values: Sequence[float]) -> dict[str, float]:
    """Pages/s across replica counts: flat (max ÷ min near 1) is what one global limit should give."""
    return {
        "min_pages_per_s": min(values),
        "max_pages_per_s": max(values),
        "median_pages_per_s": statistics.median(values),
        "max_over_min": max(values) / min(values),
    }


if __name__ == "__main__":
    sys.exit(main())
