"""Start-up as an operator meets it: the real `python -m bot serve` in a subprocess, wired to the stand-ins.

What only the operator can fix stops start-up with one sentence naming the setting, exit 2, no traceback. Slack
merely unreachable does not: the replica stays up, not ready, and becomes ready once Slack answers.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.dev.slack_standin import SlackStandIn
from bot.dev.zim_sandbox import Fault, ZimSandbox
from bot.web import start_site

from .redis_server import free_port
from .slack_helpers import all_text
from .test_shutdown import OWN_SETTINGS, until

BOT_TOKEN = "xoxb-startup-test-0000"
APP_TOKEN = "xapp-1-startup-test-0000"
SIGNING_SECRET = "6a" * 16
EXIT_BAD_INPUT = 2


def base_env(sandbox: ZimSandbox, slack_api: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(OWN_SETTINGS)}
    env.update(
        ZEGO_APP_ID=str(sandbox.app_id),
        ZEGO_SERVER_SECRET=sandbox.secret,
        ZEGO_API_BASE_URL=sandbox.base_url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_BASE_URL=slack_api,
        LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


async def spawn_bot(*args: str, env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    """`python -m bot ARGS` with no input and no stdout; stderr (where its sentences go) piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_to_exit(*args: str, env: dict[str, str], cwd: Path, within: float = 60) -> tuple[int, str]:
    process = await spawn_bot(*args, env=env, cwd=cwd)
    _, stderr = await asyncio.wait_for(process.communicate(), within)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


def assert_one_sentence(stderr: str, *, naming: str) -> str:
    """Exit-2 output: no traceback, exactly one `roomusers: …` line, naming the setting; no secret in it."""
    assert "Traceback" not in stderr, stderr
    sentences = [line for line in stderr.splitlines() if line.startswith("roomusers: ")]
    assert len(sentences) == 1, stderr
    (sentence,) = sentences
    assert naming in sentence, sentence
    for secret in (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET):
        assert secret not in stderr
    return sentence


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN) as standin:
        yield standin


def serve_http(port: int, host: str = "127.0.0.1") -> tuple[str, ...]:
    return ("serve", "--http", "--host", host, "--port", str(port))


@pytest.mark.parametrize("code", ["invalid_auth", "not_authed", "account_inactive", "token_revoked"])
async def test_a_rejected_bot_token_exits_2_naming_SLACK_BOT_TOKEN(
    sandbox: ZimSandbox, slack: SlackStandIn, tmp_path: Path, code: str
):
    slack.fail_next_api_calls("auth.test", code)
    rc, stderr = await run_to_exit(*serve_http(free_port()), env=base_env(sandbox, slack.api_base_url), cwd=tmp_path)
    assert rc == EXIT_BAD_INPUT, stderr
    sentence = assert_one_sentence(stderr, naming="SLACK_BOT_TOKEN")
    assert f"auth.test: {code}" in sentence
    assert "listening" not in stderr  # it never claimed to serve


async def test_a_wrong_bot_token_is_refused_by_the_stand_in_and_exits_2(
    sandbox: ZimSandbox, slack: SlackStandIn, tmp_path: Path
):
    env = base_env(sandbox, slack.api_base_url, SLACK_BOT_TOKEN="xoxb-not-the-installed-one")
    rc, stderr = await run_to_exit(*serve_http(free_port()), env=env, cwd=tmp_path)
    assert rc == EXIT_BAD_INPUT, stderr
    assert "auth.test: invalid_auth" in assert_one_sentence(stderr, naming="SLACK_BOT_TOKEN")
    assert "xoxb-not-the-installed-one" not in stderr


async def test_a_port_in_use_exits_2(sandbox: ZimSandbox, slack: SlackStandIn, tmp_path: Path):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        rc, stderr = await run_to_exit(*serve_http(port), env=base_env(sandbox, slack.api_base_url), cwd=tmp_path)
    assert rc == EXIT_BAD_INPUT, stderr
    assert f"Port {port}" in assert_one_sentence(stderr, naming="--port")


