"""Paging-click latency from a warm snapshot: click Next, time until the replaced message arrives.

Through the whole product on loopback (real Bolt app over HTTP, Slack stand-in, ZIM sandbox in its own process
at 100 ms RTT; see _stack.py). For each configuration the room is read once (`/roomusers load-<N>`, then
waiting until its snapshot is stored), a second `/roomusers` gives an answer "from cache", and Next is clicked
on the newest version of that message `--clicks` times (default 240), each click timed from just before the
stand-in sends the signed block_actions payload until `next_message()` hands over the replaced message (the
wait for it starts before the click, since the app can post the new page before its ack has been read). Every
page is checked: it lists the right 20 user IDs. No ZIM request is needed, so the time is the app's own work
(decode the button, check access, read the snapshot, render, post to the click's response_url) plus the
stand-in's.

Configurations: a 10,000-user room (the one the issue asks for) and a 100,000-user room, with the default
in-process snapshot store, and, when a `redis-server` binary and bot.state are available, the same two
with the app's Redis shared state (`build_shared_state(REDIS_URL)`, as `python -m bot serve` sets it up),
where every click reads the snapshot back from Redis. Generation-2 garbage collections during the clicks are
counted (gc.callbacks).

Run: `python -m benchmarks.click_latency [--clicks 240] [--no-redis] [--quick]`. Writes
benchmarks/results/click_latency.json and .md. Exit status 1 if a page was wrong or never arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._common import (
    RESULTS_DIR,
    STOPPED,
    distribution_ms,
    log,
    machine_info,
    machine_line,
    markdown_table,
    publish,
    run_measurement,
)
from benchmarks._redis import RedisServer
from benchmarks._sandbox import stop_on_signals
from benchmarks._stack import GcPauses, all_text, app_stack, listed_user_ids, load_room, log_slack_warnings
from bot.dev.slack_standin import SlackStandIn, StoredMessage
from bot.dev.zim_sandbox import generated_users

NAME = "click_latency"
COMMAND = ".venv/bin/python -m benchmarks.click_latency"
RTT_MS = 100.0
DEFAULT_CLICKS = 240
QUICK_CLICKS = 60
SIZES = (10_000, 100_000)
PAGE = 20
CACHED_TIMEOUT_S = 90.0
MESSAGE_TIMEOUT_S = 15.0


@dataclass
class Config:
    store: str  # "memory" or "redis"
    users: int
    total_s: list[float] = field(default_factory=list)  # click sent → replaced message handed over
    ack_s: list[float] = field(default_factory=list)
    gc2_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "users": self.users,
            "click_to_replaced_message": distribution_ms(self.total_s),
            "click_ack": distribution_ms(self.ack_s),
            "gen2_gc": {"collections": len(self.gc2_ms), "max_ms": max(self.gc2_ms, default=0.0)},
            "wall_s": self.wall_s,
            "problems": self.problems,
            "click_to_replaced_message_ms": [value * 1000 for value in self.total_s],
        }


async def arrival(slack: SlackStandIn) -> tuple[StoredMessage, float]:
    """The app's next message and when next_message() handed it over."""
    message = await slack.next_message(timeout=MESSAGE_TIMEOUT_S)
    return message, time.perf_counter()


async def run_config(config: Config, clicks: int, redis_url: str | None) -> None:
    state = None
    if config.store == "redis":
        from bot.state import build_shared_state

        state = await build_shared_state(redis_url)
    room = load_room(config.users)
    ids = [user_id for user_id, _ in generated_users(config.users, seed=config.users)]
    with GcPauses() as pauses:
        async with app_stack(latency_ms=RTT_MS, rooms=[room], state=state) as (_, local):
            slack = local.slack
            stack = local.rosters.pick("")
            assert stack is not None
            await slack.send_command(room)
            await slack.next_message(timeout=MESSAGE_TIMEOUT_S)  # the ack
            await slack.next_message(timeout=MESSAGE_TIMEOUT_S)  # the first answer, while the room is read
            deadline = time.monotonic() + CACHED_TIMEOUT_S
            while await stack.snapshots.cached(room) is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{room} was not stored within {CACHED_TIMEOUT_S:.0f} s")
                await asyncio.sleep(0.5)
            await slack.send_command(room)
            await slack.next_message(timeout=MESSAGE_TIMEOUT_S)
            message = await slack.next_message(timeout=MESSAGE_TIMEOUT_S)
            if "from cache" not in all_text(message):
                config.problems.append(f"{config.store}/{room}: the second answer did not come from the snapshot")
            log(f"{config.store:>6} {config.users:>7,} users: snapshot warm, clicking Next {clicks} times")
            started = time.perf_counter()
            for index in range(clicks):
                page = index + 2
                # Wait for the replacement from before the click: the app may post it before its ack is read.
                waiter = asyncio.ensure_future(arrival(slack))
                sent = time.perf_counter()
                response = await slack.click(message, "roomusers_next")
                try:
                    message, arrived = await waiter
                except TimeoutError:
                    config.problems.append(f"{config.store}/{room}: no page {page} after {MESSAGE_TIMEOUT_S:g} s")
                    break
                config.total_s.append(arrived - sent)
                config.ack_s.append(response.elapsed)
                if not response.acked_in_time:
                    config.problems.append(
                        f"{room} page {page}: click HTTP {response.status} ({response.elapsed:.3f} s)"
                    )
                if listed_user_ids(message) != ids[(page - 1) * PAGE : page * PAGE]:
                    config.problems.append(f"{config.store}/{room}: page {page} lists the wrong users")
            config.wall_s = time.perf_counter() - started
            config.gc2_ms = [value * 1000 for value in pauses.between(started, started + config.wall_s)]
            log_slack_warnings(slack)


