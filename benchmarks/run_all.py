"""Run every benchmark module in this folder, one subprocess each: `python -m benchmarks.run_all [--quick]`.

A benchmark is any module here whose name does not start with `_` (this runner excepted); `plots`, which
draws docs/img/*.png from their results, runs last. Each runs in
its own interpreter, so one benchmark's event loop, sandbox or failure cannot disturb the next; all run
even if one fails, and the exit status is 1 if any did.
"""

from __future__ import annotations

import argparse
import pkgutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
RUNNER = "run_all"


LAST = "plots"  # draws docs/img/*.png from every benchmark's results, so it runs after all of them


def benchmark_modules() -> list[str]:
    """Names of the benchmark modules in this folder, sorted, with `plots` last."""
    names = sorted(
        info.name
        for info in pkgutil.iter_modules([str(PACKAGE_DIR)])
        if not info.ispkg and info.name != RUNNER and not info.name.startswith("_")
    )
    return [name for name in names if name != LAST] + [name for name in names if name == LAST]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_all", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    args = parser.parse_args(argv)
    failed: list[str] = []
    for name in benchmark_modules():
        command = [sys.executable, "-m", f"benchmarks.{name}", *(["--quick"] if args.quick else [])]
        print(f"== benchmarks.{name}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        code = subprocess.call(command, cwd=REPO_ROOT)
        print(f"== benchmarks.{name}: exit {code} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
