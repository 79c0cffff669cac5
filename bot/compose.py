"""Composition of the product: settings → shared state → rosters per ZEGO app → the Slack app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from slack_bolt.async_app import AsyncApp

from bot.config import SlackSettings, ZegoProfiles, ZegoSettings
from bot.rosters import Rosters, open_rosters
from bot.shared_state import SharedState
from bot.slack.access import AccessPolicy
from bot.slack.answers import RoomAnswers
from bot.slack.app import build_app
from bot.slack.deps import SlackDeps
from bot.zim import Pacer, RetryPolicy


@dataclass(frozen=True)
class RunningApp:
    app: AsyncApp
    rosters: Rosters
    deps: SlackDeps
    state: SharedState


@asynccontextmanager
async def compose_app(
    profiles: ZegoProfiles,
    slack: SlackSettings,
    *,
    state: SharedState,
    access: AccessPolicy | None = None,
    retry: RetryPolicy | None = None,
) -> AsyncIterator[RunningApp]:
    """The Slack app over `state` (in-process, or Redis shared by every replica)."""

    def pacer_for(settings: ZegoSettings) -> Pacer:
        # One limit per ZEGO app, shared by all replicas when the state is in Redis.
        return state.pacer_for(f"zim:{settings.app_id}", qps=settings.qps)

    async with open_rosters(
        profiles, store=state.store, pacer_for=pacer_for, flights=state.flights, retry=retry
    ) as rosters:
        deps = SlackDeps(answers=RoomAnswers(rosters), access=access or AccessPolicy(), deduper=state.deduper)
        yield RunningApp(app=build_app(slack, deps), rosters=rosters, deps=deps, state=state)
