"""Time to first answer vs room size: from sending `/roomusers <room>` to the first answer after the ack.

For rooms of 100 / 1,000 / 10,000 / 50,000 / 100,000 users (the sandbox's `load-<N>` rooms) at an injected
ZIM RTT of 100 ms, through the whole product on loopback (real Bolt app over HTTP, Slack stand-in, sandbox in
its own process; see _stack.py): the clock starts just before the stand-in sends the signed command and stops
when `next_message()` hands over the first message after the ack (the app's answer, posted to the command's
response_url). A room of more than 500 users is answered as soon as ZIM's first page is in (its count and
first 20 users, "still loading"); a room of at most 500 users is complete in that one page.

Target: at most one ZIM round trip + 100 ms for any room size. "One ZIM round trip" is measured here, per
room, as the median wall time of a single first-page QueryRoomUserList from a ZimClient on a warm connection
(signing, HTTP, the injected RTT, decoding 500 users). The verdict uses the slowest sample.

Every sample starts cold: nothing cached and no fetch under way. After each answer the rest of the fetch is
cancelled (`Flight.task`), any stored snapshot is discarded, and a quiet gap longer than ZIM's one-second
window passes before the next sample. Samples of different sizes are interleaved. Every answer is checked:
its first 20 user IDs are the room's first 20 in join order, and a big room's answer says "still loading".

Run: `python -m benchmarks.first_answer [--sizes 100,1000,...] [--rtt 100] [--repeat 7] [--quick]`. Writes
benchmarks/results/first_answer.json and .md. Exit status 1 if an answer was wrong or missing.
"""

from __future__ import annotations

import argparse
import asyncio
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
    distribution_ms,
    int_list,
    log,
    machine_info,
    machine_line,
    markdown_table,
    publish,
    run_measurement,
)
from benchmarks._sandbox import SandboxProcess, stop_on_signals
from benchmarks._stack import (
    QUIET_GAP_S,
    all_text,
    app_stack,
    cancel_fetches,
    expected_ids,
    listed_user_ids,
    load_room,
    log_slack_warnings,
    zim_round_trips,
)
from bot.dev.local_stack import LocalStack
from bot.state.snapshots import MemorySnapshotStore
from bot.zim.wire import MAX_LIMIT

NAME = "first_answer"
COMMAND = ".venv/bin/python -m benchmarks.first_answer"
DEFAULT_SIZES = (100, 1_000, 10_000, 50_000, 100_000)
QUICK_SIZES = (100, 10_000, 100_000)
DEFAULT_RTT_MS = 100.0
DEFAULT_REPEAT = 7
QUICK_REPEAT = 3
RTT_SAMPLES = 7
TARGET_EXTRA_MS = 100.0
ANSWER_TIMEOUT_S = 30.0


@dataclass
class Sample:
    first_answer_s: float  # send → first message after the ack, as next_message() hands it over
    ack_s: float  # the stand-in's AppResponse.elapsed for the command
    partial: bool  # the answer said "still loading"
    zim_requests_at_answer: int  # requests the sandbox had received shortly after the answer arrived
    problems: list[str] = field(default_factory=list)


@dataclass
class Size:
    users: int
    round_trips_s: list[float] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.users / MAX_LIMIT))

    @property
    def round_trip_ms(self) -> float:
        return statistics.median(self.round_trips_s) * 1000

    @property
    def target_ms(self) -> float:
        return self.round_trip_ms + TARGET_EXTRA_MS

    @property
    def answers_ms(self) -> list[float]:
        return [sample.first_answer_s * 1000 for sample in self.samples]

    @property
    def problems(self) -> list[str]:
        return [problem for sample in self.samples for problem in sample.problems]

    def verdict(self) -> str:
        return "PASS" if not self.problems and max(self.answers_ms) <= self.target_ms else "MISS"

    def summary(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "pages": self.pages,
            "zim_round_trip_ms": self.round_trip_ms,
            "zim_round_trips_ms": [value * 1000 for value in self.round_trips_s],
            "target_ms": self.target_ms,
            "first_answer": distribution_ms([sample.first_answer_s for sample in self.samples]),
            "ack": distribution_ms([sample.ack_s for sample in self.samples]),
            "partial": all(sample.partial for sample in self.samples),
            "zim_requests_at_answer": max(sample.zim_requests_at_answer for sample in self.samples),
            "verdict": self.verdict(),
            "problems": self.problems,
            "samples": [asdict(sample) for sample in self.samples],
        }


async def one_sample(sandbox: SandboxProcess, local: LocalStack, store: MemorySnapshotStore, users: int) -> Sample:
    room_id = load_room(users)
    slack = local.slack
    problems: list[str] = []
    started = time.perf_counter()
    response = await slack.send_command(room_id)
    ack = await slack.next_message(timeout=ANSWER_TIMEOUT_S)
    answer = await slack.next_message(timeout=ANSWER_TIMEOUT_S)
    first_answer = time.perf_counter() - started
    requests = int((await sandbox.stats())["requests"])

    # Stop the rest of the fetch and forget any snapshot, so the next sample starts cold.
    await cancel_fetches(local, [room_id])
    stack = local.rosters.pick("")
    assert stack is not None
    await store.discard(stack.snapshots.key(room_id))

    if not response.acked_in_time:
        problems.append(f"{room_id}: ack HTTP {response.status} after {response.elapsed:.3f} s")
    if ack.origin != "ack":
        problems.append(f"{room_id}: the first message was not the ack but {ack.origin}")
    text = all_text(answer)
    partial = "still loading" in text
    if partial != (users > MAX_LIMIT):
        problems.append(f"{room_id}: answer {'says' if partial else 'does not say'} 'still loading'")
    if f"*{users:,} users* in this room" not in text:
        problems.append(f"{room_id}: the answer does not give the room's count")
    if listed_user_ids(answer) != expected_ids(users):
        problems.append(f"{room_id}: the answer does not list the room's first 20 users")
    return Sample(first_answer, response.elapsed, partial, requests, problems)


