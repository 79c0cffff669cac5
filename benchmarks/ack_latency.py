"""Ack latency of `/roomusers` with 1, 20 and 50 commands arriving at once, while fetches are under way.

Each round sends N signed `/roomusers <room>` commands at once (`asyncio.gather` of the Slack stand-in's
`send_command`) and records each one's `AppResponse.elapsed`: from sending the request to reading the app's
HTTP answer, which is what Slack's 3-second deadline applies to. The round then waits until every command's
ack message and first answer have arrived before the next one starts. Rounds repeat until each N has at
least `--samples` acks (default 240). The ZIM sandbox runs in its own process at 100 ms RTT (see _stack.py).

The commands cycle through rooms of 100,000 / 10,000 / 2,000 / 500 / 100 users, and the app keeps a snapshot
for only 5 s (instead of 300 s), so a burst meets every kind of work: answers from a snapshot (render + post),
joins of a fetch under way, and new fetches; the 100,000-user room takes about 10 s to read, so a fetch of it
is in flight for most of the run.

The app runs two ways:

* in its own process, as production runs it (`python -m bot serve --http`, see _app_process.py), with the
  stand-in in the benchmark's process: the app's event loop does only the app's work;
* in the benchmark's process (`bot.dev.local_stack`, as the end-to-end tests and `make demo` run it): the app and
  the stand-in share one event loop, so the stand-in's work (sending the commands, reading the acks, receiving
  the answers) delays the app's acks too.

Also recorded: generation-2 garbage collections (a full collection stops the event loop that acks): timed with
gc.callbacks in this process, counted from the app's /metrics in its own process. Two more rows put the numbers
in context: the largest burst again in process after `gc.freeze()` (a what-if for a suggested fix), and the
same bursts sent by a fresh stand-in to a bare aiohttp handler that answers at once (no Bolt, no app: what the
stand-in, loopback HTTP and aiohttp cost by themselves).

Target: p99 ≤ 50 ms at 50 concurrent commands.

Run: `python -m benchmarks.ack_latency [--levels 1,20,50] [--samples 240] [--quick]`. Writes
benchmarks/results/ack_latency.json and .md. Exit status 1 if a command was not acked (HTTP 200 within 3 s)
or an answer never came.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import REGISTRY

from benchmarks._app_process import AppProcess
from benchmarks._common import (
    RESULTS_DIR,
    STOPPED,
    distribution_ms,
    full_collection_ms,
    int_list,
    log,
    machine_info,
    machine_line,
    markdown_table,
    publish,
    run_measurement,
)
from benchmarks._sandbox import SandboxProcess, clean_env, run_python, stop_on_signals
from benchmarks._stack import QUIET_GAP_S, GcPauses, app_stack, load_room, log_slack_warnings, warm_sandbox
from bot.dev.local_stack import LocalStack
from bot.dev.slack_standin import SlackStandIn
from bot.state.snapshots import MemorySnapshotStore

NAME = "ack_latency"
COMMAND = ".venv/bin/python -m benchmarks.ack_latency"
DEFAULT_LEVELS = (1, 20, 50)
DEFAULT_SAMPLES = 240
QUICK_SAMPLES = 100
RTT_MS = 100.0
ROOM_SIZES = (100_000, 10_000, 2_000, 500, 100)
ROOMS = tuple(load_room(users) for users in ROOM_SIZES)
SNAPSHOT_TTL_S = 5.0
ANSWER_TIMEOUT_S = 30.0
ROUND_GAP_S = 0.05
TARGET_LEVEL = 50
TARGET_P99_MS = 50.0

OWN_PROCESS = "app in its own process"
IN_PROCESS = "app in the benchmark's process"
FROZEN = "app in the benchmark's process, after gc.freeze()"
BARE = "bare aiohttp handler (no Bolt, no app)"
APP_CASES = (OWN_PROCESS, IN_PROCESS)


@dataclass
class Counters:
    hits: float = 0.0
    misses: float = 0.0
    gen2: float | None = None  # gen-2 collections, when only a count is available (app in its own process)


@dataclass
class Probe:
    """How to look inside the app under test: fetches in flight (if visible) and its counters."""

    in_flight: Callable[[], int | None]
    counters: Callable[[], Awaitable[Counters]]


@dataclass
class Level:
    case: str
    concurrency: int
    elapsed_s: list[float] = field(default_factory=list)
    burst_s: list[float] = field(default_factory=list)  # first send → last ack read, per round
    in_flight_at_start: list[int | None] = field(default_factory=list)
    gc2_ms_per_round: list[float] | None = None  # gen-2 collections that began during each burst (in process)
    gc2_all_ms: list[float] | None = None  # every gen-2 collection during the level (in process)
    gc2_count: float | None = None
    rounds: int = 0
    snapshot_hits: float = 0.0
    snapshot_misses: float = 0.0
    zim_requests: int = 0
    wall_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def stats(self) -> dict[str, Any]:
        return distribution_ms(self.elapsed_s)

    def p99_without_gc(self) -> float | None:
        if self.gc2_ms_per_round is None:
            return None
        n = self.concurrency
        per_round = self.gc2_ms_per_round
        clean = [value for index, value in enumerate(self.elapsed_s) if not per_round[index // n]]
        return distribution_ms(clean)["p99_ms"] if clean else None

    def is_target(self) -> bool:
        return self.concurrency == TARGET_LEVEL and self.case in APP_CASES

    def verdict(self) -> str:
        return "PASS" if not self.problems and self.stats["p99_ms"] <= TARGET_P99_MS else "MISS"

    def summary(self) -> dict[str, Any]:
        in_flight = [value for value in self.in_flight_at_start if value is not None]
        return {
            "case": self.case,
            "concurrency": self.concurrency,
            "rounds": self.rounds,
            "ack": self.stats,
            "burst": distribution_ms(self.burst_s),
            "rounds_with_a_fetch_in_flight": sum(1 for value in in_flight if value) if in_flight else None,
            "gen2_gc": {
                "collections": len(self.gc2_all_ms) if self.gc2_all_ms is not None else self.gc2_count,
                "max_ms": max(self.gc2_all_ms, default=0.0) if self.gc2_all_ms is not None else None,
                "rounds_with_one_in_burst": (
                    sum(1 for value in self.gc2_ms_per_round if value) if self.gc2_ms_per_round is not None else None
                ),
                "ack_p99_ms_in_rounds_without": self.p99_without_gc(),
                "all_ms": self.gc2_all_ms,
            },
            "snapshot_hits": self.snapshot_hits,
            "snapshot_misses": self.snapshot_misses,
            "zim_requests": self.zim_requests,
            "wall_s": self.wall_s,
            "target": self.verdict() if self.is_target() else None,
            "problems": self.problems,
            "elapsed_ms": [value * 1000 for value in self.elapsed_s],
        }


# ----- one level ---------------------------------------------------------------------------------------


async def drain(slack: SlackStandIn, count: int, level: Level) -> None:
    """Take the acks' messages and the first answers of the `count` commands just sent."""
    acks = answers = 0
    try:
        while acks < count or answers < count:
            message = await slack.next_message(timeout=ANSWER_TIMEOUT_S)
            if message.origin == "ack":
                acks += 1
            else:
                answers += 1
    except TimeoutError:
        level.problems.append(f"N={level.concurrency}: only {acks} ack messages and {answers} answers of {count}")


