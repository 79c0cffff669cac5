"""The whole product on loopback with no credentials: ZIM sandbox + real Bolt app(s) over HTTP + Slack stand-in.

`make demo`, `python -m bot console`, the end-to-end tests and the benchmarks all run exactly this stack.
With `local_replicas(n, redis_url=...)` several app replicas share one Redis, the way a deployment behind a
load balancer does; `route(i)` sends the stand-in's next requests to replica i.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from typing import Literal

from slack_bolt.async_app import AsyncApp

from bot.dev.slack_standin import SlackStandIn
from bot.dev.slack_standin.ratelimits import RateLimits
from bot.dev.zim_sandbox import ZimSandbox
from bot.observability.health import LoopLagMonitor, ProcessHealth
from bot.roster.apps import ZegoApps
from bot.roster.cpu import stop_cpu_worker
from bot.runtime import RunningApp, compose_app
from bot.settings import DEFAULT_PROFILE, LimitSettings, SlackSettings, WatchSettings, ZegoProfiles, ZegoSettings
from bot.slack.access import AccessPolicy, AccessRules
from bot.slack.budget import UpdateBudget
from bot.slack.http import EVENTS_PATH, start_http, start_ops_server
from bot.slack.pending import PendingAnswers
from bot.slack.socket import connect_socket_mode
from bot.slack.watches import WatchDesk
from bot.state import SharedState, build_shared_state, memory_state
from bot.state.snapshots import SnapshotStore
from bot.zim import RetryPolicy

LOOPBACK = "127.0.0.1"
IDLE_TURNS = 20
# "http": Slack POSTs to the app's /slack/events (signed). "socket": the app connects to Slack (Socket Mode).
Mode = Literal["http", "socket"]
# The product's limits, except that every Refresh reads the room again (ROOMUSERS_REFRESH_MIN_SECONDS=0): a
# demo or test clicking Refresh right after a read expects a new read. Pass `limits` to test the limits.
DEV_LIMITS = LimitSettings(refresh_min=0.0)


@dataclass(frozen=True)
class Replica:
    running: RunningApp
    app_url: str | None  # None in Socket Mode: the app has no Slack endpoint
    ops_url: str  # where /healthz and /metrics are served


@dataclass(frozen=True)
class LocalReplicas:
    sandbox: ZimSandbox
    slack: SlackStandIn
    replicas: list[Replica]
    slack_settings: SlackSettings
    mode: Mode = "http"

    def route(self, index: int) -> None:
        """Deliver the stand-in's next requests to replica `index` (a load balancer's choice)."""
        if self.mode == "socket":
            raise RuntimeError("in Socket Mode Slack picks the connection; route() is HTTP-only")
        self.slack.app_url = self.replicas[index].app_url

    async def until_idle(self, *, within: float = 10.0) -> None:
        """Wait until no replica has an answer in progress."""
        await until_idle([replica.running.deps.pending for replica in self.replicas], within=within)


@dataclass(frozen=True)
class LocalStack:
    sandbox: ZimSandbox
    slack: SlackStandIn
    app: AsyncApp
    rosters: ZegoApps
    app_url: str | None
    slack_settings: SlackSettings
    pending: PendingAnswers
    ops_url: str = ""
    mode: Mode = "http"
    watches: WatchDesk | None = None

    async def until_idle(self, *, within: float = 10.0) -> None:
        """Wait until the app has no answer in progress: everything it took on has been answered."""
        await until_idle([self.pending], within=within)


async def until_idle(trackers: list[PendingAnswers], *, within: float = 10.0) -> None:
    """Wait until no replica has an answer in progress.

    Idle must hold across several turns of the event loop, so a listener that Bolt has just scheduled (and that
    has not reached its tracked part yet) is not missed.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    quiet_turns = 0
    while quiet_turns < IDLE_TURNS:
        busy = sum(len(tracker) for tracker in trackers)
        quiet_turns = 0 if busy else quiet_turns + 1
        if loop.time() > deadline:
            raise TimeoutError(f"the app still had {busy} answers in progress after {within} s")
        await asyncio.sleep(0.01 if busy else 0)


def sandbox_profile(sandbox: ZimSandbox, *, name: str = DEFAULT_PROFILE, qps: float = 20.0) -> ZegoSettings:
    return ZegoSettings(
        app_id=sandbox.app_id, server_secret=sandbox.secret, base_url=sandbox.base_url, qps=qps, profile=name
    )