async def measure(sizes: Sequence[int], rtt_ms: float, repeat: int) -> list[Size]:
    stop_on_signals()
    results = [Size(users) for users in sizes]
    store = MemorySnapshotStore()
    rooms = [load_room(users) for users in sizes]
    async with app_stack(latency_ms=rtt_ms, rooms=rooms, store=store) as (sandbox, local):
        log(f"sandbox pid {sandbox.pid} at {sandbox.base_url}, {rtt_ms:g} ms RTT; app at {local.app_url}")
        for size in results:
            size.round_trips_s = await zim_round_trips(sandbox, load_room(size.users), RTT_SAMPLES)
            log(f"{size.users:>7,} users: one ZIM round trip {size.round_trip_ms:.1f} ms (median of {RTT_SAMPLES})")
        # One unrecorded command first: the app's first request pays for imports and connection set-up.
        await one_sample(sandbox, local, store, sizes[0])
        for attempt in range(1, repeat + 1):
            for size in results:
                await asyncio.sleep(QUIET_GAP_S)
                await sandbox.reset_stats()
                sample = await one_sample(sandbox, local, store, size.users)
                size.samples.append(sample)
                log(
                    f"{size.users:>7,} users #{attempt}: first answer {sample.first_answer_s * 1000:6.1f} ms "
                    f"(ack {sample.ack_s * 1000:5.1f} ms, {sample.zim_requests_at_answer} ZIM requests)"
                    + "".join(f"  PROBLEM: {problem}" for problem in sample.problems)
                )
        log_slack_warnings(local.slack)
    return results


HEADERS = (
    "users",
    "pages",
    "one ZIM round trip ms",
    "target ms (round trip + 100)",
    "first answer p50 ms",
    "min ms",
    "max ms",
    "ack p50 ms",
    "answer",
    "ZIM requests by then",
    "verdict (max ≤ target)",
)


def table(results: Sequence[Size]) -> str:
    rows = []
    for size in results:
        s = size.summary()
        rows.append(
            (
                f"{size.users:,}",
                str(size.pages),
                f"{size.round_trip_ms:.1f}",
                f"{size.target_ms:.1f}",
                f"{s['first_answer']['p50_ms']:.1f}",
                f"{s['first_answer']['min_ms']:.1f}",
                f"{s['first_answer']['max_ms']:.1f}",
                f"{s['ack']['p50_ms']:.1f}",
                "count + page 1, still loading" if s["partial"] else "complete",
                f"≤ {s['zim_requests_at_answer']}",
                f"**{size.verdict()}**",
            )
        )
    align = ["---:"] * len(HEADERS)
    align[HEADERS.index("answer")] = ":---"
    align[-1] = ":---:"
    return markdown_table(HEADERS, rows, align)


def markdown(results: Sequence[Size], machine: dict[str, Any], settings: dict[str, Any]) -> str:
    worst = max(results, key=lambda size: max(size.answers_ms) - size.target_ms)
    verdict = "PASS" if all(size.verdict() == "PASS" for size in results) else "MISS"
    return "\n".join(
        [
            f"# {NAME}",
            "",
            f"{machine_line(machine)}; injected RTT {settings['rtt_ms']:g} ms, {settings['repeat']} cold samples "
            f"per size. Regenerate: `{COMMAND}`.",
            "",
            table(results),
            "",
            f"Target (first answer ≤ one ZIM round trip + {TARGET_EXTRA_MS:g} ms, any room size): **{verdict}**; "
            f"closest: {worst.users:,} users, slowest {max(worst.answers_ms):.1f} ms against {worst.target_ms:.1f} ms.",
            "",
        ]
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int_list, default=DEFAULT_SIZES, help="room sizes")
    parser.add_argument("--rtt", type=float, default=DEFAULT_RTT_MS, help="injected RTT in ms (default 100)")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="cold samples per size (default 7)")
    parser.add_argument("--quick", action="store_true", help="100 / 10,000 / 100,000 users, 3 samples each")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.repeat <= 100 or not 0 <= args.rtt <= 2000:
        parser.error("--repeat must be 1-100 and --rtt 0-2000")
    sizes, repeat = (QUICK_SIZES, QUICK_REPEAT) if args.quick else (args.sizes, args.repeat)
    settings = {"sizes": list(sizes), "rtt_ms": args.rtt, "repeat": repeat, "quick": args.quick}
    results = run_measurement(measure(sizes, args.rtt, repeat))
    if results is None:
        return STOPPED
    machine = machine_info()
    sections = {
        "settings": settings,
        "target": {"extra_ms": TARGET_EXTRA_MS, "rule": "max first answer <= median ZIM round trip + extra_ms"},
        "results": [size.summary() for size in results],
    }
    problems = [problem for size in results for problem in size.problems]
    return publish(args.results_dir, NAME, COMMAND, machine, markdown(results, machine, settings), sections, problems)


if __name__ == "__main__":
    sys.exit(main())
