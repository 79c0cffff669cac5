"""The `roomusers` / `python -m bot` command line: argument parsing, and which command runs.

The dev tools (demo, console, sandbox) are imported only when asked for, so `serve` and `query` never load them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.observability.logs import configure_logging, log_format
from bot.query import MemberQuery, Output, QueryRequest, run_member_query, run_query
from bot.roster.model import Roster
from bot.roster.view import FILTER_TOO_LONG, MAX_FILTER_CHARS
from bot.settings import PROFILE_NAME, ConfigError, load_dotenv_file, log_level, parse_cli_port
from bot.zim import ZimError, validate_room_id
from bot.zim.errors import InvalidUserIds
from bot.zim.members import validate_user_ids

# Exit statuses (README lists them): 0 a complete list was printed.
EXIT_FAILED = 1  # ZIM failed (or could not be reached)
EXIT_BAD_INPUT = 2  # bad input or settings
EXIT_INCOMPLETE = 3  # a list was printed, but it is not the whole room (it says why)

DESCRIPTION = "roomusers: see who is in a ZEGOCLOUD ZIM room."
EPILOG = """examples:
  python -m bot demo                          a scripted Slack conversation on the sandbox (no credentials)
  python -m bot console                       type /roomusers or @roomusers lines yourself (no credentials)
  python -m bot serve                         run the Slack app in Socket Mode
  python -m bot serve --http --port 3000      run it over HTTP (POST /slack/events, GET /healthz, /readyz)
  python -m bot sandbox                       run a local ZIM stand-in and print its credentials
  python -m bot query demo-120                list a room's users as a table
  python -m bot query 'room#1+a&b' --json     the same as one JSON object
  python -m bot query demo-1234 li -r         users whose ID or name contains "li", most recent first
  python -m bot query demo-120 --csv > demo-120.csv    the Slack export's CSV (UTF-8 with BOM)
  python -m bot query lobby --app staging     a room of another configured ZEGO app
  python -m bot query lobby --member u1,u2    which of these users are in the room (--json too)
  exit status of query: 0 complete, 3 an incomplete list was printed (it says why), 1 ZIM failed,
  2 bad input or settings

in Slack:
  /roomusers <room-id>                        the room's users, 20 a page, with buttons
  /roomusers <room-id> <text>                 only users whose ID or name contains <text>, e.g. /roomusers lobby-1 anna
                                              (ignoring case, accents, curly quotes and invisible characters)
  /roomusers <room-id> --reverse              most recent joiners first (-r, before or after the room ID)
  /roomusers <room-id> --app <profile>        read the room from another configured ZEGO app (any case)
  /roomusers <room-id> --changes              who joined and who left since the room's last complete read
  /roomusers <room-id> --member U1,U2         which of these users (up to 10) are in the room now
  /roomusers --room help                      a room whose ID is a word roomusers uses itself (help, ?)
  /roomusers lobby -- -5                      put -- before filter text that starts with a dash
  /roomusers help                             every form, with examples
  @roomusers <room-id> [same options]         the same, answered in the mention's thread for the channel
  buttons under an answer: Prev/Next, Newest/Oldest first, Refresh, Export CSV, Share in channel, What changed

settings come from the environment or a .env file in the working directory (see .env.example and README.md):
ZEGO_APP_ID, ZEGO_SERVER_SECRET, ZEGO_API_BASE_URL or ZEGO_REGION, ZEGO_QPS, ZEGO_PROFILES, SLACK_BOT_TOKEN,
SLACK_APP_TOKEN, SLACK_SIGNING_SECRET, ROOMUSERS_ALLOWED_CHANNELS/USERS/USERGROUPS, ROOMUSERS_ALLOW_EXTERNAL,
ROOMUSERS_USER_RATE, ROOMUSERS_MAX_CONCURRENT_READS, ROOMUSERS_READ_DEADLINE_SECONDS, ROOMUSERS_REFRESH_MIN_SECONDS,
REDIS_URL, METRICS_PORT (/healthz, /readyz, /metrics), LOG_LEVEL."""


QUERY_DESCRIPTION = "List every user in a ZIM room, as a table, JSON or CSV."
QUERY_EPILOG = """The filter matches as in Slack: users whose ID or name contains FILTER (ignoring case, accents, curly
quotes and invisible characters). Options may come anywhere on the line; put -- before a filter that starts
with a dash. On a terminal a progress bar is drawn on stderr while a big room is read.

exit status: 0 the whole room was printed; 3 a list was printed but it is incomplete (the room changed or is
being destroyed while it was read; the output says why, and so does one sentence on stderr); 1 ZIM failed;
2 bad input or settings

examples:
  {prog} query demo-1234 li -r             users matching "li", most recent first
  {prog} query -r demo-120                 -r before the room works too
  {prog} query demo-120 --csv > demo.csv   the Slack export's CSV: user_id,user_name, UTF-8 with BOM
  {prog} query lobby --app staging         a room of the profile staging (ZEGO_PROFILES; any case)
  {prog} query lobby -- -5                 users whose ID or name contains -5
  {prog} query lobby --member u1,u2 --json which of u1 and u2 are in the room: {{"room_id", "in", "not_in"}}"""


def program_name() -> str:
    """`roomusers` when run as the installed script, `python -m bot` otherwise."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return "python -m bot" if name in ("__main__.py", "-m", "-c", "") else name


def milliseconds(raw: str) -> float:
    """argparse type for --latency-ms: a finite number, 0 or more."""
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError("must be a number of milliseconds, 0 or more (such as 100)")
    return value