async def run_level(
    case: str,
    slack: SlackStandIn,
    sandbox: SandboxProcess,
    probe: Probe,
    gc_pauses: GcPauses | None,
    concurrency: int,
    samples: int,
    offset: int,
) -> Level:
    level = Level(case, concurrency)
    if gc_pauses is not None:
        level.gc2_ms_per_round = []
    await sandbox.reset_stats()
    before = await probe.counters()
    started = time.perf_counter()
    for round_index in range(math.ceil(samples / concurrency)):
        level.in_flight_at_start.append(probe.in_flight())
        first = offset + round_index * concurrency
        texts = [ROOMS[(first + i) % len(ROOMS)] for i in range(concurrency)]
        burst_started = time.perf_counter()
        responses = await asyncio.gather(*(slack.send_command(text) for text in texts))
        burst_ended = time.perf_counter()
        level.burst_s.append(burst_ended - burst_started)
        if gc_pauses is not None and level.gc2_ms_per_round is not None:
            level.gc2_ms_per_round.append(sum(gc_pauses.between(burst_started, burst_ended)) * 1000)
        for text, response in zip(texts, responses, strict=True):
            level.elapsed_s.append(response.elapsed)
            if not response.acked_in_time:
                level.problems.append(f"{text}: HTTP {response.status} after {response.elapsed:.3f} s")
        await drain(slack, concurrency, level)
        level.rounds += 1
        await asyncio.sleep(ROUND_GAP_S)
    level.wall_s = time.perf_counter() - started
    after = await probe.counters()
    level.snapshot_hits, level.snapshot_misses = after.hits - before.hits, after.misses - before.misses
    if gc_pauses is not None:
        level.gc2_all_ms = [value * 1000 for value in gc_pauses.between(started, started + level.wall_s)]
    elif after.gen2 is not None and before.gen2 is not None:
        level.gc2_count = after.gen2 - before.gen2
    level.zim_requests = int((await sandbox.stats())["requests"])
    stats = level.stats
    log(
        f"{case}, N={concurrency}: {stats['n']} acks in {level.rounds} rounds ({level.wall_s:.1f} s): "
        f"p50 {stats['p50_ms']:.1f} ms, p99 {stats['p99_ms']:.1f} ms, max {stats['max_ms']:.1f} ms; "
        f"snapshots {level.snapshot_hits:g} hits / {level.snapshot_misses:g} misses; {level.zim_requests} ZIM "
        f"requests; gen-2 GCs {level.gc2_all_ms if level.gc2_all_ms is not None else level.gc2_count}"
        + "".join(f"  PROBLEM: {problem}" for problem in level.problems[:3])
    )
    return level


