"""SIGTERM while answers are in flight, against the real `python -m bot serve --http` in a subprocess.

The test process runs the ZIM sandbox (with latency, big rooms and one very slow room) and the Slack stand-in;
the app under test only knows them through its environment, as in production. A rolling deploy must leave no
request unanswered: within SHUTDOWN_GRACE_SECONDS answers in progress finish, and whoever's answer could not
finish is told to try again, exactly once. New requests are refused from the moment the signal lands.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from bot.dev.slack_standin import SlackStandIn, StoredMessage
from bot.dev.zim_sandbox import Fault, ZimSandbox

from .redis_server import free_port
from .slack_helpers import all_text

CHANNEL = "C0OPS"
BOT_TOKEN = "xoxb-shutdown-test"
SIGNING_SECRET = "5f" * 16
ALICE, BOB, CAROL, DAVE = "U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"
STARTUP_SECONDS = 30.0  # generous: a cold interpreter importing Bolt on a busy CI machine
STILL_LOADING = "still loading"
# Settings of the environment that must not leak into the app under test from the developer's shell.
OWN_SETTINGS = ("ZEGO_", "SLACK_", "REDIS_URL", "METRICS_PORT", "ROOMUSERS_", "SHUTDOWN_", "SNAPSHOT_", "LOG_")


@dataclass
class Served:
    """The app under test: its process, its base URL and everything it logged so far."""

    process: asyncio.subprocess.Process
    base_url: str
    log: list[str] = field(default_factory=list)

    @property
    def events_url(self) -> str:
        return f"{self.base_url}/slack/events"

    def logged(self, text: str) -> bool:
        return any(text in line for line in self.log)

    def log_text(self) -> str:
        return "\n".join(self.log)


async def until(condition: Callable[[], bool], *, within: float, what: str) -> None:
    """Wait for `condition` (checked every 20 ms) for at most `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)


async def healthz_status(url: str) -> int | None:
    """GET /healthz's status, or None when nothing accepts the connection."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
            session.get(f"{url}/healthz") as response,
        ):
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return None


@asynccontextmanager
async def serving(sandbox: ZimSandbox, slack: SlackStandIn, *, grace: float, cwd: Path) -> AsyncIterator[Served]:
    """Start `python -m bot serve --http` wired to `sandbox` and `slack`; wait until /healthz answers 200.

    The process is always gone when this exits (killed if the test did not already stop it)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(OWN_SETTINGS)}
    env.update(
        ZEGO_APP_ID=str(sandbox.app_id),
        ZEGO_SERVER_SECRET=sandbox.secret,
        ZEGO_API_BASE_URL=sandbox.base_url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_BASE_URL=slack.api_base_url,
        SHUTDOWN_GRACE_SECONDS=str(grace),
        LOG_LEVEL="INFO",
    )
    port = free_port()
    # cwd: an empty directory, so no developer's .env is loaded.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        "--http",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    served = Served(process=process, base_url=f"http://127.0.0.1:{port}")

    async def read_log() -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            served.log.append(line.decode("utf-8", "replace").rstrip())

    reader = asyncio.create_task(read_log())
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while await healthz_status(served.base_url) != 200:
            assert process.returncode is None, f"the app exited at start-up:\n{served.log_text()}"
            assert time.monotonic() < deadline, f"no /healthz after {STARTUP_SECONDS} s:\n{served.log_text()}"
            await asyncio.sleep(0.05)
        slack.app_url = served.events_url
        yield served
    finally:
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.wait(), 10)
        await asyncio.wait_for(reader, 10)


async def stop(served: Served) -> float:
    """SIGTERM; return when the app has stopped listening (its drain has begun)."""
    served.process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    await until(lambda: served.logged("shutting down"), within=5, what="the app to see SIGTERM")
    return sent


async def assert_new_requests_are_refused(slack: SlackStandIn, served: Served) -> None:
    """Once the listener is closed (the drain logs that it is waiting), nothing new gets a 200."""
    await until(
        lambda: served.logged(" in progress") or served.process.returncode is not None,
        within=5,
        what="the drain to start",
    )
    try:
        response = await slack.send_command("demo-12", user_id=DAVE, user_name="dave")
    except aiohttp.ClientConnectionError:
        pass  # refused at the TCP level
    else:
        assert response.status != 200, "a command was taken after SIGTERM"
    assert await healthz_status(served.base_url) is None
    assert [m for m in slack.ephemerals(DAVE) if m.origin != "ack"] == []


async def exit_code(served: Served, *, within: float) -> int:
    try:
        return await asyncio.wait_for(served.process.wait(), within)
    except TimeoutError:
        raise AssertionError(f"the app did not exit within {within} s:\n{served.log_text()}") from None


def answers(slack: SlackStandIn, user: str) -> list[StoredMessage]:
    """A command's answers: what `user` got privately after the "Fetching…" ack, each as it looks now."""
    return [m for m in slack.ephemerals(user) if m.origin != "ack"]


def is_restarting(message: StoredMessage) -> bool:
    text = all_text(message)
    return "restarting" in text and "try again" in text


def is_complete_roster(message: StoredMessage, users: int) -> bool:
    text = all_text(message)
    return f"*{users:,} users* in this room" in text and STILL_LOADING not in text


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN) as standin:
        yield standin


def slow_sandbox_rooms(sandbox: ZimSandbox, *, big: int, slow_seconds: float) -> None:
    """Two big rooms read page by page at 100 ms a page, and a one-page room whose only page takes ages."""
    sandbox.faults.set_latency(latency_ms=100)
    sandbox.add_room("big-a", big)
    sandbox.add_room("big-b", big)
    sandbox.add_room("slow", 300)
    sandbox.inject(Fault(kind="delay", seconds=slow_seconds, room_id="slow", count=1))


async def ask_while_fetching(sandbox: ZimSandbox, slack: SlackStandIn) -> str:
    """Alice asks for the slow room, Bob for big-a, Carol mentions big-b. Return once all three are being worked
    on: Bob's and Carol's "still loading" answers are out, Alice's page is stuck in ZIM, and ZIM is being read."""
    responses = await asyncio.gather(
        slack.send_command("slow", user_id=ALICE, user_name="alice"),
        slack.send_command("big-a", user_id=BOB, user_name="bob"),
        slack.mention("big-b", user=CAROL),
    )
    assert all(response.status == 200 and response.acked_in_time for response in responses)
    thread = str(responses[-1].sent["event"]["ts"])
    await slack.wait_for(
        lambda: answers(slack, BOB) and slack.thread(CHANNEL, thread) and sandbox.stats.faults_applied["delay"] == 1,
        timeout=10,
    )
    before = sandbox.stats.requests
    await until(lambda: sandbox.stats.requests >= before + 2, within=5, what="ZIM to be read")
    return thread


async def test_with_a_long_grace_every_answer_in_flight_finishes_and_the_app_exits_0(
    sandbox: ZimSandbox, slack: SlackStandIn, tmp_path: Path
):
    grace = 10.0
    slow_sandbox_rooms(sandbox, big=12_000, slow_seconds=2.0)  # everything is done about 3 s after the asks
    async with serving(sandbox, slack, grace=grace, cwd=tmp_path) as served:
        thread = await ask_while_fetching(sandbox, slack)
        assert sandbox.stats.per_room["big-a"] < 24 and sandbox.stats.per_room["big-b"] < 24  # mid-fetch
        sent = await stop(served)
        await assert_new_requests_are_refused(slack, served)
        assert served.process.returncode is None  # refused while still draining, not merely because it is gone
        code = await exit_code(served, within=grace + 5)
        took = time.monotonic() - sent
    assert code == 0, served.log_text()
    assert took < grace, f"exited {took:.1f} s after SIGTERM though its work was done long before"
    assert served.logged("waiting up to 10 s for 3 answers in progress")
    assert not served.logged("cut short")
    # Alice: her room's page came through during the drain; nothing else.
    (alice,) = answers(slack, ALICE)
    assert is_complete_roster(alice, 300)
    # Bob: the "still loading" first page, and the rest of big-a was read (no failure message followed).
    (bob,) = answers(slack, BOB)
    assert STILL_LOADING in all_text(bob)
    assert sandbox.stats.per_room["big-a"] >= 24
    # Carol: one reply in her thread, edited in place into the whole first page.
    (carol,) = slack.thread(CHANNEL, thread)
    assert is_complete_roster(carol, 12_000)
    assert not any(is_restarting(m) for m in [alice, bob, carol])


async def test_with_a_short_grace_unfinished_answers_are_told_to_try_again_once(
    sandbox: ZimSandbox, slack: SlackStandIn, tmp_path: Path
):
    grace = 1.0
    slow_sandbox_rooms(sandbox, big=30_000, slow_seconds=60.0)  # nothing can finish within the grace
    async with serving(sandbox, slack, grace=grace, cwd=tmp_path) as served:
        thread = await ask_while_fetching(sandbox, slack)
        sent = await stop(served)
        await assert_new_requests_are_refused(slack, served)
        code = await exit_code(served, within=grace + 8)
        took = time.monotonic() - sent
    assert code == 0, served.log_text()
    assert took < grace + 4, f"exited {took:.1f} s after SIGTERM with a {grace} s grace"
    assert served.logged("3 answers were cut short")
    # Each requester's last word is exactly one "restarting … try again"; nobody is left with nothing.
    alice, bob, carol = answers(slack, ALICE), answers(slack, BOB), slack.thread(CHANNEL, thread)
    assert len(alice) == 1 and is_restarting(alice[0])
    assert len(bob) == 2 and STILL_LOADING in all_text(bob[0]) and is_restarting(bob[1])
    # Carol's reply said "still loading"; after the shutdown that same message says the answer was interrupted.
    assert len(carol) == 1 and is_restarting(carol[0]) and "loading" not in all_text(carol[0]).lower()
    assert carol[0].replaced_count >= 1
    for said in (alice, bob, carol):
        assert sum(is_restarting(m) for m in said) == 1
        assert not any(is_complete_roster(m, 30_000) or is_complete_roster(m, 300) for m in said)
