"""CPU per 10,000 users rendered: process CPU time to render every page of a roster with `roster_message`.

The roster is the sandbox's `load-10000` room (bot.dev.zim_sandbox.rooms.generated_users, seed 10000) as RoomUser
tuples, the way the ZIM client returns it; all 500 pages of 20 are rendered (`roster_message(roster, page=p,
now=...)`, join order, no filter, as a cached answer) and the process CPU time (`time.process_time`) of the
whole pass is the CPU per 10,000 users rendered. The pass is repeated (default 7) and the median is reported.

Also, for context: the same measurement with the JSON serialisation the answer costs on its way to Slack
(`json.dumps(message.to_payload())`), and per-page costs that depend on the room's size: pages of a
100,000-user roster in join order, most recent first, and with a filter (`roster_message(..., filter_text=...)`
filters the whole roster for every page it draws), and the CPU time of the operations that touch every user of
a 100,000-user roster (packing it at the end of a fetch, iterating, filtering, CSV export, and the Redis
snapshot encoding), each of which blocks the event loop for that long.

Run: `python -m benchmarks.render_cpu [--repeat 7] [--quick]`. Writes benchmarks/results/render_cpu.json and .md.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS_DIR, log, machine_info, machine_line, markdown_table, publish
from bot.dev.zim_sandbox import generated_users
from bot.roster.model import RoomUser, Roster
from bot.roster.view import filter_users
from bot.slack.export import roster_csv
from bot.slack.render.blocks import roster_message

NAME = "render_cpu"
COMMAND = ".venv/bin/python -m benchmarks.render_cpu"
DEFAULT_REPEAT = 7
QUICK_REPEAT = 3
PAGE_SIZE = 20
FILTER_TEXT = "novak"  # a last name of the generated users: keeps about 2% of them
WHOLE_ROSTER_USERS = 100_000


def make_roster(users: int) -> Roster:
    room_users = tuple(RoomUser(user_id, name) for user_id, name in generated_users(users, seed=users))
    return Roster(room_id=f"load-{users}", users=room_users, reported_count=users, fetched_at=time.time() - 30)


@dataclass
class Case:
    name: str
    users: int  # roster size
    pages: int  # pages rendered per pass
    serialise: bool = False
    newest_first: bool = False
    filter_text: str = ""


CASES = (
    Case("10,000 users, all 500 pages (the measurement asked for)", 10_000, 500),
    Case("same, plus json.dumps of each message", 10_000, 500, serialise=True),
    Case("100,000 users, first 500 pages, join order", 100_000, 500),
    Case("100,000 users, 50 pages, most recent first", 100_000, 50, newest_first=True),
    Case(f"100,000 users, 20 pages, filter “{FILTER_TEXT}”", 100_000, 20, filter_text=FILTER_TEXT),
)


def one_pass(case: Case, roster: Roster, now: float) -> float:
    render: Callable[[int], Any] = lambda page: roster_message(  # noqa: E731
        roster, page=page, now=now, newest_first=case.newest_first, filter_text=case.filter_text
    )
    gc.collect()
    started = time.process_time()
    for page in range(1, case.pages + 1):
        message = render(page)
        if case.serialise:
            json.dumps(message.to_payload())
    return time.process_time() - started


def measure(repeat: int) -> list[dict[str, Any]]:
    rosters = {users: make_roster(users) for users in sorted({case.users for case in CASES})}
    now = time.time()
    results = []
    for case in CASES:
        roster = rosters[case.users]
        one_pass(case, roster, now)  # warm-up, not recorded
        cpu_s = [one_pass(case, roster, now) for _ in range(repeat)]
        median = statistics.median(cpu_s)
        users_rendered = min(case.pages * PAGE_SIZE, case.users)
        results.append(
            {
                "case": case.name,
                "roster_users": case.users,
                "pages": case.pages,
                "serialise": case.serialise,
                "newest_first": case.newest_first,
                "filter_text": case.filter_text,
                "cpu_ms_median": median * 1000,
                "cpu_ms_min": min(cpu_s) * 1000,
                "cpu_ms_runs": [value * 1000 for value in cpu_s],
                "cpu_ms_per_page": median * 1000 / case.pages,
                "cpu_ms_per_10k_users_rendered": median * 1000 * 10_000 / users_rendered,
            }
        )
        log(f"{case.name}: {median * 1000:.1f} ms CPU ({median * 1000 / case.pages:.3f} ms a page)")
    return results


def whole_roster_operations(repeat: int) -> list[dict[str, Any]]:
    """CPU time of the operations that touch every user of a 100,000-user roster (each blocks the event loop
    for that long), on the roster as bot.zim.models.Roster holds it and on a plain tuple of RoomUser."""
    pairs = generated_users(WHOLE_ROSTER_USERS, seed=WHOLE_ROSTER_USERS)
    plain = tuple(RoomUser(user_id, name) for user_id, name in pairs)
    roster = Roster(room_id="load", users=plain, reported_count=len(plain), fetched_at=time.time())
    held = type(roster.users).__name__
    operations: list[tuple[str, Callable[[], object], Callable[[], object] | None]] = [
        (
            "Roster(users=<tuple of RoomUser>): what ends every fetch",
            lambda: Roster(room_id="load", users=plain, reported_count=len(plain), fetched_at=0.0),
            None,
        ),
        ("iterate over every user", lambda: sum(1 for _ in roster.users), lambda: sum(1 for _ in plain)),
        (
            f"filter_users(..., “{FILTER_TEXT}”): every render of a filtered answer",
            lambda: filter_users(roster.users, FILTER_TEXT),
            lambda: filter_users(plain, FILTER_TEXT),
        ),
        ("roster_csv: Export CSV", lambda: roster_csv(roster.users), lambda: roster_csv(plain)),
    ]
    try:
        from bot.state.snapshots import decode_roster, encode_roster
    except ImportError:
        pass
    else:
        value = encode_roster(roster)
        operations += [
            ("encode_roster: storing the snapshot in Redis", lambda: encode_roster(roster), None),
            ("decode_roster: reading it back (every click, with Redis)", lambda: decode_roster(value), None),
        ]
    results = []
    for name, packed_op, plain_op in operations:
        packed_ms = cpu_ms(packed_op, repeat)
        plain_ms = cpu_ms(plain_op, repeat) if plain_op is not None else None
        results.append({"operation": name, "users_type": held, "cpu_ms": packed_ms, "tuple_cpu_ms": plain_ms})
        log(f"{name}: {packed_ms:.1f} ms ({held})" + ("" if plain_ms is None else f", {plain_ms:.1f} ms (tuple)"))
    return results


def cpu_ms(operation: Callable[[], object], repeat: int) -> float:
    operation()  # warm-up
    times = []
    for _ in range(repeat):
        gc.collect()
        started = time.process_time()
        operation()
        times.append(time.process_time() - started)
    return statistics.median(times) * 1000


def markdown(
    results: Sequence[dict[str, Any]], whole: Sequence[dict[str, Any]], machine: dict[str, Any], repeat: int
) -> str:
    headers = ("case", "pages a pass", "CPU ms a pass (median)", "min ms", "CPU ms a page", "CPU ms per 10k users")
    rows = [
        (
            r["case"],
            str(r["pages"]),
            f"{r['cpu_ms_median']:.1f}",
            f"{r['cpu_ms_min']:.1f}",
            f"{r['cpu_ms_per_page']:.3f}",
            f"{r['cpu_ms_per_10k_users_rendered']:.1f}",
        )
        for r in results
    ]
    main_row = results[0]
    return "\n".join(
        [
            f"# {NAME}",
            "",
            f"{machine_line(machine)}; median of {repeat} passes, process CPU time. Regenerate: `{COMMAND}`.",
            "",
            markdown_table(headers, rows, [":---"] + ["---:"] * (len(headers) - 1)),
            "",
            f"CPU per 10,000 users rendered (500 pages of 20 with `roster_message`): "
            f"**{main_row['cpu_ms_median']:.1f} ms** ({main_row['cpu_ms_per_page']:.3f} ms a page).",
            "",
            f"Operations that touch every user of a {WHOLE_ROSTER_USERS:,}-user roster (CPU ms, median of {repeat}; "
            f"each blocks the event loop that long), on `Roster.users` as held today "
            f"(`{whole[0]['users_type'] if whole else '?'}`) and on a plain tuple of RoomUser:",
            "",
            markdown_table(
                ("operation", "Roster.users ms", "tuple of RoomUser ms"),
                [
                    (
                        row["operation"],
                        f"{row['cpu_ms']:.1f}",
                        "" if row["tuple_cpu_ms"] is None else f"{row['tuple_cpu_ms']:.1f}",
                    )
                    for row in whole
                ],
                [":---", "---:", "---:"],
            ),
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="passes per case (default 7)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_REPEAT} passes per case")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    repeat = QUICK_REPEAT if args.quick else args.repeat
    if not 1 <= repeat <= 50:
        parser.error("--repeat must be 1-50")
    results = measure(repeat)
    whole = whole_roster_operations(repeat)
    machine = machine_info()
    sections = {
        "settings": {"repeat": repeat, "page_size": PAGE_SIZE, "filter_text": FILTER_TEXT},
        "results": results,
        "whole_roster": whole,
    }
    return publish(args.results_dir, NAME, COMMAND, machine, markdown(results, whole, machine, repeat), sections)


if __name__ == "__main__":
    sys.exit(main())
