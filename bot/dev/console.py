"""`python -m bot console`: type /roomusers or @roomusers lines and press buttons, against the sandbox.

Typing never waits for an answer: a watcher prints every message the app posts (acks, progress, late updates,
replacements) and every file it uploads as they arrive, each under a number (`#4`) and labelled with the line
it answers. A bare digit presses a button of the newest answer that has buttons; `#4 2` presses button 2 of
message #4. At the end of input (or `quit`) the console waits up to 30 s for answers still under way.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import aiohttp

from bot.dev.demo import show
from bot.dev.local_stack import LocalStack, local_stack
from bot.dev.slack_standin import StoredMessage, buttons, render_message
from bot.query import printable

WAIT_AT_END_SECONDS = 30.0
QUIET_SECONDS = 0.3  # how long the conversation must stay still before it counts as settled
POLL_SECONDS = 0.05
FILE_PREVIEW_ROWS = 3

CONSOLE_HELP = """Type what a Slack user would:
  /roomusers demo-120          the slash command (try demo-1234, demo-hostile, room#1+a&b, demo-empty, help)
  /roomusers demo-1234 li      only users whose ID or name contains "li"; add --reverse for newest first
  @roomusers demo-12           a mention in #ops (answered in a thread)
  2                            press button [2] of the newest answer with buttons
  #4 2                         press button [2] of message #4
  quit                         leave
(answers appear as they arrive; at the end of input the console waits up to 30 s for answers still coming)"""

_BUTTON = re.compile(r"(?:#(\d+)\s+|(\d+)\.)?(\d+)")  # "2", "#4 2", "4.2"
_SLASH = re.compile(r"/roomusers(?:\s+(.*))?", re.DOTALL)  # a space (or nothing) after the command name
_MENTION = re.compile(r"@roomusers(?:\s+(.*))?", re.DOTALL)


class Console:
    """One console session over a local stack; `run` reads lines until they end."""

    def __init__(self, local: LocalStack, out: Callable[[str], None] = show, *, ansi: bool = False) -> None:
        self._local = local
        self._slack = local.slack
        self._out = out
        self._ansi = ansi
        self._number: dict[str, int] = {}  # message ts -> #N; a replaced message keeps its number
        self._ts: dict[int, str] = {}  # #N -> ts
        self._what: dict[str, str] = {}  # tag -> what the user typed, for labels
        self._latest = ""  # tag of the newest command, mention or click
        self._focus: str | None = None  # ts of the message whose buttons a bare digit presses
        self._files_seen = 0
        self._sends: set[asyncio.Task[None]] = set()
        self._last_change = time.monotonic()
        self._count = itertools.count(1)
        self._tags = itertools.count(1)

    async def run(self, lines: AsyncIterator[str]) -> None:
        watcher = asyncio.create_task(self._watch())
        try:
            async for line in lines:
                if line.strip() in ("quit", "exit"):
                    break
                self.step(line.strip())  # never waits for a reply
            await self._settle(WAIT_AT_END_SECONDS)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            self._print_news()  # anything that arrived in the last instant

    # -- input -------------------------------------------------------------------------------------------

    def step(self, line: str) -> None:
        """Act on one typed line; never waits for the app."""
        if not line:
            return
        if button := _BUTTON.fullmatch(line):
            number = button.group(1) or button.group(2)
            self._press(int(number) if number else None, int(button.group(3)))
        elif command := _SLASH.fullmatch(line):
            tag = self._new_exchange(line)
            self._focus = None
            self._spawn(self._slack.send_command(command.group(1) or "", tag=tag))
        elif line.startswith("/roomusers"):
            word = printable(line.split()[0])
            self._out(f"(!) Slack: {word} is not a valid command. Put a space after /roomusers.")
        elif mention := _MENTION.fullmatch(line):
            tag = self._new_exchange(line)
            self._focus = None
            self._spawn(self._slack.mention(mention.group(1) or "", tag=tag))
        elif line.startswith("@roomusers"):
            word = printable(line.split()[0])
            self._out(f"(!) {word} doesn't mention roomusers; put a space after @roomusers.")
        else:
            self._out(CONSOLE_HELP)

    def _new_exchange(self, what: str) -> str:
        tag = f"x{next(self._tags)}"
        self._what[tag] = what
        self._latest = tag
        return tag

    def _press(self, number: int | None, index: int) -> None:
        if number is None:
            if self._focus is None:
                what = printable(self._what.get(self._latest, ""))
                first = (
                    f"the answer to “{what}” has no buttons (yet)" if what else "there is no message with buttons yet"
                )
                self._out(f"(!) {first}; type #N 2 to press button 2 of message #N")
                return
            ts = self._focus
        elif number in self._ts:
            ts = self._ts[number]
        else:
            self._out(f"(!) there is no message #{number}")
            return
        shown = self._number[ts]
        current = self._slack.message(ts)
        if current is None:
            self._out(f"(!) message #{shown} is gone (deleted)")
            return
        choices = buttons(current)
        if not choices:
            self._out(f"(!) message #{shown} has no buttons")
            return
        if not 1 <= index <= len(choices):
            self._out(f"(!) message #{shown} has buttons 1 to {len(choices)}")
            return
        label, action_id = choices[index - 1]
        tag = self._new_exchange(f"[{label}] on #{shown}")
        self._focus = ts  # after Export, a digit still presses this message's buttons
        self._spawn(self._slack.click(current, action_id, tag=tag))

    def _spawn(self, send: Coroutine[Any, Any, object]) -> None:
        async def run() -> None:
            await send

        task = asyncio.create_task(run())
        self._sends.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sends.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, LookupError | aiohttp.ClientError | TimeoutError):
            self._out(f"(!) {error or type(error).__name__}")
        elif error is not None:  # a console never shows a traceback
            self._out(f"(!) unexpected: {type(error).__name__}: {error}")

    # -- output ------------------------------------------------------------------------------------------

    async def _watch(self) -> None:
        """The only reader of the stand-in's arrivals: prints them as they come."""
        while True:
            try:
                await self._slack.wait_for(lambda: self._slack.has_news(self._files_seen), timeout=3600)
            except TimeoutError:
                continue
            self._print_news()

    def _print_news(self) -> None:
        for message in self._slack.take_arrivals():
            self._print_message(message)
        files = self._slack.files
        for file in files[self._files_seen :]:
            self._print_file(file.filename, file.content, file.channel_id or "")
            self._last_change = time.monotonic()
        self._files_seen = len(files)

    def _tag_of(self, message: StoredMessage) -> str:
        if message.tag:
            return message.tag
        typed = self._slack.message(message.thread_ts) if message.thread_ts else None
        return typed.tag if typed is not None else ""

    def _print_message(self, message: StoredMessage) -> None:
        self._last_change = time.monotonic()
        replaced = message.ts in self._number
        number = self._number.setdefault(message.ts, next(self._count))
        self._ts[number] = message.ts
        header = f"#{number}" + (" (updated)" if replaced else "")
        if message.ephemeral:
            header += " · only you see it"
        tag = self._tag_of(message)
        if tag in self._what:
            late = "late answer" if tag != self._latest else "answer"
            header += f" · {late} to “{printable(self._what[tag])}”"
        choices = buttons(message)
        focused = bool(choices) and tag == self._latest
        if focused:
            self._focus = message.ts
        self._out(header)
        self._out(render_message(message, ansi=self._ansi))
        if focused:
            self._out(f"(type 1–{len(choices)} for these buttons)" if len(choices) > 1 else "(type 1 for this button)")
        self._out("")

    def _print_file(self, filename: str, content: bytes, channel: str) -> None:
        text = content.decode("utf-8-sig", errors="replace")
        rows = text.splitlines()
        name = self._slack.workspace.channel_name(channel)
        where = "in your direct messages with roomusers" if channel.startswith("D") else f"in #{name}"
        users = max(len(rows) - 1, 0)
        self._out(f"📎 {printable(filename)} · {users:,} {'user' if users == 1 else 'users'} · {where}")
        for row in rows[: FILE_PREVIEW_ROWS + 1]:
            self._out("   " + printable(row))
        if len(rows) > FILE_PREVIEW_ROWS + 1:
            self._out(f"   … ({len(rows) - FILE_PREVIEW_ROWS - 1:,} more rows)")
        self._out("")

    # -- the end -----------------------------------------------------------------------------------------

    def _settled(self) -> bool:
        return (
            not self._sends
            and len(self._local.pending) == 0
            and not self._slack.has_news(self._files_seen)
            and time.monotonic() - self._last_change >= QUIET_SECONDS
        )

    async def _settle(self, limit: float) -> None:
        """Wait until nothing is under way and the conversation has been still for QUIET_SECONDS."""
        deadline = time.monotonic() + limit
        while not self._settled():
            if time.monotonic() >= deadline:
                busy = len(self._sends) + len(self._local.pending)
                self._out(f"(!) still waiting for {busy} answer(s) after {limit:.0f} s; leaving.")
                return
            await asyncio.sleep(POLL_SECONDS)  # a poll for the condition above, not a wait standing in for it


async def _lines() -> AsyncIterator[str]:
    """Typed lines until end of input; on a pipe each line is echoed, so the transcript reads in order."""
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            print("you> ", end="", flush=True)
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return
        if not interactive:
            show(f"you> {line.rstrip()}")
        yield line.rstrip("\n")


async def run_console() -> None:
    show(CONSOLE_HELP + "\n")
    async with local_stack() as local:
        await Console(local, ansi=sys.stdout.isatty()).run(_lines())