async def test_a_metrics_port_in_use_exits_2(sandbox: ZimSandbox, slack: SlackStandIn, tmp_path: Path):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        env = base_env(sandbox, slack.api_base_url, METRICS_PORT=str(held.getsockname()[1]))
        rc, stderr = await run_to_exit(*serve_http(free_port()), env=env, cwd=tmp_path)
    assert rc == EXIT_BAD_INPUT, stderr
    assert_one_sentence(stderr, naming="METRICS_PORT")


async def test_a_port_out_of_range_exits_2(sandbox: ZimSandbox, slack: SlackStandIn, tmp_path: Path):
    rc, stderr = await run_to_exit(*serve_http(70000), env=base_env(sandbox, slack.api_base_url), cwd=tmp_path)
    assert rc == EXIT_BAD_INPUT, stderr
    assert "70000" in assert_one_sentence(stderr, naming="--port")


async def test_an_unknown_host_exits_2(sandbox: ZimSandbox, slack: SlackStandIn, tmp_path: Path):
    args = serve_http(free_port(), host="no-such-host.invalid")
    rc, stderr = await run_to_exit(*args, env=base_env(sandbox, slack.api_base_url), cwd=tmp_path)
    assert rc == EXIT_BAD_INPUT, stderr
    assert "does not resolve" in assert_one_sentence(stderr, naming="--host")


class FakeSlackApi:
    """Just enough of Slack's Web API for Socket Mode start-up: auth.test, and apps.connections.open answering
    what the test says. The bot token and the app token are each checked, as Slack does."""

    def __init__(self) -> None:
        self.connections_open: tuple[int, dict[str, Any]] = (200, {"ok": False, "error": "invalid_auth"})
        self.calls: list[str] = []

    def app(self) -> web.Application:
        async def api(request: web.Request) -> web.Response:
            method = request.match_info["method"]
            self.calls.append(method)
            token = request.headers.get("Authorization", "")
            if method == "auth.test":
                if token != f"Bearer {BOT_TOKEN}":
                    return web.json_response({"ok": False, "error": "invalid_auth"})
                return web.json_response({"ok": True, "team_id": "T0FAKE", "user_id": "U0BOT", "bot_id": "B0BOT"})
            if method == "apps.connections.open":
                if not token.startswith("Bearer xapp-"):
                    return web.json_response({"ok": False, "error": "not_allowed_token_type"})
                status, body = self.connections_open
                return web.json_response(body, status=status)
            return web.json_response({"ok": False, "error": "unknown_method"})

        web_app = web.Application()
        web_app.router.add_post("/api/{method}", api)
        return web_app


@asynccontextmanager
async def fake_slack_api(fake: FakeSlackApi) -> AsyncIterator[str]:
    runner, port = await start_site(fake.app(), "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{port}/api/"
    finally:
        await runner.cleanup()


def socket_env(sandbox: ZimSandbox, api: str, **extra: str) -> dict[str, str]:
    env = base_env(sandbox, api, SLACK_APP_TOKEN=APP_TOKEN, **extra)
    del env["SLACK_SIGNING_SECRET"]
    return env


async def test_a_rejected_app_token_exits_2_naming_SLACK_APP_TOKEN(sandbox: ZimSandbox, tmp_path: Path):
    fake = FakeSlackApi()
    async with fake_slack_api(fake) as api:
        started = time.monotonic()
        rc, stderr = await run_to_exit("serve", env=socket_env(sandbox, api), cwd=tmp_path)
        took = time.monotonic() - started
    assert rc == EXIT_BAD_INPUT, stderr
    sentence = assert_one_sentence(stderr, naming="SLACK_APP_TOKEN")
    assert "apps.connections.open: invalid_auth" in sentence
    assert fake.calls.count("apps.connections.open") == 1  # no retry loop
    assert took < 30, "it must not retry a rejected token"


@asynccontextmanager
async def serving(args: tuple[str, ...], env: dict[str, str], cwd: Path) -> AsyncIterator[Any]:
    """The process running; its stderr collected in `.log` (a list of lines)."""
    process = await spawn_bot(*args, env=env, cwd=cwd)
    log: list[str] = []

    async def read_log() -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            log.append(line.decode("utf-8", "replace").rstrip())

    reader = asyncio.create_task(read_log())
    process.log = log  # type: ignore[attr-defined]
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.wait(), 10)
        await asyncio.wait_for(reader, 10)


