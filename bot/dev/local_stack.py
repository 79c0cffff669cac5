"""The whole product on loopback with no credentials: ZIM sandbox + real Bolt app(s) over HTTP + Slack stand-in.

`make demo`, `python -m bot console`, the end-to-end tests and the benchmarks all run exactly this stack.
With `local_replicas(n, redis_url=...)` several app replicas share one Redis, the way a deployment behind a
load balancer does; `route(i)` sends the stand-in's next requests to replica i.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace

from slack_bolt.async_app import AsyncApp

from bot.dev.slack_standin import SlackStandIn
from bot.dev.zim_sandbox import ZimSandbox
from bot.roster.apps import ZegoApps
from bot.runtime import RunningApp, compose_app
from bot.settings import DEFAULT_PROFILE, SlackSettings, ZegoProfiles, ZegoSettings
from bot.slack.access import AccessPolicy
from bot.slack.http import EVENTS_PATH, start_http
from bot.slack.pending import PendingAnswers
from bot.state import SharedState, build_shared_state, memory_state
from bot.state.snapshots import SnapshotStore
from bot.zim import RetryPolicy

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Replica:
    running: RunningApp
    app_url: str


@dataclass(frozen=True)
class LocalReplicas:
    sandbox: ZimSandbox
    slack: SlackStandIn
    replicas: list[Replica]
    slack_settings: SlackSettings

    def route(self, index: int) -> None:
        """Deliver the stand-in's next requests to replica `index` (a load balancer's choice)."""
        self.slack.app_url = self.replicas[index].app_url


@dataclass(frozen=True)
class LocalStack:
    sandbox: ZimSandbox
    slack: SlackStandIn
    app: AsyncApp
    rosters: ZegoApps
    app_url: str
    slack_settings: SlackSettings
    pending: PendingAnswers  # the answers under way in the app (the console waits for them at the end)


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
    access: AccessPolicy | None = None,
    retry: RetryPolicy | None = None,
) -> AsyncIterator[LocalReplicas]:
    """Start everything on free loopback ports; stop it all on exit. Fresh demo secrets each time.

    Each replica gets its own shared-state client (`redis_url`, or in-process state when None), as separate
    processes would; `state`/`store` override that for a single replica.
    """
    async with AsyncExitStack() as stack:
        if sandbox is None:
            sandbox = await stack.enter_async_context(ZimSandbox())
        bot_token = f"xoxb-local-{secrets.token_hex(8)}"
        signing_secret = secrets.token_hex(16)
        slack = await stack.enter_async_context(SlackStandIn(signing_secret=signing_secret, bot_token=bot_token))
        if profiles is None:
            default = sandbox_profile(sandbox, qps=qps)
            profiles = ZegoProfiles(default=default.profile, by_name={default.profile: default})
        slack_settings = SlackSettings(
            bot_token=bot_token, signing_secret=signing_secret, api_base_url=slack.api_base_url
        )
        replicas = []
        for _ in range(count):
            replica_state = state or await build_shared_state(redis_url)
            if store is not None:
                replica_state = replace(replica_state, store=store)
            stack.push_async_callback(replica_state.aclose)
            running = await stack.enter_async_context(
                compose_app(profiles, slack_settings, state=replica_state, access=access, retry=retry)
            )
            runner, port = await start_http(
                running.app, LOOPBACK, 0, replica_state.health, signing_secret=signing_secret
            )
            stack.push_async_callback(runner.cleanup)
            replicas.append(Replica(running=running, app_url=f"http://{LOOPBACK}:{port}{EVENTS_PATH}"))
        local = LocalReplicas(sandbox=sandbox, slack=slack, replicas=replicas, slack_settings=slack_settings)
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
    access: AccessPolicy | None = None,
    retry: RetryPolicy | None = None,
) -> AsyncIterator[LocalStack]:
    """One replica with in-process state: the product as `make demo` runs it."""
    async with local_replicas(
        1,
        sandbox=sandbox,
        profiles=profiles,
        qps=qps,
        state=state or memory_state(),
        store=store,
        access=access,
        retry=retry,
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
        )
