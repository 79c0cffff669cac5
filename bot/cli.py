"""The `roomusers` / `python -m bot` command line: argument parsing, and which command runs.

The dev tools (demo, console, sandbox) are imported only when asked for, so `serve` and `query` never load them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from bot.observability.logs import configure_logging, log_format
from bot.query import run_query
from bot.roster.model import Roster
from bot.settings import ConfigError, load_dotenv_file, log_level
from bot.zim import ZimError, validate_room_id

# Exit statuses (README lists them): 0 a complete list was printed.
EXIT_FAILED = 1  # ZIM failed (or could not be reached)
EXIT_BAD_INPUT = 2  # bad input or settings
EXIT_INCOMPLETE = 3  # a list was printed, but it is not the whole room (it says why)

DESCRIPTION = "roomusers: see who is in a ZEGOCLOUD ZIM room."
EPILOG = """examples:
  python -m bot demo                          a scripted Slack conversation on the sandbox (no credentials)
  python -m bot console                       type /roomusers or @roomusers lines yourself (no credentials)
  python -m bot serve                         run the Slack app in Socket Mode
  python -m bot serve --http --port 3000      run it over HTTP (POST /slack/events, GET /healthz)
  python -m bot sandbox                       run a local ZIM stand-in and print its credentials
  python -m bot query demo-120                list a room's users as a table
  python -m bot query 'room#1+a&b' --json     the same as one JSON object
  python -m bot query demo-1234 --reverse     most recent joiners first
  exit status of query: 0 complete, 3 an incomplete list was printed (it says why), 1 ZIM failed,
  2 bad input or settings

in Slack:
  /roomusers <room-id>                        the room's users, 20 a page, with buttons
  /roomusers <room-id> <text>                 only users whose ID or name contains <text>, e.g. /roomusers lobby-1 anna
  /roomusers <room-id> --reverse              most recent joiners first
  /roomusers <room-id> --app <profile>        read the room from another configured ZEGO app, e.g. --app staging
  /roomusers help                             every form, with examples
  @roomusers <room-id> [same options]         the same, answered in the mention's thread for the channel
  buttons under an answer: Prev/Next, Newest/Oldest first, Refresh, Export CSV, Share in channel

settings come from the environment or .env (see .env.example and README.md): ZEGO_APP_ID, ZEGO_SERVER_SECRET,
ZEGO_API_BASE_URL or ZEGO_REGION, ZEGO_QPS, ZEGO_PROFILES, SLACK_BOT_TOKEN, SLACK_APP_TOKEN, SLACK_SIGNING_SECRET,
ROOMUSERS_ALLOWED_CHANNELS/USERS/USERGROUPS, LOG_LEVEL."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    query = commands.add_parser("query", help="list every user in a ZIM room")
    query.add_argument("room_id", metavar="ROOM_ID")
    query.add_argument("--reverse", action="store_true", help="most recent joiners first")
    query.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    serve = commands.add_parser("serve", help="run the Slack app (Socket Mode by default)")
    serve.add_argument("--http", action="store_true", help="serve Slack's requests over HTTP at POST /slack/events")
    serve.add_argument("--host", default="0.0.0.0", help="HTTP mode: address to listen on (default 0.0.0.0)")  # noqa: S104
    serve.add_argument("--port", type=int, default=3000, help="HTTP mode: port (default 3000)")

    commands.add_parser("demo", help="play a short Slack conversation against the sandbox; needs no credentials")
    commands.add_parser("console", help="talk to the app interactively against the sandbox; needs no credentials")

    sandbox = commands.add_parser("sandbox", help="run the local ZIM sandbox (a stand-in for ZIM's API)")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8710)
    sandbox.add_argument("--latency-ms", type=float, default=0.0, help="added to every answer")
    return parser


def fail(message: str, code: int) -> None:
    print(f"roomusers: {message}", file=sys.stderr)
    raise SystemExit(code)


def exit_for(roster: Roster) -> None:
    """After printing: exit 3 when the printed list is incomplete (every printing command uses this)."""
    if not roster.complete:
        raise SystemExit(EXIT_INCOMPLETE)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    load_dotenv_file()
    try:
        # The demo and console print a conversation; their logs stay quiet unless LOG_LEVEL asks otherwise.
        quiet = args.command in ("demo", "console") and "LOG_LEVEL" not in os.environ
        level = logging.WARNING if quiet else log_level()
        configure_logging(level, log_format())
        if args.command == "query":
            validate_room_id(args.room_id)
            roster = asyncio.run(run_query(args.room_id, newest_first=args.reverse, as_json=args.json))
            exit_for(roster)
        elif args.command == "serve":
            from bot.serve import serve

            asyncio.run(serve(http=args.http, host=args.host, port=args.port))
        elif args.command == "demo":
            from bot.dev.demo import run_demo

            asyncio.run(run_demo())
        elif args.command == "console":
            from bot.dev.console import run_console

            asyncio.run(run_console())
        elif args.command == "sandbox":
            from bot.dev.zim_sandbox import run_sandbox

            asyncio.run(run_sandbox(args.host, args.port, latency_ms=args.latency_ms))
    except ConfigError as error:
        fail(str(error), EXIT_BAD_INPUT)
    except ValueError as error:  # InvalidRoomId
        fail(str(error), EXIT_BAD_INPUT)
    except ZimError as error:
        fail(str(error), EXIT_FAILED)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