async def measure(clicks: int, use_redis: bool) -> tuple[list[Config], str]:
    stop_on_signals()
    configs = [Config("memory", users) for users in SIZES]
    redis_note = "measured"
    if use_redis and not RedisServer.available():
        redis_note = "skipped: no redis-server binary or no bot.state package"
        use_redis = False
    elif not use_redis:
        redis_note = "skipped (--no-redis)"
    if use_redis:
        configs += [Config("redis", users) for users in SIZES]
    with RedisServer() if use_redis else contextlib.nullcontext() as server:
        for config in configs:
            await run_config(config, clicks, server.url if server else None)
            stats = config.summary()["click_to_replaced_message"]
            log(
                f"{config.store:>6} {config.users:>7,} users: p50 {stats['p50_ms']:.1f} ms, "
                f"p99 {stats['p99_ms']:.1f} ms, max {stats['max_ms']:.1f} ms; "
                f"gen-2 GCs {[round(v, 1) for v in config.gc2_ms]}"
                + "".join(f"  PROBLEM: {problem}" for problem in config.problems[:3])
            )
    return configs, redis_note


HEADERS = (
    "snapshot store",
    "users in room",
    "clicks",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "click ack p50 ms",
    "gen-2 GCs during clicks (max ms)",
)


def table(configs: Sequence[Config]) -> str:
    rows = []
    for config in configs:
        s = config.summary()
        total, ack = s["click_to_replaced_message"], s["click_ack"]
        rows.append(
            (
                "in process" if config.store == "memory" else "Redis",
                f"{config.users:,}",
                str(total["n"]),
                f"{total['p50_ms']:.1f}",
                f"{total['p90_ms']:.1f}",
                f"{total['p99_ms']:.1f}",
                f"{total['max_ms']:.1f}",
                f"{ack['p50_ms']:.1f}",
                f"{len(config.gc2_ms)} ({max(config.gc2_ms, default=0.0):.1f})",
            )
        )
    align = [":---"] + ["---:"] * (len(HEADERS) - 1)
    return markdown_table(HEADERS, rows, align)


def markdown(configs: Sequence[Config], machine: dict[str, Any], clicks: int, redis_note: str) -> str:
    return "\n".join(
        [
            f"# {NAME}",
            "",
            f"{machine_line(machine)}; {clicks} Next clicks per row on an answer from a warm snapshot; Redis rows: "
            f"{redis_note}. Regenerate: `{COMMAND}`.",
            "",
            table(configs),
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__.split("\n")[0])
    parser.add_argument("--clicks", type=int, default=DEFAULT_CLICKS, help="Next clicks per configuration (240)")
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis configurations")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_CLICKS} clicks per configuration")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    clicks = QUICK_CLICKS if args.quick else args.clicks
    if not 1 <= clicks <= min(SIZES) // PAGE - 1:
        parser.error(f"--clicks must be 1-{min(SIZES) // PAGE - 1}")
    measured = run_measurement(measure(clicks, not args.no_redis))
    if measured is None:
        return STOPPED
    configs, redis_note = measured
    machine = machine_info()
    sections = {
        "settings": {"clicks": clicks, "rtt_ms": RTT_MS, "sizes": list(SIZES), "redis": redis_note},
        "results": [config.summary() for config in configs],
    }
    problems = [problem for config in configs for problem in config.problems]
    report = markdown(configs, machine, clicks, redis_note)
    return publish(args.results_dir, NAME, COMMAND, machine, report, sections, problems)


if __name__ == "__main__":
    sys.exit(main())