@asynccontextmanager
async def local_replicas(
    count: int = 1,
    *,
    sandbox: ZimSandbox | None = None,
    profiles: ZegoProfiles | None = None,
    qps: float = 20.0,
    redis_url: str | None = None,
    state: SharedState | None = None,
    store: SnapshotStore | None = None,
    access: AccessPolicy | AccessRules | None = None,
    retry: RetryPolicy | None = None,
    mode: Mode = "http",
    slack_limits: RateLimits | None = None,
    limits: LimitSettings = DEV_LIMITS,
    updates: UpdateBudget | None = None,
    progress_every: float | None = None,
    watch: WatchSettings | None = None,
) -> AsyncIterator[LocalReplicas]:
    """Start everything on free loopback ports; stop it all on exit. Fresh demo secrets each time.

    `slack_limits` are the stand-in's rate limits (Slack's by default); `limits` the app's own abuse limits;
    `updates` / `progress_every` the app's chat.update budget and progress interval.

    Each replica gets its own shared-state client (`redis_url`, or in-process state when None), as separate
    processes would; `state`/`store` override that for a single replica.
    """
    async with AsyncExitStack() as stack:
        stack.push_async_callback(stop_cpu_worker)  # last, as serve does: after the apps stopped
        if sandbox is None:
            sandbox = await stack.enter_async_context(ZimSandbox())
        bot_token = f"xoxb-local-{secrets.token_hex(8)}"
        signing_secret = secrets.token_hex(16)
        app_token = f"xapp-local-{secrets.token_hex(8)}" if mode == "socket" else None
        slack = await stack.enter_async_context(
            SlackStandIn(signing_secret=signing_secret, bot_token=bot_token, app_token=app_token, limits=slack_limits)
        )
        if profiles is None:
            default = sandbox_profile(sandbox, qps=qps)
            profiles = ZegoProfiles(default=default.profile, by_name={default.profile: default})
        # Socket Mode runs as in production: no signing secret (nothing is POSTed to the app), an app token.
        slack_settings = SlackSettings(
            bot_token=bot_token,
            signing_secret=signing_secret if app_token is None else None,
            app_token=app_token,
            api_base_url=slack.api_base_url,
        )
        replicas = []
        for index in range(count):
            replica_state = state or await build_shared_state(redis_url)
            if store is not None:
                replica_state = replace(replica_state, store=store)
            stack.push_async_callback(replica_state.aclose)
            running = await stack.enter_async_context(
                compose_app(
                    profiles,
                    slack_settings,
                    state=replica_state,
                    access=access,
                    retry=retry,
                    mode=mode,
                    limits=limits,
                    updates=updates,
                    progress_every=progress_every,
                    watch=watch,
                )
            )
            # As `serve` does: auth.test against the stand-in (the installation the access rules compare with),
            # and the ops endpoints. No credential probes: they would add ZIM requests.
            await running.link.verify_bot_token(running.app.client)
            ops = ProcessHealth(link=running.link, lag=LoopLagMonitor(), state=replica_state, probes={})
            if app_token is None:
                runner, port = await start_http(
                    running.app,
                    LOOPBACK,
                    0,
                    ops,
                    signing_secret=signing_secret,
                    replay_guard=replica_state.replay_guard,
                )
                stack.push_async_callback(runner.cleanup)
                app_url: str | None = f"http://{LOOPBACK}:{port}{EVENTS_PATH}"
            else:
                runner, port = await start_ops_server(LOOPBACK, 0, ops)
                stack.push_async_callback(runner.cleanup)
                connection = await connect_socket_mode(running.app, app_token)
                stack.push_async_callback(connection.close)  # closed before the stand-in stops (LIFO)
                assert slack.socket is not None
                await slack.socket.wait_for_connections(opened=index + 1, live=index + 1)
                app_url = None
            ops.accepting = True
            replicas.append(Replica(running=running, app_url=app_url, ops_url=f"http://{LOOPBACK}:{port}"))
        local = LocalReplicas(sandbox=sandbox, slack=slack, replicas=replicas, slack_settings=slack_settings, mode=mode)
        if mode == "http":
            local.route(0)
        yield local


@asynccontextmanager
async def local_stack(
    *,
    sandbox: ZimSandbox | None = None,
    profiles: ZegoProfiles | None = None,
    qps: float = 20.0,
    state: SharedState | None = None,
    store: SnapshotStore | None = None,
    access: AccessPolicy | AccessRules | None = None,
    retry: RetryPolicy | None = None,
    mode: Mode = "http",
    slack_limits: RateLimits | None = None,
    limits: LimitSettings = DEV_LIMITS,
    updates: UpdateBudget | None = None,
    progress_every: float | None = None,
    watch: WatchSettings | None = None,
) -> AsyncIterator[LocalStack]:
    """One replica with in-process state: the product as `make demo` runs it (HTTP, or `mode="socket"`)."""
    async with local_replicas(
        1,
        sandbox=sandbox,
        profiles=profiles,
        qps=qps,
        state=state or memory_state(),
        store=store,
        access=access,
        retry=retry,
        mode=mode,
        slack_limits=slack_limits,
        limits=limits,
        updates=updates,
        progress_every=progress_every,
        watch=watch,
    ) as local:
        (only,) = local.replicas
        yield LocalStack(
            sandbox=local.sandbox,
            slack=local.slack,
            app=only.running.app,
            rosters=only.running.zego_apps,
            app_url=only.app_url,
            slack_settings=local.slack_settings,
            pending=only.running.deps.pending,
            ops_url=only.ops_url,
            mode=mode,
            watches=only.running.deps.watches,
        )
