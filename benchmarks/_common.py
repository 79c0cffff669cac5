"""Helpers shared by the benchmark modules: machine description, percentiles, Markdown tables, result files,
comma-separated number options, running a measurement and finishing with its results."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parent.parent
STOPPED = 130  # exit status when a measurement was interrupted (SIGINT, SIGTERM, SIGHUP)

T = TypeVar("T")
N = TypeVar("N", int, float)


class BenchmarkError(RuntimeError):
    """A run failed outright (an error, a timeout, a non-zero exit)."""


def log(message: str) -> None:
    """Progress goes to stderr; stdout is kept for the result table."""
    print(message, file=sys.stderr, flush=True)


def host_info() -> dict[str, Any]:
    """The machine and interpreter: CPUs, CPU model, Python, platform, and the date now."""
    cpu_model = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            cpu_model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), None)
    except OSError:
        pass
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(affinity(0)) if affinity else os.cpu_count(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def machine_info() -> dict[str, Any]:
    """host_info(), the load averages and the code version: the "machine" of every results document."""
    return {
        **host_info(),
        # 1/5/15-minute load averages when the results are written: other work on the machine skews timings.
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        **code_version(),
    }


def code_version() -> dict[str, Any]:
    """The commit measured, and whether bot/ differed from it (read-only git; None outside a checkout)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    status = git("status", "--porcelain", "--", "bot")
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "bot_uncommitted_changes": bool(status) if status is not None else None,
    }


def host_line(machine: dict[str, Any]) -> str:
    """The start of a report's first line: `<date>, <n> CPU(s) (<model>), <implementation> <version>`."""
    return (
        f"{machine['date']}, {machine['cpus_usable']} CPU(s) ({machine['cpu_model'] or 'unknown CPU'}), "
        f"{machine['implementation']} {machine['python']}"
    )


def machine_line(machine: dict[str, Any]) -> str:
    commit = machine.get("commit") or "unknown commit"
    if machine.get("bot_uncommitted_changes"):
        commit += " with uncommitted changes in bot/"
    return f"{host_line(machine)}, code at {commit}"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks (NumPy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def distribution_ms(seconds: Sequence[float]) -> dict[str, float | int]:
    """n, min, p50, p90, p99, max and mean of `seconds`, in milliseconds."""
    ms = [value * 1000 for value in seconds]
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "min_ms": min(ms),
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms),
        "mean_ms": sum(ms) / len(ms),
    }


def full_collection_ms(samples: int) -> float:
    """The median wall time of `samples` full garbage collections (gc.collect()), in milliseconds."""
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        gc.collect()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: Sequence[str] | None = None) -> str:
    align = align or ["---:"] * len(headers)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def write_results(results_dir: Path, name: str, document: dict[str, Any], report: str) -> None:
    """`<name>.json` (the document) and `<name>.md` (the report) in `results_dir`."""
    write_atomically(results_dir / f"{name}.json", json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    write_atomically(results_dir / f"{name}.md", report)
    log(f"wrote {results_dir / (name + '.json')} and {results_dir / (name + '.md')}")


def run_measurement(measurement: Coroutine[Any, Any, T]) -> T | None:
    """asyncio.run(measurement), or None (after saying so) if it was interrupted: then nothing is written."""
    try:
        return asyncio.run(measurement)
    except (KeyboardInterrupt, asyncio.CancelledError):
        log("stopped before the end; no results written")
        return None


def publish(
    results_dir: Path,
    name: str,
    command: str,
    machine: dict[str, Any],
    report: str,
    sections: dict[str, Any],
    problems: Sequence[str] = (),
) -> int:
    """Print the report, write `<name>.json` ({"benchmark", "command", "machine", **sections}) and `<name>.md`,
    and log each problem as INVALID. The exit status: 1 if there were problems, else 0."""
    print(report)
    document = {"benchmark": name, "command": command, "machine": machine, **sections}
    write_results(results_dir, name, document, report)
    for problem in problems:
        log(f"INVALID: {problem}")
    return 1 if problems else 0


def load_results(results_dir: Path, name: str) -> dict[str, Any] | None:
    path = results_dir / f"{name}.json"
    if not path.exists():
        return None
    document = json.loads(path.read_text(encoding="utf-8"))
    return document if isinstance(document, dict) else None


# ----- comma-separated number options ------------------------------------------------------------------


def number_list(text: str, convert: Callable[[str], N], what: str) -> tuple[N, ...]:
    """`text` ("1,20,50") as numbers; an argparse error naming `what` ("whole numbers") if one is not."""
    try:
        return tuple(convert(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what} separated by commas, got {text!r}") from None


def whole_number(text: str) -> int:
    """int(text), "100_000" allowed."""
    return int(text.replace("_", ""))


def int_list(text: str) -> tuple[int, ...]:
    values = number_list(text, whole_number, "whole numbers")
    if not values or any(value <= 0 for value in values):
        raise argparse.ArgumentTypeError("expected at least one positive number")
    return values


def float_list(text: str) -> tuple[float, ...]:
    values = number_list(text, float, "numbers")
    if not values or any(value < 0 for value in values):
        raise argparse.ArgumentTypeError("expected at least one number, none negative")
    return values
