"""The one composition root: settings → shared state → a ZEGO app (client, pacer, roster service) per profile
→ the Slack app. `serve`, `query`, the demo, the tests and the benchmarks all build the product here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import httpx

from bot.roster.apps import ZegoApp, ZegoApps
from bot.roster.model import Roster
from bot.roster.reads import ReadSlots
from bot.roster.service import SnapshotService
from bot.settings import LimitSettings, SlackSettings, WatchSettings, ZegoProfiles, ZegoSettings
from bot.state import SharedState
from bot.state.history import DEFAULT_HISTORY_HOURS, HistoryStore
from bot.state.leases import FetchLeases
from bot.state.pacer import SmoothPacer
from bot.state.progress import ProgressBoard
from bot.state.snapshots import MemorySnapshotStore, SnapshotStore
from bot.watch.poller import WatchPoller, ZegoTarget
from bot.zim import Pacer, RetryPolicy, ZimClient, fetch_roster, new_http_client
from bot.zim.paging import FetchProgress
from bot.zim.probe import CredentialProbe
from bot.zim.wire import MAX_LIMIT

if TYPE_CHECKING:  # `query` composes only the ZEGO side: it should not pay for importing Bolt and aiohttp
    from slack_bolt.async_app import AsyncApp

    from bot.slack.access import AccessPolicy, AccessRules
    from bot.slack.budget import UpdateBudget
    from bot.slack.deps import SlackDeps
    from bot.slack.link import SlackLink
    from bot.slack.watches import WatchDesk

PacerFactory = Callable[[ZegoSettings], Pacer]
ReadSlotsFactory = Callable[[ZegoSettings, int], ReadSlots | None]  # None: this replica's own line
PROBE_RETRY = RetryPolicy(max_attempts=2, total_budget=5.0)
WATCH_SHUTDOWN_GRACE = 5.0  # seconds a poll under way may take to post its alert when the app stops


def local_pacer(settings: ZegoSettings) -> Pacer:
    return SmoothPacer(settings.qps)


def _zim_client(
    settings: ZegoSettings,
    pacer: Pacer,
    http: httpx.AsyncClient,
    retry: RetryPolicy | None,
    *,
    page_limit: int = MAX_LIMIT,
) -> ZimClient:
    """One app's ZIM client: its credentials, the shared HTTP client and the app's pacer."""
    return ZimClient(
        app_id=settings.app_id,
        server_secret=settings.server_secret,
        base_url=settings.base_url,
        pacer=pacer,
        http=http,
        retry=retry,
        page_limit=page_limit,
        settings_prefix=settings.env_prefix,
    )


def _zego_app(
    settings: ZegoSettings,
    http: httpx.AsyncClient,
    store: SnapshotStore,
    pacer: Pacer,
    leases: FetchLeases | None,
    retry: RetryPolicy | None,
    limits: LimitSettings,
    progress_board: ProgressBoard | None = None,
    history: HistoryStore | None = None,
    history_hours: float = DEFAULT_HISTORY_HOURS,
    read_slots: ReadSlots | None = None,
) -> ZegoApp:
    client = _zim_client(settings, pacer, http, retry)
    # The probe's own client: the same credentials, HTTP client and pacer (inside the shared budget), one user
    # a page and a short retry budget, so a ZIM outage gives "no verdict" within seconds.
    probe_client = _zim_client(settings, pacer, http, PROBE_RETRY, page_limit=1)

    async def fetch(room_id: str, progress: FetchProgress) -> Roster:
        return await fetch_roster(
            client, room_id, progress=progress, first_mode=progress.first_mode, size_hint=progress.size_hint
        )

    # The namespace keeps apps apart in a shared store; the same room ID in two apps is two rooms.
    snapshots = SnapshotService(
        store=store,
        fetch=fetch,
        namespace=f"zim:{settings.app_id}",
        leases=leases,
        progress_board=progress_board,
        profile=settings.profile,
        max_concurrent_reads=limits.max_concurrent_reads,
        read_deadline=limits.read_deadline,
        refresh_min=limits.refresh_min,
        read_slots=read_slots,
        history=history,
        history_hours=history_hours,
    )
    probe = CredentialProbe(probe_client, profile=settings.profile)
    watch_client = _zim_client(settings, pacer, http, retry, page_limit=1)
    return ZegoApp(profile=settings.profile, client=client, snapshots=snapshots, probe=probe, watch_client=watch_client)


@asynccontextmanager
async def open_zego_apps(
    profiles: ZegoProfiles,
    *,
    store: SnapshotStore | None = None,
    pacer_for: PacerFactory = local_pacer,
    leases: FetchLeases | None = None,
    retry: RetryPolicy | None = None,
    limits: LimitSettings | None = None,
    progress_board: ProgressBoard | None = None,
    read_slots_for: ReadSlotsFactory | None = None,
    history: HistoryStore | None = None,
    history_hours: float = DEFAULT_HISTORY_HOURS,
) -> AsyncIterator[ZegoApps]:
    """A ZegoApp per profile sharing one HTTP client and one store; each app gets its own pacer (its own limit)."""
    shared_store = store or MemorySnapshotStore()
    reads_limit = (limits or LimitSettings()).max_concurrent_reads
    async with new_http_client() as http:
        apps = {
            name: _zego_app(
                settings,
                http,
                shared_store,
                pacer_for(settings),
                leases,
                retry,
                limits or LimitSettings(),
                progress_board,
                history=history,
                history_hours=history_hours,
                read_slots=read_slots_for(settings, reads_limit) if read_slots_for is not None else None,
            )
            for name, settings in profiles.by_name.items()
        }
        try:
            yield ZegoApps(default=profiles.default, by_profile=apps)
        finally:
            for app in apps.values():
                await app.snapshots.aclose()


@asynccontextmanager
async def open_zego_app(
    settings: ZegoSettings, *, store: SnapshotStore | None = None, retry: RetryPolicy | None = None
) -> AsyncIterator[ZegoApp]:
    """A single profile (the `query` command)."""
    profiles = ZegoProfiles(default=settings.profile, by_name={settings.profile: settings})
    async with open_zego_apps(profiles, store=store, retry=retry) as rosters:
        yield rosters.by_profile[settings.profile]


@dataclass(frozen=True)
class RunningApp:
    app: AsyncApp
    zego_apps: ZegoApps
    deps: SlackDeps
    state: SharedState
    link: SlackLink


@asynccontextmanager
async def compose_app(
    profiles: ZegoProfiles,
    slack: SlackSettings,
    *,
    state: SharedState,
    access: AccessPolicy | AccessRules | None = None,
    retry: RetryPolicy | None = None,
    updates: UpdateBudget | None = None,
    progress_every: float | None = None,
    mode: Literal["http", "socket"] = "http",
    limits: LimitSettings | None = None,
    watch: WatchSettings | None = None,
) -> AsyncIterator[RunningApp]:
    """The Slack app over `state` (in-process, or Redis shared by every replica). `updates`/`progress_every`
    override the chat.update budget and the progress interval (tests and benchmarks). The watch poller runs
    while the app does."""

    def pacer_for(settings: ZegoSettings) -> Pacer:
        # One limit per ZEGO app, shared by all replicas when the state is in Redis.
        return state.pacer_for(f"zim:{settings.app_id}", qps=settings.qps)

    async with open_zego_apps(
        profiles,
        store=state.store,
        pacer_for=pacer_for,
        leases=state.leases,
        retry=retry,
        limits=limits,
        progress_board=state.progress_board(),
        read_slots_for=lambda settings, limit: state.read_slots_for(
            f"zim:{settings.app_id}", limit=limit, profile=settings.profile
        ),
        history=state.history,
        history_hours=state.history_hours,
    ) as rosters:
        # Here, not at the top: the Slack side is what `query` never needs.
        from bot.slack.access import AccessRules
        from bot.slack.answers import RoomAnswers
        from bot.slack.app import build_app
        from bot.slack.deps import SlackDeps
        from bot.slack.link import SlackLink

        link = SlackLink(mode)
        watches = _watch_desk(rosters, profiles, slack, state, watch or WatchSettings())
        deps = SlackDeps(
            answers=RoomAnswers(rosters),
            access=access if isinstance(access, AccessRules) else AccessRules(access, default_profile=profiles.default),
            deduper=state.deduper,
            user_rate=state.user_rate((limits or LimitSettings()).user_rate),
            watches=watches,
        )
        if updates is not None or progress_every is not None:
            deps = replace(deps, updates=updates or deps.updates, progress_every=progress_every or deps.progress_every)
        watches.poller.start()
        try:
            yield RunningApp(app=build_app(slack, deps), zego_apps=rosters, deps=deps, state=state, link=link)
        finally:
            await watches.poller.aclose(grace=WATCH_SHUTDOWN_GRACE)


def _watch_desk(
    rosters: ZegoApps, profiles: ZegoProfiles, slack: SlackSettings, state: SharedState, settings: WatchSettings
) -> WatchDesk:
    """The watch poller (reading through each app's pacer, background share) and what Slack asks of it."""
    from bot.slack.app import web_client
    from bot.slack.watches import SlackWatchNotifier, WatchDesk

    targets = {
        name: ZegoTarget(app.watch_client or app.client, profiles.by_name[name].qps)
        for name, app in rosters.by_profile.items()
    }
    desk_label = (lambda profile: profile) if rosters.several else (lambda profile: "")
    notifier = SlackWatchNotifier(web_client(slack), settings, desk_label)
    poller = WatchPoller(
        state.watch_store(), targets, notifier, interval=settings.interval, share=state.background_share
    )
    return WatchDesk(poller, settings, rosters, notifier=notifier)
