"""`python -m bot console`: type /roomusers or @roomusers lines and press buttons, against the sandbox."""

from __future__ import annotations

import asyncio

from bot.dev.demo import show, show_replies
from bot.dev.local_stack import LocalStack, local_stack
from bot.dev.slack_standin import StoredMessage, buttons

CONSOLE_HELP = """Type what a Slack user would:
  /roomusers demo-120          the slash command (try demo-1234, demo-hostile, room#1+a&b, demo-empty, help)
  /roomusers demo-1234 li      only users whose ID or name contains "li"; add --reverse for newest first
  @roomusers demo-12           a mention in #ops (answered in a thread)
  2                            press button [2] of the last message
  quit                         leave"""


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
