"""Helpers shared by the benchmark modules: machine description, percentiles, Markdown tables, result files."""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    """Progress goes to stderr; stdout is kept for the result table."""
    print(message, file=sys.stderr, flush=True)


def machine_info() -> dict[str, Any]:
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


def machine_line(machine: dict[str, Any]) -> str:
    commit = machine.get("commit") or "unknown commit"
    if machine.get("bot_uncommitted_changes"):
        commit += " with uncommitted changes in bot/"
    return (
        f"{machine['date']}, {machine['cpus_usable']} CPU(s) ({machine['cpu_model'] or 'unknown CPU'}), "
        f"{machine['implementation']} {machine['python']}, code at {commit}"
    )


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


def load_results(results_dir: Path, name: str) -> dict[str, Any] | None:
    path = results_dir / f"{name}.json"
    if not path.exists():
        return None
    document = json.loads(path.read_text(encoding="utf-8"))
    return document if isinstance(document, dict) else None
