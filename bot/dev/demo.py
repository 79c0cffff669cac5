"""`make demo`: the real app, driven the way Slack would drive it, on loopback; prints each reply."""

from __future__ import annotations

import sys

from bot.dev.local_stack import LocalStack, local_stack
from bot.dev.slack_standin import StoredMessage, render_message

REPLY_TIMEOUT = 30.0
DEMO_ROOM = "demo-120"


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
