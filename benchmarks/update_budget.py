"""chat.update under load: 10 concurrent mentions of 50,000-user rooms, against Slack's Tier-3 limit.

Each mention of a big room is answered at once with ZIM's first page ("still loading: N of M read") and then
edited in place with progress and, at the end, the complete page 1. `chat.update` is Tier 3: about 50 calls in
any 60 s for the whole app. The app's budget (`bot/slack/budget.py`, defaults: 45 per 60 s, 10 kept for final
edits) spreads progress edits over the mentions loading; the Slack stand-in enforces Slack's limits as Slack
does (chat.update 50 per 60 s per app; chat.postMessage about 1 per second per channel, bursts of 3), answering
429 with Retry-After.

Measured: every chat.update the stand-in received (count, the most in any 60 s window, how many got 429),
the time from the mentions to the last final edit, and whether every reply ended complete (page 1 of the
whole room, no "loading"). Verdict: at most 50 in any 60 s, no 429, every answer complete.

Through the whole product on loopback (real Bolt app over HTTP, Slack stand-in, ZIM sandbox in process), ZIM at
20 requests/s shared by all rooms (10 x 100 pages: about 50 s).

Run: `python -m benchmarks.update_budget [--rooms 10] [--users 50000] [--quick]`. Writes
benchmarks/results/update_budget.json and .md. Exit status 1 if the verdict fails.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections.abc import Sequence
from typing import Any

from benchmarks._common import (
    RESULTS_DIR,
    STOPPED,
    log,
    machine_info,
    machine_line,
    markdown_table,
    publish,
    run_measurement,
)
from benchmarks._stack import all_text
from bot.dev.local_stack import local_stack
from bot.dev.slack_standin import StoredMessage
from bot.dev.slack_standin.ratelimits import RateLimits, max_in_window
from bot.dev.zim_sandbox import ZimSandbox
from bot.slack.budget import UpdateBudget

NAME = "update_budget"
COMMAND = ".venv/bin/python -m benchmarks.update_budget"
SLACK_LIMIT = 50
WINDOW_S = 60.0
LOADING = re.compile(r"loading", re.IGNORECASE)
TIMEOUT_S = 900.0


async def measure(rooms: int, users: int, qps: float, budget: bool = True) -> dict[str, Any]:
    names = [f"big-{i}" for i in range(rooms)]
    async with ZimSandbox() as sandbox:
        for name in names:
            sandbox.add_room(name, users)
        # --no-budget: what the app did before issue 11 (every mention edits every 3 s, whatever the others do).
        app_budget = None if budget else UpdateBudget(limit=10**6, reserve=0)
        async with local_stack(sandbox=sandbox, qps=qps, slack_limits=RateLimits(), updates=app_budget) as local:
            slack = local.slack
            log(f"{rooms} mentions of {users:,}-user rooms at {qps:g} ZIM requests/s")
            started = time.monotonic()
            sent = await asyncio.gather(*(slack.mention(name) for name in names))
            threads = [str(response.sent["event"]["ts"]) for response in sent]

            def reply(ts: str) -> StoredMessage | None:
                return next((m for m in slack.thread("C0OPS", ts) if m.origin == "api"), None)

            def complete(ts: str) -> bool:
                found = reply(ts)
                return (
                    found is not None and f"{users:,} users" in all_text(found) and not LOADING.search(all_text(found))
                )

            await slack.wait_for(lambda: all(complete(ts) for ts in threads), timeout=TIMEOUT_S)
            updates = [c for c in slack.api_calls if c.method == "chat.update"]
            last_final = max(c.at for c in updates if c.status == 200) if updates else started
            posts = [c for c in slack.api_calls if c.method == "chat.postMessage"]
            return {
                "app_budget": budget,
                "rooms": rooms,
                "users_per_room": users,
                "zim_qps": qps,
                "chat_update_calls": len(updates),
                "chat_update_ok": sum(c.status == 200 for c in updates),
                "chat_update_429": sum(c.status == 429 for c in updates),
                "max_chat_update_in_60s": max_in_window([c.at for c in updates], WINDOW_S),
                "chat_post_message_429": sum(c.status == 429 for c in posts),
                "seconds_to_last_final": round(last_final - started, 1),
                "replies_complete": sum(complete(ts) for ts in threads),
                "replies_in_one_message": sum(
                    len([m for m in slack.thread("C0OPS", ts) if m.origin == "api"]) == 1 for ts in threads
                ),
                "stand_in_warnings": list(slack.warnings),
            }


def report(result: dict[str, Any], machine: dict[str, Any]) -> str:
    rows = [
        ["mentions loading at once", f"{result['rooms']} x {result['users_per_room']:,} users"],
        [
            "chat.update calls (ok / 429)",
            f"{result['chat_update_calls']} ({result['chat_update_ok']} / {result['chat_update_429']})",
        ],
        ["most chat.update in any 60 s", f"{result['max_chat_update_in_60s']} (Slack: ~{SLACK_LIMIT})"],
        ["chat.postMessage answered 429 (then retried)", str(result["chat_post_message_429"])],
        [
            "replies complete, each one message",
            f"{result['replies_complete']} / {result['replies_in_one_message']} of {result['rooms']}",
        ],
        ["mentions to the last final edit", f"{result['seconds_to_last_final']} s"],
    ]
    table = markdown_table(["", "measured"], rows, ["---", "---:"])
    return f"# chat.update under load\n\n{table}\n\nCommand: `{COMMAND}`. {machine_line(machine)}.\n"


def problems_of(result: dict[str, Any]) -> list[str]:
    problems = []
    if result["max_chat_update_in_60s"] > SLACK_LIMIT:
        problems.append(f"{result['max_chat_update_in_60s']} chat.update calls in one 60 s window")
    if result["chat_update_429"]:
        problems.append(f"{result['chat_update_429']} chat.update calls answered 429")
    if result["replies_complete"] != result["rooms"] or result["replies_in_one_message"] != result["rooms"]:
        problems.append("not every mention ended with one complete reply")
    if result["stand_in_warnings"]:
        problems.append(f"stand-in warnings: {result['stand_in_warnings']}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.update_budget", description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--qps", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="5 rooms of 20,000 users")
    parser.add_argument("--no-budget", action="store_true", help="for comparison: no app-wide budget (not saved)")
    args = parser.parse_args(argv)
    rooms, users = (5, 20_000) if args.quick else (args.rooms, args.users)
    result = run_measurement(measure(rooms, users, args.qps, budget=not args.no_budget))
    if result is None:
        return STOPPED
    if args.no_budget:  # a comparison, not a result of the app as it is
        print(report(result, machine_info()))
        return 0
    machine = machine_info()
    return publish(
        RESULTS_DIR, NAME, COMMAND, machine, report(result, machine), {"result": result}, problems_of(result)
    )


if __name__ == "__main__":
    sys.exit(main())
