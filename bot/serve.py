"""`python -m bot serve`: compose settings, shared state, rosters and the Slack app; run one mode until SIGTERM.

Start-up fails fast with one sentence (exit 2) for what only the operator can fix: a token Slack rejects, a port
that can't be listened on. Slack merely unreachable is not fatal: the replica retries with backoff and stays
not-ready. On SIGINT/SIGTERM (at any point, start-up included) the replica stops taking requests, lets answers in
progress finish for up to SHUTDOWN_GRACE_SECONDS, tells the requesters of any that can't finish to try again,
and exits cleanly.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable
from typing import TypeVar

from aiohttp import web

from bot.heap import freeze_heap
from bot.observability.health import LoopLagMonitor, ProcessHealth, Timings
from bot.roster.cpu import stop_cpu_worker, warm_cpu_worker
from bot.roster.packed import PackedUsers
from bot.runtime import RunningApp, compose_app
from bot.settings import (
    ConfigError,
    RuntimeSettings,
    SlackSettings,
    StartupError,
    load_runtime_settings,
    load_slack_settings,
    load_zego_profiles,
    profiles_summary,
)
from bot.slack.access import AccessRules
from bot.slack.csv_file import matching_csv
from bot.slack.http import EVENTS_PATH, install_stop_signal, start_http, start_ops_server
from bot.slack.link import TimedSocketModeHandler
from bot.state import SharedStateUnavailable, build_shared_state

log = logging.getLogger(__name__)

T = TypeVar("T")
LINK_TASK = "slack-link"


async def serve(*, http: bool, host: str, port: int, timings: Timings | None = None) -> None:
    timings = timings or Timings()
    stop = install_stop_signal()
    profiles = load_zego_profiles()
    slack = load_slack_settings(http_mode=http)
    runtime = load_runtime_settings()
    if http and runtime.metrics_port == port:
        raise ConfigError(f"METRICS_PORT must differ from --port (both {port}).")
    access = AccessRules.from_env(
        os.environ, profiles=profiles.by_name, default_profile=profiles.default, allow_external=runtime.allow_external
    )
    try:
        state = await build_shared_state(
            runtime.redis_url,
            snapshot_ttl=runtime.snapshot_ttl,
            snapshot_budget_bytes=runtime.snapshot_budget_mb * 1024 * 1024,
            background_share=runtime.watch_qps_share,
            history_hours=runtime.history_hours,
            history_max_mb=runtime.history_max_mb,
        )
    except SharedStateUnavailable as error:
        raise ConfigError(str(error)) from None
    log.info("%s", profiles_summary(profiles))
    log.info("shared state: %s; %s", state.backend, access.describe())
    try:
        async with compose_app(
            profiles,
            slack,
            state=state,
            access=access,
            mode="http" if http else "socket",
            limits=runtime.limits,
            watch=runtime.watch,
        ) as running:
            # The CSV worker starts (and imports what an export needs) now, not inside the first big export.
            warm_cpu_worker(matching_csv, PackedUsers(), "")
            lag = LoopLagMonitor(interval=timings.lag_interval, window=timings.lag_window)
            probes = {name: app.probe for name, app in running.zego_apps.by_profile.items() if app.probe}
            health = ProcessHealth(link=running.link, lag=lag, state=state, probes=probes, timings=timings)
            background = [asyncio.create_task(lag.run(), name="loop-lag")]
            background += [asyncio.create_task(probe.run(), name=f"zim-probe-{name}") for name, probe in probes.items()]
            try:
                if http:
                    await _serve_http(running, health, runtime, slack, stop, background, host=host, port=port)
                else:
                    await _serve_socket_mode(running, health, runtime, slack, stop, background, host=host)
            finally:
                for task in background:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)
    finally:
        await stop_cpu_worker()  # after the grace period: a job still running there is not waited for forever
        await state.aclose()
    log.info("stopped")


async def _until_stopped(stop: asyncio.Event, step: Awaitable[T]) -> tuple[bool, T | None]:
    """Run a start-up step unless SIGTERM comes first: (stopped, result). Errors of the step propagate."""
    task = asyncio.ensure_future(step)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task.done():
        return False, task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return True, None


async def _until_stop_or_fatal(stop: asyncio.Event, running: RunningApp) -> StartupError | None:
    """Serve until SIGTERM, or until a background retry met a token Slack rejects (returned)."""
    fatal = running.link.fatal
    waiter = asyncio.ensure_future(stop.wait())
    failed = asyncio.ensure_future(_outcome(fatal))
    try:
        await asyncio.wait([waiter, failed], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        failed.cancel()
    return fatal.result() if fatal.done() else None


async def _start_ops(host: str, runtime: RuntimeSettings, health: ProcessHealth) -> web.AppRunner | None:
    """/healthz, /readyz and /metrics on METRICS_PORT, when it is set (in either mode)."""
    if runtime.metrics_port is None:
        return None
    ops, ops_port = await start_ops_server(host, runtime.metrics_port, health)
    log.info("health and metrics on http://%s:%d (/healthz, /readyz, /metrics)", host, ops_port)
    return ops


async def _serve_http(
    running: RunningApp,
    health: ProcessHealth,
    runtime: RuntimeSettings,
    slack: SlackSettings,
    stop: asyncio.Event,
    background: list[asyncio.Task[None]],
    *,
    host: str,
    port: int,
) -> None:
    ops = await _start_ops(host, runtime, health)
    fatal: StartupError | None = None
    try:
        stopped, verified = await _until_stopped(stop, running.link.verify_bot_token(running.app.client))
        if stopped:
            log.info("shutting down: stopped during start-up")
            return
        if not verified:
            background.append(asyncio.create_task(running.link.keep_verifying(running.app.client), name=LINK_TASK))
        runner, bound = await start_http(
            running.app,
            host,
            port,
            None if ops is not None else health,
            signing_secret=slack.signing_secret,
            replay_guard=running.state.replay_guard,
        )
        health.accepting = True
        also = "" if ops is not None else " (also /healthz, /readyz, /metrics)"
        log.info("roomusers listening on http://%s:%d%s%s", host, bound, EVENTS_PATH, also)
        freeze_heap()
        try:
            fatal = await _until_stop_or_fatal(stop, running)
            health.draining = True
            log.info("shutting down: no new requests")
        finally:
            await runner.cleanup()
        await running.deps.pending.drain(runtime.shutdown_grace)
    finally:
        if ops is not None:
            await ops.cleanup()
    if fatal is not None:
        raise fatal


async def _serve_socket_mode(
    running: RunningApp,
    health: ProcessHealth,
    runtime: RuntimeSettings,
    slack: SlackSettings,
    stop: asyncio.Event,
    background: list[asyncio.Task[None]],
    *,
    host: str,
) -> None:
    ops = await _start_ops(host, runtime, health)
    if ops is None:
        log.info("no METRICS_PORT: /healthz, /readyz and /metrics are not served in Socket Mode without it")
    link, client = running.link, running.app.client
    app_token = slack.app_token or ""
    handler = TimedSocketModeHandler(running.app, app_token)
    fatal: StartupError | None = None
    try:
        stopped, verified = await _until_stopped(stop, link.verify_bot_token(client))
        connected: bool | None = False
        if not stopped and verified:
            stopped, connected = await _until_stopped(stop, link.open_socket(handler, app_token))
        if not stopped:
            if not connected:
                background.append(asyncio.create_task(link.keep_opening(handler, app_token, client), name=LINK_TASK))
            watch = link.watch_socket(handler, every=health.timings.socket_poll)
            background.append(asyncio.create_task(watch, name=LINK_TASK))
            freeze_heap()
            fatal = await _until_stop_or_fatal(stop, running)
        health.draining = True
        log.info("shutting down: disconnecting from Slack")
        for task in background:
            if task.get_name() == LINK_TASK:  # the link's retries and watch end before the connection closes
                task.cancel()
        await handler.close_async()  # type: ignore[no-untyped-call]
        await running.deps.pending.drain(runtime.shutdown_grace)
    finally:
        if ops is not None:
            await ops.cleanup()
    if fatal is not None:
        raise fatal


async def _outcome(future: asyncio.Future[StartupError]) -> bool:
    await asyncio.shield(future)  # giving up waiting must not cancel the future itself
    return True