async def get_json(url: str) -> tuple[int, Any] | None:
    """(status, parsed body) of a GET, or None when nothing accepts the connection."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session,
            session.get(url) as response,
        ):
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text
    except (aiohttp.ClientError, TimeoutError):
        return None


async def wait_for_answer(
    url: str, process: Any, *, within: float = 30, until_not: str | tuple[str, ...] = ()
) -> tuple[int, Any]:
    """The first answer at `url` whose body contains none of `until_not` (states still being settled)."""
    deadline = time.monotonic() + within
    unsettled = (until_not,) if isinstance(until_not, str) else until_not
    while (answer := await get_json(url)) is None or any(state in json.dumps(answer[1]) for state in unsettled):
        assert process.returncode is None, "\n".join(process.log)
        assert time.monotonic() < deadline, f"no answer at {url}:\n" + "\n".join(process.log)
        await asyncio.sleep(0.05)
    return answer


async def test_slack_unreachable_at_start_up_is_not_fatal_and_ready_follows_slack(sandbox: ZimSandbox, tmp_path: Path):
    slack_port, metrics_port, port = free_port(), free_port(), free_port()
    env = base_env(sandbox, f"http://127.0.0.1:{slack_port}/api/", METRICS_PORT=str(metrics_port))
    ops = f"http://127.0.0.1:{metrics_port}"
    async with serving(serve_http(port), env, tmp_path) as process:
        status, body = await wait_for_answer(f"{ops}/readyz", process, until_not="verifying")
        assert status == 503
        assert body["ready"] is False
        assert body["checks"]["slack"].startswith("unreachable (auth.test: ")
        assert body["checks"]["redis"] == "not configured"
        live = await get_json(f"{ops}/healthz")
        assert live is not None and live[0] == 200 and live[1]["live"] is True
        # The ops endpoints are on METRICS_PORT only, not on the Slack port.
        main = await wait_for_answer(f"http://127.0.0.1:{port}/healthz", process)
        assert main[0] == 404
        assert (await get_json(f"http://127.0.0.1:{port}/readyz") or (0,))[0] == 404
        metrics = await get_json(f"{ops}/metrics")
        assert metrics is not None and "roomusers_build_info{" in metrics[1]
        assert "roomusers_slack_connected 0.0" in metrics[1]
        assert sum("Slack is unreachable" in line for line in process.log) == 1  # one line, not one per retry

        # Slack comes up on that port: the replica becomes ready within its backoff.
        slack = SlackStandIn(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
        await slack.start(port=slack_port)
        try:
            deadline = time.monotonic() + 40
            while (answer := await get_json(f"{ops}/readyz")) is None or answer[0] != 200:
                assert time.monotonic() < deadline, f"never ready: {answer}\n" + "\n".join(process.log)
                await asyncio.sleep(0.1)
            assert answer[1] == {
                "ready": True,
                "checks": {"slack": "connected", "redis": "not configured", "zim:default": "ok"},
            }
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 30) == 0
        finally:
            await slack.stop()
    assert any("stopped" in line for line in process.log)
    assert not any("Traceback" in line for line in process.log)


async def test_sigterm_while_socket_mode_retries_is_graceful(sandbox: ZimSandbox, tmp_path: Path):
    fake = FakeSlackApi()
    fake.connections_open = (503, {"ok": False, "error": "service_unavailable"})
    metrics_port = free_port()
    async with (
        fake_slack_api(fake) as api,
        serving(("serve",), socket_env(sandbox, api, METRICS_PORT=str(metrics_port)), tmp_path) as process,
    ):
        await until(lambda: fake.calls.count("apps.connections.open") >= 2, within=20, what="a retry")
        status, body = await wait_for_answer(f"http://127.0.0.1:{metrics_port}/readyz", process)
        assert status == 503 and body["checks"]["slack"].startswith("unreachable (apps.connections.open")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0, "\n".join(process.log)
    log = "\n".join(process.log)
    assert "stopped" in log
    assert "Traceback" not in log
    assert APP_TOKEN not in log


async def test_rejected_zim_credentials_of_one_profile_make_the_replica_unready(
    sandbox: ZimSandbox, slack: SlackStandIn, tmp_path: Path
):
    metrics_port = free_port()
    env = base_env(
        sandbox,
        slack.api_base_url,
        METRICS_PORT=str(metrics_port),
        ZEGO_PROFILES="staging",
        ZEGO_STAGING_APP_ID=str(sandbox.app_id),
        ZEGO_STAGING_SERVER_SECRET="0" * 32,  # not the sandbox's secret
        ZEGO_STAGING_API_BASE_URL=sandbox.base_url,
    )
    url = f"http://127.0.0.1:{metrics_port}/readyz"
    async with serving(serve_http(free_port()), env, tmp_path) as process:
        deadline = time.monotonic() + 30
        while (answer := await get_json(url)) is None or "checking" in json.dumps(answer[1]):
            assert process.returncode is None and time.monotonic() < deadline, "\n".join(process.log)
            await asyncio.sleep(0.05)
        status, body = answer
        assert status == 503
        assert body["checks"]["zim:staging"] == "credentials rejected (100000005)"
        assert body["checks"]["zim:default"] == "ok"
        assert body["checks"]["slack"] == "connected"
        await until(lambda: any("ZEGO_STAGING_SERVER_SECRET" in line for line in process.log), within=5, what="log")
        # One probe per profile, each for an unlikely room of its own.
        probes = [room for room in sandbox.stats.per_room if room.startswith("roomusers-probe-")]
        assert len(probes) == 2 and all(len(room) == len("roomusers-probe-") + 12 for room in probes)
        metrics = await get_json(f"http://127.0.0.1:{metrics_port}/metrics")
        assert metrics is not None
        assert 'roomusers_zim_credentials_rejected{profile="staging"} 1.0' in metrics[1]
        assert 'roomusers_zim_credentials_rejected{profile="default"} 0.0' in metrics[1]


async def test_readyz_is_503_shutting_down_while_answers_drain(
    sandbox: ZimSandbox, slack: SlackStandIn, tmp_path: Path
):
    sandbox.add_room("slow", 300)
    sandbox.inject(Fault(kind="delay", seconds=4.0, room_id="slow", count=1))
    metrics_port, port = free_port(), free_port()
    env = base_env(sandbox, slack.api_base_url, METRICS_PORT=str(metrics_port), SHUTDOWN_GRACE_SECONDS="10")
    readyz = f"http://127.0.0.1:{metrics_port}/readyz"
    async with serving(serve_http(port), env, tmp_path) as process:
        # All settle at start-up, in any order: the ZIM probe ("checking"), auth.test ("verifying") and the Slack
        # endpoint, which may open after the ops port ("starting").
        status, body = await wait_for_answer(readyz, process, until_not=("checking", "verifying", "starting"))
        assert status == 200, body
        slack.app_url = f"http://127.0.0.1:{port}/slack/events"
        await slack.send_command("slow")
        await until(lambda: sandbox.stats.faults_applied["delay"] == 1, within=10, what="the slow read to start")
        process.send_signal(signal.SIGTERM)
        await until(lambda: any("shutting down" in line for line in process.log), within=5, what="SIGTERM seen")
        answer = await get_json(readyz)
        assert process.returncode is None  # still draining
        assert answer is not None and answer[0] == 503
        assert answer[1]["ready"] is False and answer[1]["checks"]["process"] == "shutting down"
        assert await asyncio.wait_for(process.wait(), 20) == 0
    assert any("300 users" in all_text(m) for m in slack.ephemerals("U0ALICE"))  # the answer still came