async def run_levels(
    case: str,
    slack: SlackStandIn,
    sandbox: SandboxProcess,
    probe: Probe,
    gc_pauses: GcPauses | None,
    levels: Sequence[int],
    samples: int,
) -> tuple[list[Level], int]:
    """A warm-up level (not recorded), then each of `levels` after a quiet gap, the rooms cycling on from one
    level to the next; the levels and the offset in the room cycle the next level would start at."""
    await run_level(case, slack, sandbox, probe, gc_pauses, 5, 10, 0)  # warm-up, not recorded
    results = []
    offset = 0
    for concurrency in levels:
        await asyncio.sleep(QUIET_GAP_S)
        level = await run_level(case, slack, sandbox, probe, gc_pauses, concurrency, samples, offset)
        offset += len(level.elapsed_s)
        results.append(level)
    return results, offset


# ----- the app in its own process ------------------------------------------------------------------------


async def measure_own_process(levels: Sequence[int], samples: int) -> list[Level]:
    async with warm_sandbox(RTT_MS, ROOMS) as sandbox:
        bot_token, signing_secret = f"xoxb-local-{secrets.token_hex(8)}", secrets.token_hex(16)
        async with SlackStandIn(signing_secret=signing_secret, bot_token=bot_token) as slack:
            async with AppProcess(
                sandbox=sandbox,
                slack_api_base_url=slack.api_base_url,
                bot_token=bot_token,
                signing_secret=signing_secret,
                snapshot_ttl_s=SNAPSHOT_TTL_S,
            ) as app:
                slack.app_url = app.events_url
                log(f"{OWN_PROCESS}: pid {app.pid} at {app.events_url}; sandbox pid {sandbox.pid}")

                async def counters() -> Counters:
                    metrics = await app.metrics()
                    return Counters(
                        hits=metrics.get("roomusers_snapshot_lookups_total{result=hit}", 0.0),
                        misses=metrics.get("roomusers_snapshot_lookups_total{result=miss}", 0.0),
                        gen2=metrics.get("python_gc_collections_total{generation=2}"),
                    )

                probe = Probe(in_flight=lambda: None, counters=counters)
                results, _ = await run_levels(OWN_PROCESS, slack, sandbox, probe, None, levels, samples)
            log_slack_warnings(slack)
    return results


# ----- the app in this process ---------------------------------------------------------------------------


def lookups(result: str) -> float:
    return REGISTRY.get_sample_value("roomusers_snapshot_lookups_total", {"result": result}) or 0.0


async def measure_in_process(levels: Sequence[int], samples: int) -> tuple[list[Level], dict[str, float]]:
    store = MemorySnapshotStore(ttl=SNAPSHOT_TTL_S)
    with GcPauses() as gc_pauses:
        async with app_stack(latency_ms=RTT_MS, rooms=ROOMS, store=store) as (sandbox, local):
            log(f"{IN_PROCESS}: app at {local.app_url}; sandbox pid {sandbox.pid}")
            probe = in_process_probe(local)
            slack = local.slack
            results, offset = await run_levels(IN_PROCESS, slack, sandbox, probe, gc_pauses, levels, samples)
            # What-if: the largest burst again after gc.freeze(), which moves every object alive now out of the
            # collector's reach, so a full collection no longer walks the start-up heap.
            await asyncio.sleep(QUIET_GAP_S)
            gc.freeze()
            try:
                results.append(await run_level(FROZEN, slack, sandbox, probe, gc_pauses, max(levels), samples, offset))
            finally:
                gc.unfreeze()
            # What a full collection costs with the app up (and probably a big fetch in flight).
            process_gc = {"tracked_objects": len(gc.get_objects()), "full_collection_ms": full_collection_ms(3)}
            tracked, full_ms = process_gc["tracked_objects"], process_gc["full_collection_ms"]
            log(f"{tracked:,} GC-tracked objects; gc.collect() {full_ms:.1f} ms")
            log_slack_warnings(slack)
    return results, process_gc