def _add_query_arguments(query: argparse.ArgumentParser) -> None:
    query.add_argument("room_id", metavar="ROOM")
    query.add_argument("filter", nargs="*", metavar="FILTER", help="only users whose ID or name contains this")
    query.add_argument("-r", "--reverse", action="store_true", help="most recent joiners first")
    query.add_argument("--app", metavar="NAME", default="", help="a profile named in ZEGO_PROFILES (any case)")
    query.add_argument(
        "--member",
        metavar="USER_ID[,USER_ID...]",
        action="append",
        default=None,
        help="only say which of these users (up to 10; repeatable) are in the room: one QueryRoomMembers request",
    )
    output = query.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    output.add_argument("--csv", action="store_true", help="print the Slack export's CSV (UTF-8 with BOM)")


def build_query_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """`query` on its own parser, so options can come anywhere (parse_intermixed_args refuses subparsers)."""
    prog = prog or program_name()
    query = argparse.ArgumentParser(
        prog=f"{prog} query",
        allow_abbrev=False,
        description=QUERY_DESCRIPTION,
        epilog=QUERY_EPILOG.format(prog=prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_query_arguments(query)
    return query


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    prog = prog or program_name()
    parser = argparse.ArgumentParser(
        prog=prog,
        description=DESCRIPTION,
        epilog=EPILOG.replace("python -m bot", prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # Listed here for --help; main() parses `query` with build_query_parser.
    query = commands.add_parser("query", help="list every user in a ZIM room", allow_abbrev=False)
    _add_query_arguments(query)

    serve = commands.add_parser("serve", help="run the Slack app (Socket Mode by default)", allow_abbrev=False)
    serve.add_argument("--http", action="store_true", help="serve Slack's requests over HTTP at POST /slack/events")
    serve.add_argument("--host", default="0.0.0.0", help="HTTP mode: address to listen on (default 0.0.0.0)")  # noqa: S104
    # A string, checked by parse_cli_port: a bad port is one sentence (exit 2), not argparse's usage text.
    serve.add_argument("--port", default="3000", help="HTTP mode: port (default 3000)")

    commands.add_parser(
        "demo", help="play a short Slack conversation against the sandbox; needs no credentials", allow_abbrev=False
    )
    commands.add_parser(
        "console", help="talk to the app interactively against the sandbox; needs no credentials", allow_abbrev=False
    )

    sandbox = commands.add_parser(
        "sandbox", help="run the local ZIM sandbox (a stand-in for ZIM's API)", allow_abbrev=False
    )
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8710)
    sandbox.add_argument("--latency-ms", type=milliseconds, default=0.0, help="added to every answer")
    return parser


def fail(message: str, code: int) -> None:
    print(f"roomusers: {message}", file=sys.stderr)
    raise SystemExit(code)


def _check_app(args: argparse.Namespace) -> None:
    if args.app and not PROFILE_NAME.fullmatch(args.app):
        raise ConfigError("--app must name a profile: 1 to 32 letters, digits, - or _, such as staging.")


def _query_request(args: argparse.Namespace) -> QueryRequest:
    """The parsed `query` line, checked before any network call (raises ValueError/ConfigError)."""
    validate_room_id(args.room_id)
    filter_text = " ".join(" ".join(args.filter).split())
    if len(filter_text) > MAX_FILTER_CHARS:
        raise ConfigError(FILTER_TOO_LONG.format(length=len(filter_text)))
    _check_app(args)
    output: Output = "json" if args.json else "csv" if args.csv else "table"
    return QueryRequest(args.room_id, filter_text, newest_first=args.reverse, profile=args.app, output=output)


def _member_query(args: argparse.Namespace) -> MemberQuery:
    """`query ROOM --member A,B`: checked before any network call (raises ValueError/ConfigError)."""
    validate_room_id(args.room_id)
    if args.filter or args.reverse or args.csv:
        raise ConfigError("--member takes no filter, --reverse or --csv: it says which users are in the room.")
    _check_app(args)
    asked = [user_id for value in args.member for user_id in value.split(",") if user_id]
    try:
        user_ids = validate_user_ids(asked)
    except InvalidUserIds as error:
        raise ConfigError(f"--member: {error}") from None
    return MemberQuery(args.room_id, user_ids, profile=args.app, json=args.json)


def exit_for(roster: Roster) -> None:
    """After printing: exit 3 when the printed list is incomplete (every printing command uses this)."""
    if not roster.complete:
        raise SystemExit(EXIT_INCOMPLETE)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = program_name()
    if argv[:1] == ["query"]:
        args = build_query_parser(prog).parse_intermixed_args(argv[1:])
        args.command = "query"
    else:
        args = build_parser(prog).parse_args(argv)
    load_dotenv_file()
    try:
        # The demo and console print a conversation; their logs stay quiet unless LOG_LEVEL asks otherwise.
        quiet = args.command in ("demo", "console") and "LOG_LEVEL" not in os.environ
        level = logging.WARNING if quiet else log_level()
        configure_logging(level, log_format())
        if args.command == "query" and args.member is not None:
            asyncio.run(run_member_query(_member_query(args)))
        elif args.command == "query":
            roster = asyncio.run(run_query(_query_request(args)))
            exit_for(roster)
        elif args.command == "serve":
            from bot.serve import serve

            asyncio.run(serve(http=args.http, host=args.host, port=parse_cli_port(args.port)))
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
