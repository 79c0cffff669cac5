"""Peak memory of a whole read: `python -m bot query load-N --json` as a user runs it, against an empty run.

The sandbox runs in its own process (`python -m bot sandbox`, 20 requests a second, no added latency); each
query is a child process whose output goes to a file (then checked: `count == N`, `complete`, no duplicate
ID). The child's peak resident set comes from `os.wait4` (ru_maxrss), measured by a tiny launcher process,
because Linux counts the RSS a child had before `exec` (a copy of its parent) in its peak. The cost of a
read is (peak of load-N − peak of an empty run, `demo-1`) ÷ N: what the read, the roster and the JSON
output add per user on top of the interpreter and the app's imports.

Target (issue 10): ≤ 150 bytes per user above an empty run.

Run: `python -m benchmarks.query_peak [--users 300000,1000000] [--quick]`. Writes
benchmarks/results/query_peak.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import REPO_ROOT, RESULTS_DIR, int_list, log, machine_info, machine_line, markdown_table
from benchmarks._common import publish as publish_results
from benchmarks._sandbox import SandboxProcess, clean_env

TARGET_BYTES_PER_USER = 150
DEFAULT_USERS = (300_000, 1_000_000)
QUICK_USERS = (100_000,)


# Spawns argv[2:] with stdout to the file argv[1], waits, prints "<exit status> <peak RSS KiB>". Itself about
# 10 MB, far below any query, so its own RSS (inherited by the child until exec) never shows in the peak.
_LAUNCHER = """
import os, sys
with open(sys.argv[1], "wb") as out:
    pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, out.fileno(), 1)])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def _peak_of_child(args: list[str], env: dict[str, str], out: Path) -> tuple[int, int]:
    """Run `python args` with stdout to `out`; (exit status, peak RSS in bytes) from wait4."""
    launched = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, str(out), sys.executable, *args],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
    )
    status, peak_kib = (int(word) for word in launched.stdout.split())
    return status, peak_kib * 1024  # Linux reports KiB


def _check(out: Path, users: int) -> list[str]:
    payload = json.loads(out.read_text(encoding="utf-8"))
    ids = [user["user_id"] for user in payload["users"]]
    problems = []
    if payload["count"] != users or len(ids) != users:
        problems.append(f"load-{users}: {payload['count']} users listed")
    if len(set(ids)) != len(ids):
        problems.append(f"load-{users}: duplicate user IDs")
    if payload["complete"] is not True:
        problems.append(f"load-{users}: not complete")
    return problems


async def measure(sizes: Sequence[int]) -> tuple[list[dict[str, Any]], list[str]]:
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    async with SandboxProcess(latency_ms=0) as sandbox:
        env = clean_env(**sandbox.settings)
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "out.json"
            for room, users in [("demo-1", 0), *((f"load-{n}", n) for n in sizes)]:
                log(f"query {room} --json ...")
                status, peak = await asyncio.to_thread(_peak_of_child, ["-m", "bot", "query", room, "--json"], env, out)
                if status != 0:
                    problems.append(f"{room}: exit status {status}")
                    continue
                if users:
                    problems += _check(out, users)
                rows.append({"room": room, "users": users, "peak_rss_bytes": peak, "output_bytes": out.stat().st_size})
    empty = next((row["peak_rss_bytes"] for row in rows if row["users"] == 0), None)
    for row in rows:
        if row["users"] and empty is not None:
            row["bytes_per_user_above_empty"] = round((row["peak_rss_bytes"] - empty) / row["users"], 1)
            if row["bytes_per_user_above_empty"] > TARGET_BYTES_PER_USER:
                log(f"MISS: {row['room']} costs {row['bytes_per_user_above_empty']} bytes a user")
    return rows, problems


def report(rows: list[dict[str, Any]], machine: dict[str, Any]) -> str:
    table = markdown_table(
        ["room", "users", "peak RSS", "above the empty run", "bytes a user", "output"],
        [
            [
                row["room"],
                f"{row['users']:,}",
                f"{row['peak_rss_bytes'] / 2**20:,.1f} MiB",
                "—" if not row["users"] else f"{(row['peak_rss_bytes'] - rows[0]['peak_rss_bytes']) / 2**20:,.1f} MiB",
                "—" if not row["users"] else f"{row['bytes_per_user_above_empty']:.1f}",
                f"{row['output_bytes'] / 2**20:,.1f} MiB",
            ]
            for row in rows
        ],
        ["---", "---:", "---:", "---:", "---:", "---:"],
    )
    return (
        f"# Peak memory of `query --json`\n\n{machine_line(machine)}; the sandbox in its own process (20 requests a "
        f"second), each query in a child process (peak RSS from wait4). Target: ≤ "
        f"{TARGET_BYTES_PER_USER} bytes a user above the empty run.\n\n{table}\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int_list, default=DEFAULT_USERS, help="room sizes (default 300000,1000000)")
    parser.add_argument("--quick", action="store_true", help="100,000 users only")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    sizes = QUICK_USERS if args.quick else args.users
    machine = machine_info()
    rows, problems = asyncio.run(measure(sizes))
    command = "python -m benchmarks.query_peak" + (
        " --quick" if args.quick else f" --users {','.join(map(str, sizes))}"
    )
    return publish_results(
        args.results_dir, "query_peak", command, machine, report(rows, machine), {"runs": rows}, problems
    )


if __name__ == "__main__":
    raise SystemExit(main())