def in_process_probe(local: LocalStack) -> Probe:
    stack = local.rosters.pick("")
    assert stack is not None

    async def counters() -> Counters:
        return Counters(hits=lookups("hit"), misses=lookups("miss"))

    return Probe(
        in_flight=lambda: sum(1 for room in ROOMS if stack.snapshots.read_under_way(room) is not None),
        counters=counters,
    )


# ----- baseline: the stand-in against a bare handler -----------------------------------------------------------


async def bare_level(concurrency: int, samples: int) -> Level:
    """The same bursts from a fresh Slack stand-in to an aiohttp handler that answers 200 at once: what the
    stand-in, loopback HTTP and aiohttp cost by themselves, without Bolt or the app."""

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="")

    server = web.Application()
    server.router.add_post("/slack/events", ok)
    runner = web.AppRunner(server, access_log=None)
    await runner.setup()
    level = Level(BARE, concurrency)
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
        async with SlackStandIn(signing_secret=secrets.token_hex(16), bot_token="xoxb-bare", app_url=url) as slack:
            started = time.perf_counter()
            for _ in range(math.ceil(samples / concurrency)):
                responses = await asyncio.gather(*(slack.send_command(ROOMS[-1]) for _ in range(concurrency)))
                level.elapsed_s.extend(response.elapsed for response in responses)
                level.rounds += 1
                await asyncio.sleep(ROUND_GAP_S)
            level.wall_s = time.perf_counter() - started
    finally:
        await runner.cleanup()
    log(f"{BARE}, N={concurrency}: p50 {level.stats['p50_ms']:.1f} ms, p99 {level.stats['p99_ms']:.1f} ms")
    return level


async def serve_like_gc() -> dict[str, float] | None:
    """benchmarks._gc_probe in a fresh interpreter: a full collection in a process composed like `serve`."""
    try:
        returncode, stdout, stderr = await run_python("-m", "benchmarks._gc_probe", env=clean_env(), time_limit=60)
    except TimeoutError:
        return None
    if returncode != 0:
        log(f"benchmarks._gc_probe failed: {stderr.decode(errors='replace')[-300:]}")
        return None
    result: dict[str, float] = json.loads(stdout)
    tracked, full_ms = result["tracked_objects"], result["full_collection_ms"]
    log(f"serve-like process: {tracked:,} GC-tracked objects, gc.collect() {full_ms:.1f} ms")
    return result


async def measure(levels: Sequence[int], samples: int) -> tuple[list[Level], dict[str, Any]]:
    stop_on_signals()
    serve_gc = await serve_like_gc()
    results = await measure_own_process(levels, samples)
    await asyncio.sleep(QUIET_GAP_S)
    in_process, process_gc = await measure_in_process(levels, samples)
    results += in_process
    for concurrency in levels:
        results.append(await bare_level(concurrency, samples))
    return results, {"benchmark_process": process_gc, "serve_like_process": serve_gc}


# ----- reporting --------------------------------------------------------------------------------------------

HEADERS = (
    "server",
    "N at once",
    "acks",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "min ms",
    "rounds with a fetch in flight",
    "snapshot hits / misses",
    "ZIM requests",
    "gen-2 GCs (max ms) / in a burst",
    "p99 ms, bursts without a GC",
    "target",
)


