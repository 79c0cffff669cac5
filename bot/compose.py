"""Composition of the product: settings → rosters per ZEGO app → the Slack app. Used by `serve` and tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from slack_bolt.async_app import AsyncApp

from bot.config import SlackSettings, ZegoProfiles
from bot.dedupe import EventDeduper, MemoryEventDeduper
from bot.rosters import PacerFactory, Rosters, local_pacer, open_rosters
from bot.slack.access import AccessPolicy
from bot.slack.answers import RoomAnswers
from bot.slack.app import build_app
from bot.slack.deps import SlackDeps
from bot.snapshots import SnapshotStore
from bot.zim import RetryPolicy


@dataclass(frozen=True)
class RunningApp:
    app: AsyncApp
    rosters: Rosters
    deps: SlackDeps


@asynccontextmanager
async def compose_app(
    profiles: ZegoProfiles,
    slack: SlackSettings,
    *,
    access: AccessPolicy | None = None,
    store: SnapshotStore | None = None,
    deduper: EventDeduper | None = None,
    pacer_for: PacerFactory = local_pacer,
    retry: RetryPolicy | None = None,
) -> AsyncIterator[RunningApp]:
    async with open_rosters(profiles, store=store, pacer_for=pacer_for, retry=retry) as rosters:
        deps = SlackDeps(
            answers=RoomAnswers(rosters),
            access=access or AccessPolicy(),
            deduper=deduper or MemoryEventDeduper(),
        )
        yield RunningApp(app=build_app(slack, deps), rosters=rosters, deps=deps)
