"""Benchmarks for roomusers, run against the local ZIM sandbox (never a real ZIM service).

Each public module here (not starting with `_`) is a benchmark: runnable as `python -m benchmarks.<name>`,
exposing `main(argv) -> int` and accepting `--quick`. `python -m benchmarks.run_all` (`make bench`) runs
them all. Results go to benchmarks/results/<name>.json and <name>.md.
"""
