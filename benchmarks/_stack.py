"""The whole product on loopback for the Slack-level benchmarks: the ZIM sandbox in a subprocess of its own,
and, in this process, the real Bolt app over HTTP plus the Slack stand-in (`bot.dev.local_stack`).

The sandbox runs in its own process (see _sandbox.py) so that its work (signature checks, building 500-user
pages) never runs on the event loop being measured; the app and the Slack stand-in share this process's loop,
as they do in `make demo` and the end-to-end tests. `local_stack` also starts an in-process ZimSandbox of its
own when not given one; it stays idle here, since the app's only ZEGO profile points at the subprocess.
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from benchmarks._common import log
from benchmarks._sandbox import SandboxProcess
from bot.dev.local_stack import LocalStack, local_stack
from bot.dev.slack_standin import SlackStandIn, StoredMessage
from bot.dev.zim_sandbox import generated_users
from bot.settings import DEFAULT_PROFILE, ZegoProfiles, ZegoSettings
from bot.state.pacer import SmoothPacer
from bot.state.snapshots import SnapshotStore
from bot.zim import ZimClient, new_http_client
from bot.zim.wire import FIRST_CURSOR

QUIET_GAP_S = 1.25  # > ZIM's one-second arrival window: what one phase sent never counts against the next
USER_LINE = re.compile(r"^([\d,]+)\. .* · `([^`]*)`$", re.MULTILINE)  # "1,234. Name · `id`"


def load_room(users: int) -> str:
    """The sandbox's on-demand room of `users` generated users (created on its first request)."""
    return f"load-{users}"


def expected_ids(users: int, first: int = 0, count: int = 20) -> list[str]:
    """The user IDs the sandbox's `load-<users>` room lists at join positions [first, first + count)."""
    return [user_id for user_id, _ in generated_users(users, seed=users)[first : first + count]]


def listed_user_ids(message: StoredMessage) -> list[str]:
    text = "\n".join(b["text"]["text"] for b in message.blocks if b["type"] == "section" and "text" in b)
    return [user_id for _, user_id in USER_LINE.findall(text)]


def all_text(message: StoredMessage) -> str:
    return json.dumps({"text": message.text, "blocks": message.blocks}, ensure_ascii=False)


def zim_client(sandbox: SandboxProcess, http: Any, qps: float = 20.0) -> ZimClient:
    return ZimClient(
        app_id=sandbox.app_id,
        server_secret=sandbox.secret,
        base_url=sandbox.base_url,
        pacer=SmoothPacer(qps),
        http=http,
    )


async def warm_rooms(sandbox: SandboxProcess, rooms: Sequence[str]) -> None:
    """Ask each room for its first page in both orders, so the sandbox builds (and caches) the room and its
    JSON fragments now instead of during a measurement. Ends with a quiet gap and a stats reset."""
    async with new_http_client() as http:
        client = zim_client(sandbox, http)
        for room_id in rooms:
            for mode in (0, 1):
                await client.query_page(room_id, mode=mode, cursor=FIRST_CURSOR)
    await asyncio.sleep(QUIET_GAP_S)
    await sandbox.reset_stats()


async def zim_round_trips(sandbox: SandboxProcess, room_id: str, count: int) -> list[float]:
    """Wall times of `count` single first-page requests for `room_id` (signing, HTTP, decoding 500 users),
    sent one after another by a ZimClient on a warm keep-alive connection, paced at 20/s like the app's."""
    times = []
    async with new_http_client() as http:
        client = zim_client(sandbox, http)
        await client.query_page(room_id, mode=0, cursor=FIRST_CURSOR)  # opens the connection; not counted
        for _ in range(count):
            await asyncio.sleep(0.06)  # stay under 20/s without queueing in the pacer
            started = time.perf_counter()
            await client.query_page(room_id, mode=0, cursor=FIRST_CURSOR)
            times.append(time.perf_counter() - started)
    await asyncio.sleep(QUIET_GAP_S)
    return times


@asynccontextmanager
async def warm_sandbox(latency_ms: float, rooms: Sequence[str] = ()) -> AsyncIterator[SandboxProcess]:
    """A sandbox subprocess with `rooms` warmed at 0 ms (see warm_rooms), then `latency_ms` injected."""
    async with SandboxProcess(latency_ms=0) as sandbox:
        await warm_rooms(sandbox, rooms)
        await sandbox.set_latency(latency_ms)
        yield sandbox


@asynccontextmanager
async def app_stack(
    *,
    latency_ms: float,
    rooms: Sequence[str] = (),
    store: SnapshotStore | None = None,
    state: Any = None,
    qps: float = 20.0,
) -> AsyncIterator[tuple[SandboxProcess, LocalStack]]:
    """A sandbox subprocess (rooms warmed at 0 ms, then `latency_ms` injected) and the app + Slack stand-in.

    `store` replaces the app's in-process snapshot store; `state` (a bot.state SharedState, e.g. Redis)
    replaces all of its shared state.
    """
    async with warm_sandbox(latency_ms, rooms) as sandbox:
        settings = ZegoSettings(app_id=sandbox.app_id, server_secret=sandbox.secret, base_url=sandbox.base_url, qps=qps)
        profiles = ZegoProfiles(default=DEFAULT_PROFILE, by_name={DEFAULT_PROFILE: settings})
        async with local_stack(profiles=profiles, store=store, state=state, qps=qps) as local:
            try:
                yield sandbox, local
            finally:
                await stop_fetches(local, rooms)


async def cancel_fetches(local: LocalStack, rooms: Sequence[str]) -> None:
    """Cancel the app's fetches of `rooms` still under way, and wait until they have ended."""
    stack = local.rosters.pick("")
    if stack is not None:
        await stack.snapshots.cancel_reads(rooms)


async def stop_fetches(local: LocalStack, rooms: Sequence[str]) -> None:
    """Cancel the app's fetches of `rooms` still under way (before the stack and its HTTP client close)."""
    await cancel_fetches(local, rooms)
    await asyncio.sleep(0.05)  # let the handlers that waited on them end


def log_slack_warnings(slack: SlackStandIn) -> None:
    """The first few warnings of the Slack stand-in (a late ack, a rejected message), if it had any."""
    if slack.warnings:
        log(f"Slack stand-in warnings: {slack.warnings[:5]}")


class GcPauses:
    """Every garbage collection of at least `min_ms`, timed with gc.callbacks, while installed."""

    def __init__(self, min_ms: float = 0.0) -> None:
        self.min_s = min_ms / 1000
        self.pauses: list[tuple[float, int, float]] = []  # (start perf_counter, generation, seconds)
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        seconds = time.perf_counter() - self._started
        if seconds >= self.min_s:
            self.pauses.append((self._started, int(info["generation"]), seconds))

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def between(self, start: float, end: float, generation: int = 2) -> list[float]:
        """Durations of the collections of `generation` that began in [start, end]."""
        return [s for t, g, s in self.pauses if g == generation and start <= t <= end]
