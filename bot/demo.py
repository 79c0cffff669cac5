"""`make demo` and `python -m bot console`: the real app, driven the way Slack would drive it, on loopback."""

from __future__ import annotations

import asyncio
import sys

from bot.local_stack import LocalStack, local_stack
from bot.slack_standin import StoredMessage, buttons, render_message

REPLY_TIMEOUT = 30.0
DEMO_ROOM = "demo-120"
CONSOLE_HELP = """Type what a Slack user would:
  /roomusers demo-120          the slash command (try demo-1234, demo-hostile, room#1+a&b, demo-empty, help)
  /roomusers demo-1234 li      only users whose ID or name contains "li"; add --reverse for newest first
  @roomusers demo-12           a mention in #ops (answered in a thread)
  2                            press button [2] of the last message
  quit                         leave"""


def show(line: str) -> None:
    print(line, flush=True)


def show_message(message: StoredMessage) -> None:
    show(render_message(message, ansi=sys.stdout.isatty()))
    show("")


async def show_replies(local: LocalStack, *, until_final: bool = True) -> StoredMessage:
    """Print the app's messages as they arrive; return the first one that is not the "fetching" ack."""
    while True:
        message = await local.slack.next_message(timeout=REPLY_TIMEOUT)
        show_message(message)
        if not until_final or message.origin != "ack":
            return message


async def run_demo() -> None:
    show("roomusers demo: the real Slack app (HTTP mode), a local ZIM sandbox and a local Slack stand-in.")
    show("No credentials are used; every request below is signed and sent over loopback HTTP.\n")
    async with local_stack() as local:
        show(f"alice in #ops> /roomusers {DEMO_ROOM}")
        ack = await local.slack.send_command(DEMO_ROOM)
        show(f"(acked in {ack.elapsed * 1000:.0f} ms)")
        first = await show_replies(local)

        show("alice clicks [Next ▶]")
        await local.slack.click(first, "roomusers_next")
        await show_replies(local)

        show("alice in #ops> /roomusers demo-1234 li   (only users whose ID or name contains 'li')")
        await local.slack.send_command("demo-1234 li")
        filtered = await show_replies(local)
        show("alice clicks [Next ▶]")
        await local.slack.click(filtered, "roomusers_next")
        await show_replies(local)

        show("alice in #ops> @roomusers demo-hostile")
        await local.slack.mention("demo-hostile")
        await show_replies(local)
    show("Demo finished: command, paging, filter and mention all answered.")


async def run_console() -> None:
    show(CONSOLE_HELP + "\n")
    async with local_stack() as local:
        last: StoredMessage | None = None
        while True:
            try:
                line = (await asyncio.to_thread(input, "you> ")).strip()
            except EOFError:
                break
            if line in ("quit", "exit"):
                break
            try:
                last = await console_step(local, line, last)
            except (LookupError, TimeoutError, ValueError) as problem:
                show(f"(!) {problem}")


async def console_step(local: LocalStack, line: str, last: StoredMessage | None) -> StoredMessage | None:
    if line.isdigit():
        if last is None:
            raise LookupError("there is no message with buttons yet")
        choices = buttons(last)
        index = int(line) - 1
        if not 0 <= index < len(choices):
            raise LookupError(f"that message has buttons 1 to {len(choices)}")
        await local.slack.click(last, choices[index][1])
        return await show_replies(local)
    if line.startswith("/roomusers"):
        await local.slack.send_command(line.removeprefix("/roomusers").strip())
        return await show_replies(local)
    if line.startswith("@roomusers"):
        await local.slack.mention(line.removeprefix("@roomusers").strip())
        return await show_replies(local)
    if line:
        show(CONSOLE_HELP)
    return last
