"""Shared fixtures: a real ZIM sandbox on loopback and clients wired to it."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from bot.dev.local_stack import LocalStack, Mode, local_stack
from bot.dev.zim_sandbox import SANDBOX_APP_ID, SANDBOX_SERVER_SECRET, ZimSandbox
from bot.state.connection import connect
from bot.state.pacer import SmoothPacer
from bot.zim import RetryPolicy, ZimClient

from .redis_server import RedisServer

# Fast backoff so fault tests finish quickly; the shape of the policy is what is under test.
FAST_RETRY = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05, total_budget=5.0)


@pytest.fixture
async def sandbox() -> AsyncIterator[ZimSandbox]:
    async with ZimSandbox() as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(2.0, connect=1.0)) as client:
        yield client


ClientFactory = Callable[..., ZimClient]


@pytest.fixture
def make_client(sandbox: ZimSandbox, http: httpx.AsyncClient) -> ClientFactory:
    def make(
        *,
        secret: str = SANDBOX_SERVER_SECRET,
        app_id: int = SANDBOX_APP_ID,
        qps: float = 20,
        retry: RetryPolicy = FAST_RETRY,
        http_client: httpx.AsyncClient | None = None,
        **options: object,
    ) -> ZimClient:
        return ZimClient(
            app_id=app_id,
            server_secret=secret,
            base_url=sandbox.base_url,
            pacer=SmoothPacer(qps),
            http=http_client or http,
            retry=retry,
            **options,  # type: ignore[arg-type]
        )

    return make


@pytest.fixture
def sandbox_env(sandbox: ZimSandbox) -> dict[str, str]:
    """Environment for a subprocess of ours that should talk to the sandbox (and nothing else)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZEGO_", "SLACK_"))}
    env.update(
        ZEGO_APP_ID=str(SANDBOX_APP_ID),
        ZEGO_SERVER_SECRET=SANDBOX_SERVER_SECRET,
        ZEGO_API_BASE_URL=sandbox.base_url,
        LOG_LEVEL="WARNING",
    )
    return env


MODES: tuple[Mode, ...] = ("http", "socket")
PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `both_modes` (or `socket_only`) that use the `mode` fixture run once per Slack mode."""
    if "mode" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker
    if marker("socket_only"):
        metafunc.parametrize("mode", ["socket"], indirect=True)
    elif marker("both_modes") and not marker("http_only"):
        metafunc.parametrize("mode", MODES, indirect=True)


@pytest.fixture
def mode(request: pytest.FixtureRequest) -> Mode:
    """How Slack reaches the app: "http" (signed POSTs) unless the test is parametrized over both modes."""
    chosen: Mode = getattr(request, "param", "http")
    if chosen == "socket" and any(os.environ.get(name) for name in PROXY_VARS):
        pytest.fail("slack_sdk's Socket Mode client ignores NO_PROXY: unset HTTP(S)_PROXY for the tests")
    return chosen


@pytest.fixture
async def local(sandbox: ZimSandbox, mode: Mode) -> AsyncIterator[LocalStack]:
    """The whole product on loopback (sandbox, real Bolt app, Slack stand-in), over HTTP or Socket Mode."""
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, mode=mode) as stack:
        yield stack
        assert stack.slack.warnings == []
        if stack.slack.socket is not None:
            assert stack.slack.socket.unexpected_frames == []


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port, shared by one test module."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A redis-server of the test's own, which the test may stop (an outage) without affecting others."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The server, running (a test may have stopped it) and empty."""
    if not redis_server.running:
        redis_server.start()
    redis_server.flush()
    return redis_server.url


async def run_cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> tuple[int, str, str]:
    """`python -m bot ARGS` as a user runs it; returns (exit code, stdout, stderr)."""
    code, stdout, stderr = await run_cli_bytes(*args, env=env, cwd=cwd)
    return code, stdout.decode(), stderr.decode()


async def run_cli_bytes(*args: str, env: dict[str, str], cwd: Path | None = None) -> tuple[int, bytes, bytes]:
    """run_cli, with stdout and stderr as the bytes the process wrote."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout, stderr


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[Callable[[], Redis]]:
    """`clients()` → a new Redis client (its own connection pool), as a separate replica would have."""
    made: list[Redis] = []

    def make() -> Redis:
        client = connect(redis_url)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()
