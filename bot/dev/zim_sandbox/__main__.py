"""`python -m bot.dev.zim_sandbox [--host H] [--port 8710] [--latency-ms 0]`: serve a ZIM sandbox until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from bot.cli import milliseconds
from bot.dev.zim_sandbox.server import DEFAULT_HOST, DEFAULT_PORT, run_sandbox


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.dev.zim_sandbox", description=__doc__, allow_abbrev=False)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--latency-ms", type=milliseconds, default=0.0, help="simulated latency per answer")
    args = parser.parse_args(argv)
    # run_sandbox handles SIGINT itself; this only hides the traceback of a Ctrl-C during startup.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_sandbox(args.host, args.port, latency_ms=args.latency_ms))


if __name__ == "__main__":
    main()
