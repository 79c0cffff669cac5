"""`python -m bot console` as a user runs it: a subprocess driven through its standard input."""

from __future__ import annotations

import asyncio
import os
import re
import sys

import pytest

EXPECT_TIMEOUT = 30.0
FINISH_TIMEOUT = 60.0


class ConsoleProcess:
    """The console in a subprocess; `send` types a line, `expect` reads stdout until a pattern appears."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.out = ""
        self._position = 0  # where the previous expect's match ended

    @classmethod
    async def start(cls) -> ConsoleProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ZEGO_", "SLACK_", "LOG_LEVEL"))}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "console",
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def send(self, *lines: str) -> None:
        assert self.process.stdin is not None
        for line in lines:
            self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def expect(self, pattern: str, timeout: float = EXPECT_TIMEOUT) -> re.Match[str]:  # noqa: ASYNC109
        """Read stdout until `pattern` matches what was printed after the previous expect's match."""
        assert self.process.stdout is not None
        compiled = re.compile(pattern)
        async with asyncio.timeout(timeout):
            while (found := compiled.search(self.out, self._position)) is None:
                chunk = await self.process.stdout.read(4096)
                if not chunk:
                    raise AssertionError(f"console ended before {pattern!r} appeared:\n{self.out}")
                self.out += chunk.decode()
        self._position = found.end()
        return found

    async def finish(self) -> tuple[int, str, str]:
        """Close stdin (end of input) and wait for the console to exit by itself."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        stdout, stderr = await asyncio.wait_for(self.process.communicate(), FINISH_TIMEOUT)
        self.out += stdout.decode()
        assert self.process.returncode is not None
        return self.process.returncode, self.out, stderr.decode()


@pytest.fixture
async def console():
    running = await ConsoleProcess.start()
    yield running
    if running.process.returncode is None:
        running.process.kill()
        await running.process.wait()


def assert_clean(out: str, err: str) -> None:
    for text in (out, err):
        assert "condition still false" not in text
        assert "Traceback" not in text


async def test_ack_only_replies_do_not_hang(console: ConsoleProcess):
    await console.send("help", "/roomusers help", "/roomusers", "/roomusers bad/room", "/roomusers demo-12 --bogus")
    code, out, err = await console.finish()
    assert code == 0
    # Nothing is under way after an ack-only reply, so the end of input waits for nothing: no "still waiting"
    # (and, unlike before, no 30 s wait per reply ending in the stand-in's "condition still false").
    assert "still waiting" not in out
    assert out.count("How to use roomusers") >= 3  # /roomusers help, /roomusers, and the unknown option
    assert "#4 2" in out  # the console's own help
    assert "is not a valid room ID" in out
    assert "Unknown option `--bogus`" in out
    assert_clean(out, err)


async def test_late_updates_keep_their_own_message_and_buttons(console: ConsoleProcess):
    await console.send("@roomusers load-20000", "/roomusers demo-12")
    await console.expect(r"#(\d+) · only you see it · (?:late )?answer to “/roomusers demo-12”\n[^#]*Room demo-12")
    await console.expect(r"\(type 1–4 for these buttons\)")
    await console.send("1")  # ⇅ Newest first of demo-12, whatever load-20000 posts meanwhile
    shown = await console.expect(r"#\d+ \(updated\)[^\n]*answer to “\[⇅ Newest first\] on #\d+”\n[^#]*?\n\n")
    assert "Room demo-12" in shown.group(0)
    assert "most recent first" in shown.group(0)
    code, out, err = await console.finish()
    assert code == 0
    assert "late answer to “@roomusers load-20000”" in out
    assert re.search(r"answer to “@roomusers load-20000”\n[^#]*20,000 users\* in this room", out)
    for block in re.split(r"\n(?=#\d+)", out):
        if "Room load-20000" in block:
            assert "most recent first" not in block
            assert "[⇅ Newest first]" not in block.splitlines()[0]
    assert_clean(out, err)


async def test_export_shows_the_file_and_keeps_the_buttons(console: ConsoleProcess):
    await console.send("/roomusers demo-12")
    await console.expect(r"\(type 1–4 for these buttons\)")
    await console.send("3")  # ⬇ Export CSV
    await console.expect(r"📎 roomusers-demo-12-\d{8}-\d{6}Z\.csv · 12 users · in your direct messages")
    await console.expect(r"user_id,user_name\n")
    await console.send("1")  # still the answer's first button
    await console.expect(r"most recent first")
    code, out, err = await console.finish()
    assert code == 0
    assert "has buttons 1 to 0" not in out
    assert "has no buttons" not in out
    assert_clean(out, err)


async def test_command_needs_a_space(console: ConsoleProcess):
    await console.send("/roomusersdemo-12", "@roomusersdemo-12")
    code, out, err = await console.finish()
    assert code == 0
    assert "(!) Slack: /roomusersdemo-12 is not a valid command. Put a space after /roomusers." in out
    assert "(!) @roomusersdemo-12 doesn't mention roomusers; put a space after @roomusers." in out
    assert "Fetching" not in out
    assert not re.search(r"^#\d+", out, re.MULTILINE)  # the app never got anything
    assert_clean(out, err)


async def test_end_of_input_waits_for_answers_in_flight(console: ConsoleProcess):
    await console.send("/roomusers load-20000")
    code, out, err = await console.finish()
    assert code == 0
    assert "*20,000 users* in this room" in out
    assert_clean(out, err)


async def test_quit_stops_reading(console: ConsoleProcess):
    await console.send("quit", "/roomusers demo-12")
    code, out, err = await console.finish()
    assert code == 0
    assert "Room demo-12" not in out
    assert_clean(out, err)


async def test_explicit_message_button(console: ConsoleProcess):
    await console.send("/roomusers demo-120")
    first = await console.expect(r"#(\d+) · only you see it · answer to “/roomusers demo-120”\n[^#]*Room demo-120")
    await console.send("/roomusers demo-12")
    await console.expect(r"answer to “/roomusers demo-12”\n[^#]*Room demo-12")
    number = first.group(1)
    await console.send(f"#{number} 1")  # Next ▶ of demo-120, not the newest answer
    shown = await console.expect(rf"#{number} \(updated\)[^\n]*answer to “\[Next ▶\] on #{number}”\n[^#]*?\n\n")
    assert "Room demo-120" in shown.group(0)
    assert "Page 2 of 6" in shown.group(0)
    await console.send("#99 1", "#1 9")
    await console.expect(r"\(!\) there is no message #99")
    await console.expect(r"\(!\) message #1 has no buttons|\(!\) message #1 has buttons 1 to \d")
    code, out, err = await console.finish()
    assert code == 0
    assert_clean(out, err)
