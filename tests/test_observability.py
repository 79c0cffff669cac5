"""Metrics that record what really happened, and health that tells the truth, read over real HTTP."""

from __future__ import annotations

import ast
import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import REGISTRY
from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.dev.local_stack import LocalStack, local_stack
from bot.dev.slack_standin import SlackStandIn
from bot.dev.zim_sandbox import Fault, ZimSandbox
from bot.observability.health import LoopLagMonitor, ProcessHealth, Timings
from bot.settings import SlackSettings
from bot.slack.app import web_client
from bot.slack.http import HEALTH_PATH, METRICS_PATH, READY_PATH, start_http, start_ops_server
from bot.slack.link import SlackLink
from bot.state import memory_state

from .conftest import FAST_RETRY
from .slack_helpers import answer_to, answers_to, wait_for_message

ROOT = Path(__file__).resolve().parent.parent


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def until(condition: Callable[[], object], within: float = 10) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110  # a positive signal kept in process memory, polled
            await asyncio.sleep(0.01)


async def get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def test_acks_are_timed_by_surface(local: LocalStack):
    before = {s: metric("roomusers_ack_seconds_count", surface=s) for s in ("command", "action", "event")}
    page = await answer_to(local, "demo-120")
    await local.slack.click(page, "roomusers_next")
    await local.slack.mention("demo-12")
    await local.slack.wait_for(lambda: local.slack.messages("C0OPS"), timeout=10)
    assert metric("roomusers_ack_seconds_count", surface="command") == before["command"] + 1
    assert metric("roomusers_ack_seconds_count", surface="action") == before["action"] + 1
    assert metric("roomusers_ack_seconds_count", surface="event") == before["event"] + 1
    assert metric("roomusers_ack_seconds_bucket", surface="command", le="3.0") >= before["command"] + 1


async def test_an_ack_after_slacks_deadline_is_counted_as_a_miss():
    secret = "7b" * 16
    async with SlackStandIn(signing_secret=secret, bot_token="xoxb-slow") as slack:
        app = AsyncApp(
            client=web_client(SlackSettings(bot_token="xoxb-slow", api_base_url=slack.api_base_url)),
            signing_secret=secret,
        )

        @app.command("/roomusers")
        async def slow(ack: AsyncAck) -> None:
            await asyncio.sleep(3.2)  # the listener under test is slow on purpose: what is timed is the ack
            await ack("late")

        runner, port = await start_http(app, "127.0.0.1", 0, signing_secret=secret)
        try:
            slack.app_url = f"http://127.0.0.1:{port}/slack/events"
            misses = metric("roomusers_ack_deadline_misses_total", surface="command")
            response = await slack.send_command("demo-1")
            assert not response.acked_in_time
            assert metric("roomusers_ack_deadline_misses_total", surface="command") == misses + 1
            assert slack.warnings  # the stand-in saw it too
        finally:
            await runner.cleanup()


async def test_slack_api_failures_are_counted_by_method_and_error(local: LocalStack):
    before = metric("roomusers_slack_api_errors_total", method="chat.postMessage", error="not_in_channel")
    local.slack.fail_next_api_calls("chat.postMessage", "not_in_channel")
    await local.slack.mention("demo-12")
    await local.slack.wait_for(
        lambda: any(c.method == "chat.postMessage" and c.error == "not_in_channel" for c in local.slack.api_calls)
    )
    # The stand-in has answered; the app counts the failure when the answer reaches it.
    await until(lambda: metric("roomusers_slack_api_errors_total", method="chat.postMessage", error="not_in_channel"))
    assert metric("roomusers_slack_api_errors_total", method="chat.postMessage", error="not_in_channel") == before + 1


async def test_fetch_outcomes_and_reads_in_flight(sandbox: ZimSandbox):
    complete = metric("roomusers_fetch_outcomes_total", profile="default", outcome="complete")
    failed = metric("roomusers_fetch_outcomes_total", profile="default", outcome="failed")
    sandbox.add_room("broken", 50)
    sandbox.inject(Fault(kind="code", code=660300007, room_id="broken", count=50))
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY) as local:
        await answer_to(local, "demo-12")
        await local.slack.send_command("broken", user_id="U0BOB")
        await wait_for_message(local.slack, lambda: next(iter(answers_to(local.slack, "U0BOB")), None))
        assert metric("roomusers_fetch_outcomes_total", profile="default", outcome="complete") == complete + 1
        assert metric("roomusers_fetch_outcomes_total", profile="default", outcome="failed") == failed + 1
        assert metric("roomusers_fetches_in_flight", profile="default") == 0
        status, text = await get(local.ops_url + METRICS_PATH)
    assert status == 200
    assert re.search(r'^roomusers_build_info\{python="[\d.]+",version="[^"]+"\} 1\.0$', text, re.MULTILINE)
    assert "roomusers_shared_state_fallback 0.0" in text


async def test_a_stalled_event_loop_fails_liveness_and_shows_in_the_lag_metric():
    lag = LoopLagMonitor(interval=0.05, window=1.0)
    link = SlackLink("http")
    health = ProcessHealth(link=link, lag=lag, state=memory_state(), probes={}, timings=Timings(loop_stall=0.3))
    monitor = asyncio.create_task(lag.run())
    runner, port = await start_ops_server("127.0.0.1", 0, health)
    base = f"http://127.0.0.1:{port}"
    try:
        await asyncio.sleep(0.2)  # a few ticks, so the monitor is running
        status, body = await get(base + HEALTH_PATH)
        assert status == 200 and body["checks"]["event_loop"].startswith("ok")
        time.sleep(0.5)  # noqa: ASYNC251  # the stall under test: the loop is blocked
        status, body = await get(base + HEALTH_PATH)
        assert status == 503 and body == {"live": False, "checks": {"event_loop": body["checks"]["event_loop"]}}
        assert body["checks"]["event_loop"].startswith("stalled")
        assert metric("roomusers_event_loop_lag_seconds") >= 0.4
        # Readiness is a separate question: Slack was never verified here.
        status, body = await get(base + READY_PATH)
        assert status == 503 and body["checks"]["slack"] == "verifying"
        async with asyncio.timeout(10):
            while (await get(base + HEALTH_PATH))[0] != 200:  # noqa: ASYNC110  # until the stall leaves the window
                await asyncio.sleep(0.1)
    finally:
        monitor.cancel()
        await runner.cleanup()


def emitted_outcomes() -> set[str]:
    """Every literal outcome the listeners emit or answers carry (walking the source of bot/slack)."""
    found: set[str] = set()
    for path in (ROOT / "bot" / "slack").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "emit":
                found |= {a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
            is_answer = isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Answer"
            if is_answer and isinstance(node, ast.Call) and len(node.args) >= 2:
                outcome = node.args[1]
                if isinstance(outcome, ast.Constant) and isinstance(outcome.value, str):
                    found.add(outcome.value)
    return found


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_readme_lists_every_metric_and_outcome():
    section = readme_section("Observability")
    for family in REGISTRY.collect():
        if family.name.startswith("roomusers_"):
            shown = family.name + ("_total" if family.type == "counter" else "")
            assert f"`{shown}" in section, f"README's Observability section does not list {shown}"
    for outcome in emitted_outcomes() | {"ZimCredentialsRejected", "RoomNotFound", "ZimUnavailable"}:
        assert f"`{outcome}`" in section, f"README's Observability section does not list the outcome {outcome}"
    for path in (HEALTH_PATH, READY_PATH, METRICS_PATH):
        assert f"`{path}`" in section
