"""Commands while 200 watches poll: a command's first answer, and what ZIM sees in any one second.

200 watches on 200 rooms (150 count conditions, 50 `--when-joins`, i.e. QueryRoomMembers), set through the real
command path, poll at a short interval (2 s) so the background share (`ROOMUSERS_WATCH_QPS_SHARE`, 0.25 of
ZEGO_QPS 20) is saturated and the polls stretch. Meanwhile `/roomusers cmd-<i>` commands run one after another
for rooms never read before (no cache). Everything runs on loopback in one process: the real Bolt app over HTTP,
the strict Slack stand-in and the ZIM sandbox with an injected round trip (`--rtt`, default 50 ms).

Measured: each command's first answer (send → the first message after the ack), against one ZIM round trip
(the median of warm single first-page requests at the same RTT) + 150 ms; and the sandbox's arrivals: the most
in any sliding one-second window (must stay ≤ ZEGO_QPS) and how many requests ZIM refused as over its rate.

Run: `python -m benchmarks.watch_load [--watches 200] [--commands 30] [--rtt 50] [--interval 2] [--quick]`. Writes
benchmarks/results/watch_load.json and .md. Exit status 1 if a target is missed or an answer is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any

from prometheus_client import REGISTRY

from benchmarks._common import RESULTS_DIR, distribution_ms, log, machine_info, machine_line, markdown_table, publish
from bot.dev.local_stack import local_stack
from bot.dev.zim_sandbox import ZimSandbox
from bot.settings import DEFAULT_WATCH_QPS_SHARE, LimitSettings, WatchSettings
from bot.watch.budget import available_rate
from bot.zim import ZimClient, new_http_client
from bot.zim.wire import FIRST_CURSOR

NAME = "watch_load"
COMMAND = ".venv/bin/python -m benchmarks.watch_load"
QPS = 20
TARGET_EXTRA_S = 0.150
NO_USER_RATE = LimitSettings(user_rate=0, refresh_min=0.0)  # one person sets all 200 watches


class _NoPacing:
    async def wait_turn(self) -> float:
        return 0.0

    async def wait_background_turn(self) -> float:
        return 0.0

    async def cool_down(self, seconds: float) -> None:
        return None


def watch_requests() -> float:
    """roomusers_watch_zim_requests_total, both APIs, so far (requests the watches' polls counted as made)."""
    return sum(
        REGISTRY.get_sample_value("roomusers_watch_zim_requests_total", {"profile": "default", "api": api}) or 0.0
        for api in ("QueryRoomUserList", "QueryRoomMembers")
    )


def most_in_one_second(arrivals: list[float]) -> int:
    """The most arrivals in any sliding one-second window."""
    times = sorted(arrivals)
    most = start = 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


async def round_trip(sandbox: ZimSandbox, samples: int = 7) -> float:
    """One warm first-page QueryRoomUserList at the sandbox's RTT (median), outside the app's pacer."""
    async with new_http_client() as http:
        client = ZimClient(
            app_id=sandbox.app_id, server_secret=sandbox.secret, base_url=sandbox.base_url, pacer=_NoPacing(), http=http
        )
        times = []
        for _ in range(samples + 1):
            started = time.perf_counter()
            await client.query_page("rtt-room", mode=0, cursor=FIRST_CURSOR)
            times.append(time.perf_counter() - started)
            await asyncio.sleep(0.2)  # stay far below ZIM's rate
        return statistics.median(times[1:])


async def measure(watches: int, commands: int, rtt_ms: float, interval: float) -> dict[str, Any]:
    sandbox = ZimSandbox(latency_ms=rtt_ms, qps=QPS)
    settings = WatchSettings(interval=interval, max_per_conversation=watches, max_per_workspace=watches)
    async with sandbox, local_stack(sandbox=sandbox, qps=QPS, watch=settings, limits=NO_USER_RATE) as local:
        sandbox.add_room("rtt-room", 100)
        rtt = await round_trip(sandbox)
        for index in range(watches):
            sandbox.add_room(f"watch-{index}", 5)
        for index in range(commands):
            sandbox.add_room(f"cmd-{index}", 120)
        log(f"setting {watches} watches…")
        for index in range(watches):
            condition = "--when-joins nobody-yet" if index % 4 == 3 else "--when-empty"
            await local.slack.send_command(f"watch-{index} --watch {condition}")
            await local.until_idle(within=60)
        set_count = await local.watches.poller.store.count() if local.watches else 0
        if set_count != watches:
            raise RuntimeError(f"only {set_count} of {watches} watches were set")
        local.slack.take_arrivals()
        assert local.watches is not None
        poller = local.watches.poller
        intervals = await poller.intervals()
        sandbox.reset_stats()
        polled_before = len(poller.polled)
        watch_requests_before = watch_requests()
        log(f"running {commands} commands while the watches poll (real interval {intervals['default']:.1f} s)…")
        first_answers: list[float] = []
        wrong = 0
        window_started = time.perf_counter()
        for index in range(commands):
            started = time.perf_counter()
            await local.slack.send_command(f"cmd-{index}")
            await local.slack.next_message(timeout=30)  # the ack
            answer = await local.slack.next_message(timeout=30)
            first_answers.append(time.perf_counter() - started)
            wrong += "*120 users*" not in (answer.text or "") + str(answer.blocks)
            await asyncio.sleep(0.3)  # commands arrive as people type them, not as one burst
        polls = len(poller.polled) - polled_before
        window = time.perf_counter() - window_started
        sent_for_watches = watch_requests() - watch_requests_before
        stats = sandbox.stats
        return {
            "settings": {
                "watches": watches,
                "commands": commands,
                "rtt_ms": rtt_ms,
                "interval_s": interval,
                "qps": QPS,
            },
            "zim_round_trip_ms": rtt * 1000,
            "real_interval_s": intervals["default"],
            "first_answer_ms": distribution_ms(first_answers),
            "target_ms": (rtt + TARGET_EXTRA_S) * 1000,
            "watch_polls_started_during_commands": polls,
            "watch_zim_requests_during_commands": sent_for_watches,
            "commands_window_s": window,
            "watch_share_rate": available_rate(QPS, DEFAULT_WATCH_QPS_SHARE),
            "zim_requests": stats.requests,
            "zim_most_in_one_second": most_in_one_second(list(stats.arrivals)),
            "zim_rate_limited": stats.rate_limited,
            "wrong_answers": wrong,
        }


def report(result: dict[str, Any], machine: dict[str, Any]) -> tuple[str, list[str]]:
    answers = result["first_answer_ms"]
    problems = []
    if answers["max_ms"] > result["target_ms"]:
        problems.append(f"slowest first answer {answers['max_ms']:.0f} ms > target {result['target_ms']:.0f} ms")
    if result["zim_most_in_one_second"] > QPS:
        problems.append(f"ZIM saw {result['zim_most_in_one_second']} requests in one second (> {QPS})")
    if result["zim_rate_limited"]:
        problems.append(f"ZIM refused {result['zim_rate_limited']} requests as over its rate")
    if result["wrong_answers"]:
        problems.append(f"{result['wrong_answers']} answers were wrong")
    table = markdown_table(
        [
            "watches",
            "real interval",
            "watch requests / s (share)",
            "first answer p50 / p90 / max",
            "target",
            "ZIM max/1 s",
            "refused",
        ],
        [
            [
                str(result["settings"]["watches"]),
                f"{result['real_interval_s']:.1f} s",
                f"{result['watch_zim_requests_during_commands'] / result['commands_window_s']:.1f} "
                f"({result['watch_share_rate']:.2f})",
                f"{answers['p50_ms']:.0f} / {answers['p90_ms']:.0f} / {answers['max_ms']:.0f} ms",
                f"{result['target_ms']:.0f} ms",
                f"{result['zim_most_in_one_second']} (limit {QPS})",
                str(result["zim_rate_limited"]),
            ]
        ],
    )
    lines = [
        f"# Commands while {result['settings']['watches']} watches poll",
        "",
        machine_line(machine),
        "",
        table,
        "",
        f"ZIM round trip (median, warm): {result['zim_round_trip_ms']:.0f} ms; verdict: "
        + ("PASS" if not problems else "FAIL: " + "; ".join(problems)),
    ]
    return "\n".join(lines), problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--watches", type=int, default=200)
    parser.add_argument("--commands", type=int, default=30)
    parser.add_argument("--rtt", type=float, default=50.0, help="injected ZIM round trip, ms")
    parser.add_argument("--interval", type=float, default=2.0, help="ROOMUSERS_WATCH_INTERVAL_SECONDS")
    parser.add_argument("--quick", action="store_true", help="40 watches and 5 commands")
    args = parser.parse_args(argv)
    if args.quick:
        args.watches, args.commands = 40, 5
    result = asyncio.run(measure(args.watches, args.commands, args.rtt, args.interval))
    machine = machine_info()
    text, problems = report(result, machine)
    return publish(RESULTS_DIR, NAME, COMMAND, machine, text, {"result": result}, problems)


if __name__ == "__main__":
    sys.exit(main())
