"""`python -m bot serve`: compose settings, shared state, rosters and the Slack app; run one mode until SIGTERM.

On SIGINT/SIGTERM the replica stops taking requests, lets answers in progress finish for up to
SHUTDOWN_GRACE_SECONDS, tells the requesters of any that can't finish to try again, and exits cleanly.
"""

from __future__ import annotations

import gc
import logging
import os

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.runtime import RunningApp, compose_app
from bot.settings import ConfigError, load_runtime_settings, load_slack_settings, load_zego_profiles, profiles_summary
from bot.slack.access import AccessPolicy
from bot.slack.http import EVENTS_PATH, start_http, start_ops_server, wait_for_stop_signal
from bot.state import SharedStateUnavailable, build_shared_state

log = logging.getLogger(__name__)


async def serve(*, http: bool, host: str, port: int) -> None:
    profiles = load_zego_profiles()
    slack = load_slack_settings(http_mode=http)
    runtime = load_runtime_settings()
    access = AccessPolicy.from_env(os.environ)
    try:
        state = await build_shared_state(runtime.redis_url, snapshot_ttl=runtime.snapshot_ttl)
    except SharedStateUnavailable as error:
        raise ConfigError(str(error)) from None
    log.info("%s", profiles_summary(profiles))
    log.info("shared state: %s; %s", state.backend, access.describe())
    try:
        async with compose_app(profiles, slack, state=state, access=access) as running:
            # Everything built so far lives as long as the process: keep it out of the collector's full
            # passes, which otherwise pause the event loop long enough to show in ack latency.
            gc.collect()
            gc.freeze()
            if http:
                await _serve_http(running, host, port, slack.signing_secret)
            else:
                await _serve_socket_mode(running, slack.app_token or "", host, runtime.metrics_port)
            await running.deps.pending.drain(runtime.shutdown_grace)
    finally:
        await state.aclose()
    log.info("stopped")


async def _serve_http(running: RunningApp, host: str, port: int, signing_secret: str | None) -> None:
    runner, bound = await start_http(running.app, host, port, running.state.health, signing_secret=signing_secret)
    log.info("roomusers listening on http://%s:%d%s (also /healthz, /metrics)", host, bound, EVENTS_PATH)
    try:
        await wait_for_stop_signal()
        log.info("shutting down: no new requests")
    finally:
        await runner.cleanup()


async def _serve_socket_mode(running: RunningApp, app_token: str, host: str, metrics_port: int | None) -> None:
    ops = None
    if metrics_port is not None:
        ops, bound = await start_ops_server(host, metrics_port, running.state.health)
        log.info("metrics on http://%s:%d/metrics", host, bound)
    handler = AsyncSocketModeHandler(running.app, app_token)
    try:
        await handler.connect_async()  # type: ignore[no-untyped-call]  # Bolt leaves it unannotated
        log.info("roomusers connected to Slack in Socket Mode")
        await wait_for_stop_signal()
        log.info("shutting down: disconnecting from Slack")
        await handler.close_async()  # type: ignore[no-untyped-call]
    finally:
        if ops is not None:
            await ops.cleanup()
