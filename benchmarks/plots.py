"""PNG plots of the benchmark results for docs/performance.md: `python -m benchmarks.plots`.

Reads benchmarks/results/<name>.json (whatever is there; a missing file skips its plot) and writes
docs/img/<name>.png with matplotlib's Agg backend (no display needed). run_all runs it after every benchmark.
Needs matplotlib: `.venv/bin/pip install -e '.[bench]'` (what `make bench` does).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from benchmarks._common import RESULTS_DIR, load_results, log

OUT_DIR = Path(__file__).resolve().parent.parent / "docs" / "img"
DPI = 130
TARGET_STYLE: dict[str, Any] = {"color": "#c0392b", "linestyle": "--", "linewidth": 1.6}
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf")


def thousands(value: float, _: object = None) -> str:
    return f"{value:,.0f}"


def subtitle(document: dict[str, Any]) -> str:
    machine = document["machine"]
    return f"{machine['cpus_usable']} CPUs, {machine['implementation']} {machine['python']}, {machine['date'][:10]}"


def new_figure(title: str, document: dict[str, Any], size: tuple[float, float] = (8.0, 4.8)) -> tuple[Figure, Axes]:
    figure, axes = plt.subplots(figsize=size, dpi=DPI)
    figure.suptitle(title, fontsize=12, fontweight="bold")
    axes.set_title(subtitle(document), fontsize=8.5, color="#555555")
    axes.grid(True, which="major", alpha=0.35)
    return figure, axes


def save(figure: Figure, out_dir: Path, name: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.png"
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


# ----- one function per plot ---------------------------------------------------------------------------


def plot_fetch_speed(document: dict[str, Any], out_dir: Path) -> Path:
    figure, axes = new_figure("Whole-room fetch time ÷ floor, by room size and RTT", document)
    results = document["results"]
    rtts = sorted({row["rtt_ms"] for row in results})
    for colour, rtt in zip(COLOURS, rtts, strict=False):
        rows = sorted((row for row in results if row["rtt_ms"] == rtt), key=lambda row: row["users"])
        users = [row["users"] for row in rows]
        ratios = [row["fetch_over_floor"] for row in rows]
        axes.plot(users, ratios, marker="o", color=colour, label=f"{rtt:g} ms RTT (in process)")
    target = document.get("floor_target") or {"factor": 1.15, "rtt_ms": 100.0}
    for row in results:  # values only for the target's RTT: the other lines' labels would overlap (see the table)
        if row["rtt_ms"] == target["rtt_ms"]:
            xy = (row["users"], row["fetch_over_floor"])
            axes.annotate(f"{xy[1]:.2f}", xy, textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    axes.axhline(target["factor"], **TARGET_STYLE, label=f"target at {target['rtt_ms']:g} ms: {target['factor']:g}×")
    axes.axhline(1.0, color="#333333", linewidth=1.0, label="floor = max(pages ÷ QPS, pages × RTT ÷ 2)")
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(FuncFormatter(thousands))
    axes.set_xlabel("users in the room (log scale)")
    axes.set_ylabel("fetch time ÷ floor")
    top = max(row["fetch_over_floor"] for row in results)
    bottom = min(row["fetch_over_floor"] for row in results)
    axes.set_ylim(min(0.9, bottom - 0.05), max(1.5, top * 1.12))
    axes.legend(fontsize=8, loc="upper right")
    return save(figure, out_dir, "fetch_speed")


def plot_first_answer(document: dict[str, Any], out_dir: Path) -> Path:
    figure, axes = new_figure(
        f"Time to first answer vs room size ({document['settings']['rtt_ms']:g} ms ZIM RTT)", document
    )
    rows = sorted(document["results"], key=lambda row: row["users"])
    users = [row["users"] for row in rows]
    p50 = [row["first_answer"]["p50_ms"] for row in rows]
    low = [row["first_answer"]["p50_ms"] - row["first_answer"]["min_ms"] for row in rows]
    high = [row["first_answer"]["max_ms"] - row["first_answer"]["p50_ms"] for row in rows]
    axes.errorbar(
        users, p50, yerr=[low, high], marker="o", capsize=4, color=COLOURS[0], label="first answer: median, min–max"
    )
    axes.plot(
        users, [row["zim_round_trip_ms"] for row in rows], marker=".", color="#7f7f7f", label="one ZIM round trip"
    )
    axes.plot(users, [row["target_ms"] for row in rows], **TARGET_STYLE, label="target: one ZIM round trip + 100 ms")
    axes.plot(users, [row["ack"]["p50_ms"] for row in rows], marker="s", color=COLOURS[2], label="ack (median)")
    for x, y in zip(users, p50, strict=True):
        axes.annotate(f"{y:.0f} ms", (x, y), textcoords="offset points", xytext=(8, -12), fontsize=7.5)
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(FuncFormatter(thousands))
    axes.set_xlabel("users in the room (log scale)")
    axes.set_ylabel("milliseconds after sending the command")
    axes.set_ylim(0, max(row["target_ms"] for row in rows) * 1.25)
    axes.legend(fontsize=8, loc="upper left", ncols=2)
    return save(figure, out_dir, "first_answer")


def plot_ack_latency(document: dict[str, Any], out_dir: Path) -> Path:
    figure, axes = new_figure("Ack latency vs /roomusers commands sent at once", document)
    results = document["results"]
    cases = list(dict.fromkeys(row["case"] for row in results))
    styles = {0: "-", 1: "--"}
    app_cases = [case for case in cases if not case.startswith(("bare", "app in the benchmark's process, after"))]
    for index, case in enumerate(app_cases):
        rows = sorted((row for row in results if row["case"] == case), key=lambda row: row["concurrency"])
        levels = [row["concurrency"] for row in rows]
        for colour, key in ((COLOURS[0], "p50_ms"), (COLOURS[1], "p99_ms")):
            values = [row["ack"][key] for row in rows]
            axes.plot(
                levels,
                values,
                marker="o",
                linestyle=styles.get(index, ":"),
                color=colour,
                label=f"{key[:3]}, {case}",
            )
            for x, y in zip(levels, values, strict=True):
                if x == min(levels):
                    continue  # the N=1 values sit on top of each other; the table has them
                shift = (-30, -12) if index == 0 else (7, -10)  # own process left of the point, in process right
                axes.annotate(f"{y:.1f}", (x, y), textcoords="offset points", xytext=shift, fontsize=7, color=colour)
        axes.scatter(
            levels,
            [row["ack"]["max_ms"] for row in rows],
            marker="^",
            color=COLOURS[3],
            s=18,
            label=f"max, {case}" if index == 0 else None,
        )
    frozen = [row for row in results if row["case"].startswith("app in the benchmark's process, after")]
    if frozen:
        label = "p99, in the benchmark's process after gc.freeze()"
        xs, ys = [row["concurrency"] for row in frozen], [row["ack"]["p99_ms"] for row in frozen]
        axes.scatter(xs, ys, marker="*", s=90, color=COLOURS[2], zorder=3, label=label)
    bare = sorted((row for row in results if row["case"].startswith("bare")), key=lambda row: row["concurrency"])
    if bare:
        axes.plot(
            [row["concurrency"] for row in bare],
            [row["ack"]["p99_ms"] for row in bare],
            marker=".",
            linestyle=":",
            color="#7f7f7f",
            label="p99, stand-in → bare aiohttp handler (no app)",
        )
    target = document["target"]
    axes.axhline(
        target["p99_ms"], **TARGET_STYLE, label=f"target: p99 ≤ {target['p99_ms']:g} ms at {target['concurrency']}"
    )
    levels = sorted({row["concurrency"] for row in results})
    axes.set_xticks(levels)
    axes.set_xlabel("commands sent at once")
    axes.set_ylabel("ack latency, ms")
    axes.set_ylim(0, max(max(row["ack"]["max_ms"] for row in results), target["p99_ms"]) * 1.15)
    axes.legend(fontsize=7, loc="upper left")
    return save(figure, out_dir, "ack_latency")


def plot_memory(document: dict[str, Any], out_dir: Path) -> Path:
    figure, axes = new_figure(
        f"Memory per cached user ({document['settings']['users']:,}-user roster)", document, size=(8.5, 5.2)
    )
    bars: list[tuple[str, float, str]] = []
    for row in document["layouts"]:
        today = "today" in row["layout"]
        label = row["layout"].replace(" as bot.zim.models builds it today", " today")
        bars.append((label, row["bytes_per_user"], COLOURS[0] if today else "#9db4cc"))
    bars.append(
        (
            "fetch + MemorySnapshotStore\n(tracemalloc, the measurement)",
            document["tracemalloc"]["bytes_per_user"],
            COLOURS[0],
        )
    )
    bars.append(("same, RSS growth\n(second roster)", document["rss"]["second_bytes_per_user"], "#7fb3d5"))
    for row in document.get("redis") or []:
        bars.append((f"Redis MEMORY USAGE\n({row['names']})", row["bytes_per_user"], COLOURS[1]))
    labels = [label for label, _, _ in bars]
    values = [value for _, value, _ in bars]
    positions = range(len(bars))
    axes.barh(list(positions), values, color=[colour for _, _, colour in bars])
    for y, value in zip(positions, values, strict=True):
        axes.annotate(f"{value:.1f}", (value, y), textcoords="offset points", xytext=(4, -3), fontsize=8)
    target = document["target"]["bytes_per_user"]
    axes.axvline(target, **TARGET_STYLE, label=f"target: ≤ {target:g} bytes per user")
    axes.set_yticks(list(positions), labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("bytes per user")
    axes.set_xlim(0, max(*values, target) * 1.15)
    axes.legend(fontsize=8, loc="lower right")
    return save(figure, out_dir, "memory")


def plot_click_latency(document: dict[str, Any], out_dir: Path) -> Path:
    figure, axes = new_figure("Paging click (Next) to replaced message, warm snapshot", document)
    rows = document["results"]
    labels = [f"{'in process' if row['store'] == 'memory' else 'Redis'}\n{row['users']:,} users" for row in rows]
    width = 0.38
    for offset, colour, key in ((-width / 2, COLOURS[0], "p50_ms"), (width / 2, COLOURS[1], "p99_ms")):
        values = [row["click_to_replaced_message"][key] for row in rows]
        xs = [index + offset for index in range(len(rows))]
        axes.bar(xs, values, width=width, color=colour, label=key.replace("_ms", ""))
        for x, value in zip(xs, values, strict=True):
            text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
            axes.annotate(text, (x, value), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=8)
    axes.set_xticks(range(len(rows)), labels, fontsize=8.5)
    axes.set_ylabel("milliseconds")
    axes.legend(fontsize=8)
    return save(figure, out_dir, "click_latency")


def plot_render_cpu(document: dict[str, Any], out_dir: Path) -> Path:
    figure, axes = new_figure("CPU time to render one page of 20 users (roster_message)", document, size=(8.5, 4.2))
    rows = document["results"]
    values = [row["cpu_ms_per_page"] for row in rows]
    positions = range(len(rows))
    axes.barh(list(positions), values, color=[COLOURS[0]] + [COLOURS[1]] * (len(rows) - 1))
    for y, value in zip(positions, values, strict=True):
        axes.annotate(f"{value:.3g} ms", (value, y), textcoords="offset points", xytext=(4, -3), fontsize=8)
    axes.set_yticks(list(positions), [row["case"] for row in rows], fontsize=8)
    axes.invert_yaxis()
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.set_xlim(min(values) / 2, max(values) * 8)
    axes.set_xlabel("CPU ms per page (log scale)")
    return save(figure, out_dir, "render_cpu")


PLOTS: dict[str, Callable[[dict[str, Any], Path], Path]] = {
    "fetch_speed": plot_fetch_speed,
    "first_answer": plot_first_answer,
    "ack_latency": plot_ack_latency,
    "click_latency": plot_click_latency,
    "memory": plot_memory,
    "render_cpu": plot_render_cpu,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plots", description=__doc__.split("\n")[0])
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    parser.add_argument("--quick", action="store_true", help="ignored (run_all passes it to every module)")
    args = parser.parse_args(argv)
    failed = 0
    for name, plot in PLOTS.items():
        document = load_results(args.results_dir, name)
        if document is None:
            log(f"{name}: no {args.results_dir / (name + '.json')}; plot skipped")
            continue
        try:
            path = plot(document, args.out_dir)
        except (KeyError, TypeError, ValueError) as error:  # a results file from another version
            log(f"{name}: cannot plot ({type(error).__name__}: {error})")
            failed += 1
            continue
        log(f"{name}: wrote {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
