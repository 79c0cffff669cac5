"""How much of the pacer's headroom real sends use: the margin that `DEFAULT_HEADROOM` must cover.

ZIM refuses an arrival beyond ZEGO_QPS in any one-second window. The pacer keeps any ZEGO_QPS + 1 consecutive
send slots at least `window` = ZEGO_QPS / (ZEGO_QPS × headroom) seconds apart; what arrives at ZIM is the slot
plus whatever delayed the send (a collector pause, the event loop, the network). This benchmark reads a
`load-<N>` room (cold, in process, fresh client, the sandbox in its own process at an injected 100 ms RTT) and
reports, per read, the shortest span of any ZEGO_QPS + 1 consecutive arrivals at the sandbox against the
window (the margin used is the difference), the most arrivals in one second, 660300006 answers, and the
longest garbage-collector pause in this process. Reads run first without, then with `gc.freeze()` (what
`serve` and `query` do after start-up, bot/heap.py).

Run: `python -m benchmarks.pacer_margin [--users 100000] [--runs 3]`. Results: benchmarks/results/pacer_margin.md
and .json. Exit status 1 if any read saw more than ZEGO_QPS arrivals in a second or a 660300006 answer.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from typing import Any

from benchmarks._common import RESULTS_DIR, log, machine_info, machine_line, markdown_table, publish
from benchmarks._sandbox import SandboxProcess
from benchmarks._stack import QUIET_GAP_S, load_room, zim_client
from bot.zim import fetch_roster, new_http_client
from bot.zim.codes import ROOM_RATE_LIMITED
from bot.zim.pacing import DEFAULT_HEADROOM

QPS = 20
RTT_MS = 100


class PauseClock:
    """The longest garbage-collector pause since `reset` (gc.callbacks)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.longest = max(self.longest, time.perf_counter() - self._started)

    def reset(self) -> None:
        self.longest = 0.0


async def one_read(sandbox: SandboxProcess, room: str, pauses: PauseClock) -> dict[str, Any]:
    await asyncio.sleep(QUIET_GAP_S)
    await sandbox.reset_stats()
    pauses.reset()
    async with new_http_client() as http:
        started = time.perf_counter()
        roster = await fetch_roster(zim_client(sandbox, http, QPS), room)
        wall = time.perf_counter() - started
    stats = await sandbox.stats_with_arrivals()
    arrivals = stats["arrivals"]
    spans = [arrivals[k + QPS] - arrivals[k] for k in range(len(arrivals) - QPS)]
    return {
        "seconds": wall,
        "users": len(roster.users),
        "requests": len(arrivals),
        "shortest_span_ms": min(spans) * 1000 if spans else float("nan"),
        "max_in_1s": stats["max_in_window_1s"],
        "rate_limited": stats["by_code"].get(str(ROOM_RATE_LIMITED), 0),
        "longest_gc_pause_ms": pauses.longest * 1000,
    }


async def measure(users: int, runs: int) -> list[dict[str, Any]]:
    pauses = PauseClock()
    gc.callbacks.append(pauses)
    results = []
    async with SandboxProcess(latency_ms=RTT_MS) as sandbox:
        room = load_room(users)
        async with new_http_client() as http:
            await fetch_roster(zim_client(sandbox, http, QPS), room)  # warm-up: the room is made
        for frozen in (False, True):
            if frozen:
                gc.collect()
                gc.freeze()
            for run in range(runs):
                result = {"heap": "frozen" if frozen else "not frozen", **await one_read(sandbox, room, pauses)}
                log(f"{result['heap']}, read {run + 1}: {result}")
                results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    machine = machine_info()
    results = asyncio.run(measure(args.users, args.runs))
    window_ms = QPS / (QPS * DEFAULT_HEADROOM) * 1000
    rows = [
        [
            r["heap"],
            f"{r['seconds']:.2f}",
            str(r["requests"]),
            f"{r['shortest_span_ms']:.1f}",
            f"{window_ms - r['shortest_span_ms']:.1f}",
            f"{window_ms - 1000:.1f}",
            str(r["max_in_1s"]),
            str(r["rate_limited"]),
            f"{r['longest_gc_pause_ms']:.1f}",
        ]
        for r in results
    ]
    headers = ["heap", "read s", "requests", f"shortest span of {QPS + 1} arrivals ms", "margin used ms"]
    headers += ["margin ms (headroom)", "max arrivals in 1 s", "660300006", "longest GC pause ms"]
    command = f"python -m benchmarks.pacer_margin --users {args.users} --runs {args.runs}"
    report = "\n".join(
        [
            f"# Pacer margin: {args.users:,} users at {RTT_MS} ms RTT, {QPS} QPS, headroom {DEFAULT_HEADROOM}",
            "",
            f"`{command}`; {machine_line(machine)}.",
            "",
            markdown_table(headers, rows, ["---", *["---:"] * (len(headers) - 1)]),
        ]
    )
    problems = [f"{r['heap']}: {r['max_in_1s']} arrivals in one second" for r in results if r["max_in_1s"] > QPS]
    problems += [f"{r['heap']}: {r['rate_limited']} x 660300006" for r in results if r["rate_limited"]]
    return publish(RESULTS_DIR, "pacer_margin", command, machine, report, {"runs": results}, problems)


if __name__ == "__main__":
    sys.exit(main())