def table(results: Sequence[Level]) -> str:
    rows = []
    for level in results:
        s = level.summary()
        ack, gen2 = s["ack"], s["gen2_gc"]
        timings = (
            f"{ack['p50_ms']:.1f}",
            f"{ack['p90_ms']:.1f}",
            f"{ack['p99_ms']:.1f}",
            f"{ack['max_ms']:.1f}",
            f"{ack['min_ms']:.1f}",
        )
        if level.case == BARE:
            rows.append((f"_{level.case}_", str(level.concurrency), str(ack["n"]), *timings, *[""] * 6))
            continue
        if gen2["max_ms"] is not None:
            gcs = f"{gen2['collections']} ({gen2['max_ms']:.1f}) / {gen2['rounds_with_one_in_burst']}"
        else:
            gcs = "n/a" if gen2["collections"] is None else f"{gen2['collections']:g} (not timed)"
        in_flight = s["rounds_with_a_fetch_in_flight"]
        clean = level.p99_without_gc()
        rows.append(
            (
                level.case,
                str(level.concurrency),
                str(ack["n"]),
                *timings,
                "n/a" if in_flight is None else f"{in_flight} of {level.rounds}",
                f"{level.snapshot_hits:g} / {level.snapshot_misses:g}",
                str(level.zim_requests),
                gcs,
                "n/a" if clean is None else f"{clean:.1f}",
                f"**{level.verdict()}**" if level.is_target() else "",
            )
        )
    return markdown_table(HEADERS, rows, [":---"] + ["---:"] * (len(HEADERS) - 2) + [":---:"])


def target_sentences(results: Sequence[Level]) -> list[str]:
    goal = f"ack p99 ≤ {TARGET_P99_MS:g} ms at {TARGET_LEVEL} concurrent commands"
    sentences = []
    for level in results:
        if level.is_target():
            p99 = level.stats["p99_ms"]
            sentences.append(
                f"Target ({goal}), {level.case}: **{level.verdict()}**, p99 {p99:.1f} ms "
                f"({TARGET_P99_MS - p99:+.1f} ms to spare)."
            )
    return sentences or [f"Target ({goal}): NOT MEASURED."]


def gc_sentences(process_gc: dict[str, Any]) -> list[str]:
    own, serve = process_gc["benchmark_process"], process_gc["serve_like_process"]
    lines = [
        f"A full collection (gc.collect()) of the benchmark's process with the app in it: "
        f"{own['full_collection_ms']:.1f} ms, {own['tracked_objects']:,} GC-tracked objects.",
        "",
    ]
    if serve is not None:
        lines += [
            f"A full collection in a fresh process composed like `python -m bot serve --http`, before any request "
            f"(benchmarks/_gc_probe.py): {serve['full_collection_ms']:.1f} ms, {serve['tracked_objects']:,} "
            f"GC-tracked objects; after gc.freeze(): {serve['full_collection_ms_after_freeze']:.2f} ms.",
            "",
        ]
    return lines


def markdown(
    results: Sequence[Level], machine: dict[str, Any], settings: dict[str, Any], process_gc: dict[str, Any]
) -> str:
    return "\n".join(
        [
            f"# {NAME}",
            "",
            f"{machine_line(machine)}; ZIM RTT {RTT_MS:g} ms; rooms of "
            f"{' / '.join(f'{users:,}' for users in ROOM_SIZES)} users in turn; snapshot TTL {SNAPSHOT_TTL_S:g} s; "
            f"at least {settings['samples']} acks per row. Regenerate: `{COMMAND}`.",
            "",
            table(results),
            "",
            *[line for sentence in target_sentences(results) for line in (sentence, "")],
            *gc_sentences(process_gc),
        ]
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__.split("\n")[0])
    parser.add_argument("--levels", type=int_list, default=DEFAULT_LEVELS, help="concurrency levels (1,20,50)")
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="acks per level, at least (240)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SAMPLES} acks per level")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    samples = QUICK_SAMPLES if args.quick else args.samples
    if not 1 <= samples <= 5000 or max(args.levels) > 200:
        parser.error("--samples must be 1-5000 and every level at most 200")
    settings = {
        "levels": list(args.levels),
        "samples": samples,
        "rtt_ms": RTT_MS,
        "room_sizes": list(ROOM_SIZES),
        "snapshot_ttl_s": SNAPSHOT_TTL_S,
        "quick": args.quick,
    }
    measured = run_measurement(measure(args.levels, samples))
    if measured is None:
        return STOPPED
    results, process_gc = measured
    machine = machine_info()
    sections = {
        "settings": settings,
        "target": {
            "concurrency": TARGET_LEVEL,
            "p99_ms": TARGET_P99_MS,
            "verdicts": {level.case: level.verdict() for level in results if level.is_target()},
            "measured_p99_ms": {level.case: level.stats["p99_ms"] for level in results if level.is_target()},
        },
        "process_gc": process_gc,
        "results": [level.summary() for level in results],
    }
    problems = [problem for level in results for problem in level.problems]
    report = markdown(results, machine, settings, process_gc)
    return publish(args.results_dir, NAME, COMMAND, machine, report, sections, problems)


if __name__ == "__main__":
    sys.exit(main())
