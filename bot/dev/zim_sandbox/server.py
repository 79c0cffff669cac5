"""A local ZIM server that speaks QueryRoomUserList and QueryRoomMembers over real HTTP, for tests,
benchmarks and demos.

Faithful where the client can tell: the same signature, parameter checks and return codes as zim-api.md §4,
an opaque cursor, a 20 req/s sliding-window limit, and HTTP 200 JSON for every ZIM-level error. Stricter
where the real service is vague (a forged NextFlag or Limit=0 is 660000002 here), so a client that passes
against the sandbox relies on nothing undocumented.

QueryRoomMembers (§5c) has its own window of 5 requests per second per room on top of the app's 20/s
(the docs do not say whether it also counts toward the app's limit; here it does, the harsher reading), the
limit of 10 user IDs, UserList (snake_case) / ErrorList with SubCodes 660300012 (not in the room) and
660200001 (not registered or logged out: a user in no room of the sandbox and not in `logged_in`).

Answers are computed synchronously from precomputed JSON fragments (a 500-user page costs microseconds);
only simulated latency and `delay` faults await, and both end at once when the sandbox stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import secrets
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType

from aiohttp import web
from multidict import MultiMapping

from bot.dev.zim_sandbox.changes import ChangeOp, ScheduledChange
from bot.dev.zim_sandbox.control import ControlApi
from bot.dev.zim_sandbox.credentials import SANDBOX_APP_ID, SANDBOX_SERVER_SECRET
from bot.dev.zim_sandbox.cursor import CursorCodec
from bot.dev.zim_sandbox.faults import (
    DEFAULT_GARBAGE,
    PAGE_KINDS,
    TRANSPORT_KINDS,
    Fault,
    FaultPlan,
    page_fault_applies,
)
from bot.dev.zim_sandbox.protocol import (
    ACTIONS,
    MEMBERS_ACTION,
    ListParams,
    MembersParams,
    Rejection,
    check_signed,
    members_room_key,
    parse_list_params,
    parse_members_params,
    request_mode,
)
from bot.dev.zim_sandbox.ratelimit import ArrivalWindow, RoomWindows
from bot.dev.zim_sandbox.rooms import (
    MAX_LOAD_USERS,
    RoomState,
    SandboxRoom,
    generated_users,
    load_room,
    page_bounds,
    seed_rooms,
)
from bot.dev.zim_sandbox.stats import SandboxStats
from bot.dev.zim_sandbox.wire import Reply, code_reply, members_reply, success_reply
from bot.slack.render.escaping import LONE_SURROGATE
from bot.web import http_url, start_site
from bot.zim.codes import ROOM_EMPTY, ROOM_NOT_FOUND, ROOM_RATE_LIMITED, ROOM_UNAVAILABLE
from bot.zim.room_id import room_id_problem

NOT_IN_ROOM = 660300012  # QueryRoomMembers SubCodes (zim-api.md §5c)
NOT_REGISTERED = 660200001

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8710
# Backstop only: in-flight latency and delays end as soon as stop() is called.
_SHUTDOWN_GRACE_S = 1.0
# How early the latency timer is set (see ZimSandbox._pause): epoll's millisecond rounding, plus a wake-up.
_TIMER_SLACK_S = 0.0015
MAX_EVENTS_PER_ROOM = 10_000  # the event log is for tests and benchmarks; a read of 1M users is 2,000 pages

# One entry of a room's event log: ("page", mode, RequestId) for a successful page served, or
# ("op", op, user_id) for a scheduled change applied ("" when it affected nobody, e.g. destroy).
Event = tuple[str, int | str, str]


class ZimSandbox:
    """A strict local ZIM QueryRoomUserList and QueryRoomMembers server; see the module docstring.

    `clock` is the wall clock for the ±600 s Timestamp check; `monotonic` times arrivals for the QPS
    window and `stats.arrivals`. Inject either in tests instead of sleeping.

    `done_flag` is the NextFlag of a list's last page: "" by default (the newer docs), settable to "0"
    (what the older docs and both examples show) to check that a client accepts either.

    `members_qps` is QueryRoomMembers' limit per room; `logged_in` holds user IDs that are logged in to ZIM
    without being in any room (everyone in a room is logged in; anyone else is "not registered").
    """

    def __init__(
        self,
        *,
        app_id: int = SANDBOX_APP_ID,
        secret: str = SANDBOX_SERVER_SECRET,
        qps: int = 20,
        members_qps: int = 5,
        latency_ms: float = 0.0,
        jitter_ms: float = 0.0,
        rooms: dict[str, SandboxRoom] | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app_id = app_id
        self.secret = secret
        self.qps = qps
        self.members_qps = members_qps
        self.logged_in: set[str] = set()
        self.rooms = seed_rooms() if rooms is None else rooms
        self.faults = FaultPlan(latency_ms=latency_ms, jitter_ms=jitter_ms)
        self.stats = SandboxStats()
        self.done_flag = ""
        self._clock = clock
        self._monotonic = monotonic
        self._window = ArrivalWindow()  # check_signed admits only this sandbox's AppId: one window
        self._members_windows = RoomWindows()
        self._cursors = CursorCodec()
        # Unique 18-digit numeric RequestIds, like the real service's.
        self._request_ids = itertools.count(10**17 + secrets.randbelow(8 * 10**17))
        self._rng = random.Random()
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._stopping = asyncio.Event()
        self._pages_served: dict[tuple[str, int], int] = {}
        self._pending: list[ScheduledChange] = []
        self.applied: dict[str, list[dict[str, object]]] = {}
        self._events: dict[str, list[Event]] = {}

    # ----- setup -----------------------------------------------------------------------------------

    def add_room(
        self,
        room_id: str,
        users: int | list[tuple[str, str]],
        *,
        state: RoomState = "ok",
        record_history: bool = False,
    ) -> SandboxRoom:
        """Create or replace a room; an int generates that many deterministic users.

        Replacing a room forgets its scheduled changes, its event log and its page counters.
        """
        problem = room_id_problem(room_id)
        if problem is not None:
            raise ValueError(problem)
        if isinstance(users, int):
            if not 0 <= users <= MAX_LOAD_USERS:
                raise ValueError(f"users must be between 0 and {MAX_LOAD_USERS}")
            users = generated_users(users, seed=users)
        else:
            _refuse_lone_surrogates(users)
        room = SandboxRoom(room_id, users, state=state, record_history=record_history)
        self.rooms[room_id] = room
        self.clear_changes(room_id)
        self._events.pop(room_id, None)
        self.applied.pop(room_id, None)
        for mode in (0, 1):
            self._pages_served.pop((room_id, mode), None)
        return room

    def schedule(
        self, room_id: str, *, after: tuple[int, int] | None, ops: Sequence[ChangeOp | Mapping[str, object]]
    ) -> ScheduledChange:
        """Change `room_id` after the sandbox answers page `after=(mode, k)` of it (None or k=0: now).

        A change applied now is checked against the room first (ValueError, nothing changed); a scheduled
        one is checked when it lands, and an op whose user is no longer there (or already is) does nothing
        and is logged with an empty user ID. See changes.py.
        """
        room = self.rooms.get(room_id)
        if room is None:
            raise ValueError(f"no room {room_id!r}")
        parsed = tuple(op if isinstance(op, ChangeOp) else ChangeOp.from_json(op) for op in ops)
        if not parsed:
            raise ValueError("ops must not be empty")
        mode, page = after if after is not None else (None, 0)
        if mode is None or page == 0:
            for op in parsed:
                op.check(room)
        change = ScheduledChange(room_id, mode, page, parsed)
        if mode is None or page == 0:
            self._apply(change)
        else:
            self._pending.append(change)
        return change

    def pending_changes(self, room_id: str) -> list[ScheduledChange]:
        return [change for change in self._pending if change.room_id == room_id]

    def clear_changes(self, room_id: str) -> None:
        self._pending = [change for change in self._pending if change.room_id != room_id]

    def events(self, room_id: str) -> list[Event]:
        """The pages served and the changes applied for `room_id`, in order (at most MAX_EVENTS_PER_ROOM)."""
        return list(self._events.get(room_id, ()))

    def _log(self, room_id: str, event: Event) -> None:
        log = self._events.setdefault(room_id, [])
        if len(log) < MAX_EVENTS_PER_ROOM:
            log.append(event)

    def _apply(self, change: ScheduledChange) -> None:
        room = self.rooms.get(change.room_id)
        if room is None:
            return
        for op in change.ops:
            affected = op.apply(room)
            for user_id in affected or [""]:
                self._log(change.room_id, ("op", op.op, user_id))
        self.applied.setdefault(change.room_id, []).append({**change.to_json(), "count_after": len(room)})

    def _page_served(self, room_id: str, mode: int, *, from_start: bool, request_id: str) -> None:
        key = (room_id, mode)
        served = 1 if from_start else self._pages_served.get(key, 0) + 1
        self._pages_served[key] = served
        self._log(room_id, ("page", mode, request_id))
        due = [c for c in self._pending if (c.room_id, c.after_mode, c.after_page) == (room_id, mode, served)]
        for change in due:
            self._pending.remove(change)
            self._apply(change)

    def inject(self, fault: Fault) -> Fault:
        """Activate a fault; see bot.dev.zim_sandbox.faults for kinds, filters and when each applies."""
        return self.faults.add(fault)

    def reset_stats(self) -> None:
        self.stats.reset()

    # ----- protocol ----------------------------------------------------------------------------------

    def authenticate(self, query: MultiMapping[str]) -> Reply | None:
        """Common-parameter checks, then the QPS window; None when the request may go on."""
        checked = check_signed(query, app_id=self.app_id, secret=self.secret, now=self._clock(), actions=ACTIONS)
        if isinstance(checked, Rejection):
            return self._code(checked.code, checked.message)
        self.stats.record_nonce(checked.nonce)
        now = self._monotonic()
        self.stats.arrivals.append(now)
        # Every signed arrival counts, refused ones included, so hammering keeps a client limited.
        if self._window.arrive(now) > self.qps:
            return self._code(ROOM_RATE_LIMITED, f"QPS limit exceeded ({self.qps}/s)")
        return None

    def list_users(self, query: MultiMapping[str]) -> Reply:
        """QueryRoomUserList for an authenticated request: parameter checks, room state, one page."""
        params = parse_list_params(query, self._cursors)
        if isinstance(params, Rejection):
            return self._code(params.code, params.message)
        room = self.find_room(params.room_id)
        if room is None or room.gone:
            return self._code(ROOM_NOT_FOUND, "room not exist")
        if room.state == "unavailable":
            return self._code(ROOM_UNAVAILABLE, "failed to get room")
        if room.state == "destroying" or not room.users:
            return self._code(ROOM_EMPTY, "room has no users", Count=0, UserList=[])
        return self._page(room, params)

    def limit_members(self, query: MultiMapping[str]) -> Reply | None:
        """QueryRoomMembers' own window, 5 requests/s per room; None when the request may go on.

        Every arrival naming one room counts, refused ones included (as in the app's window); a request
        naming no single room cannot be counted against one and fails its parameter check next.
        """
        room_key = members_room_key(query)
        if room_key is not None and self._members_windows.arrive(room_key, self._monotonic()) > self.members_qps:
            return self._code(ROOM_RATE_LIMITED, f"QPS limit exceeded ({self.members_qps}/s)")
        return None

    def query_members(self, query: MultiMapping[str]) -> Reply:
        """QueryRoomMembers for an authenticated, admitted request: parameter checks, room state, the lists."""
        params = parse_members_params(query)
        if isinstance(params, Rejection):
            return self._code(params.code, params.message)
        room = self.find_room(params.room_id)
        if room is None or room.gone:
            return self._code(ROOM_NOT_FOUND, "room not exist")
        if room.state == "unavailable":
            return self._code(ROOM_UNAVAILABLE, "failed to get room")
        if room.state == "destroying" or not room.users:
            # Undocumented for QueryRoomMembers; answered as QueryRoomUserList does (a Code != 0 with an empty
            # ErrorList, which a client must not read as "all in"), the harsher reading.
            return self._code(ROOM_EMPTY, "room has no users", UserList=[], ErrorList=[])
        return self._members(room, params)

    def _members(self, room: SandboxRoom, params: MembersParams) -> Reply:
        present: list[tuple[str, str]] = []
        absent: list[tuple[str, int]] = []
        for user_id in params.user_ids:
            name = room.name_of(user_id)
            if name is not None:
                present.append((user_id, name))
            else:
                absent.append((user_id, NOT_IN_ROOM if self._logged_in(user_id) else NOT_REGISTERED))
        if not absent:
            return members_reply(0, "success", self._request_id(), present, absent)
        # The docs: Code != 0 with a non-empty ErrorList when none is in. For "some in" they are silent; a
        # non-zero Code is sent then too (the harsher reading: a client must trust the lists, not the Code).
        return members_reply(absent[0][1], "some users are not in the room", self._request_id(), present, absent)

    def _logged_in(self, user_id: str) -> bool:
        return user_id in self.logged_in or any(room.name_of(user_id) is not None for room in self.rooms.values())

    def find_room(self, room_id: str) -> SandboxRoom | None:
        """A known room, or a `load-<N>` room created now and kept for later pages."""
        room = self.rooms.get(room_id)
        if room is None:
            room = load_room(room_id)
            if room is not None:
                self.rooms[room_id] = room
        return room

    def _page(self, room: SandboxRoom, params: ListParams) -> Reply:
        users = room.encoded(reverse=params.mode == 1)
        total = len(users)
        offset = params.offset
        # A cursor can point past the end after users left; that page is simply empty.
        end = page_bounds(offset, params.limit, total)
        fault = self.faults.take(
            PAGE_KINDS,
            room_id=params.room_id,
            mode=params.mode,
            applies=lambda f: page_fault_applies(f, offset=offset, end=end, total=total, from_start=params.from_start),
        )
        count = total
        if fault is not None:
            self.stats.faults_applied[fault.kind] += 1
            if fault.kind == "short_page":
                end = offset + fault.size
            elif fault.kind == "count_drift":
                count = max(0, total + fault.delta)
        next_flag = self.done_flag if end >= total else self._cursors.encode(params.room_id, params.mode, end)
        if fault is not None and fault.kind == "repeat_cursor":
            next_flag = params.next_flag
        elif fault is not None and fault.kind == "endless_cursor":
            # end + 1 is past the end and grows every page, so each cursor is new and never "done".
            next_flag = self._cursors.encode(params.room_id, params.mode, end + 1)
        request_id = self._request_id()
        reply = success_reply(request_id, count, next_flag, users[offset:end])
        # Scheduled changes land here: after this page is built, before any later request is handled.
        self._page_served(params.room_id, params.mode, from_start=params.from_start, request_id=request_id)
        return reply

    def _fault_reply(self, fault: Fault) -> Reply:
        if fault.kind == "code":
            return self._code(fault.code, fault.error_message)
        if fault.kind == "http_status":
            body = fault.body if fault.body is not None else f"<html>{fault.status} sandbox fault</html>"
            content_type = "application/json" if body.lstrip().startswith("{") else "text/html"
            return Reply(body.encode(), f"http_{fault.status}", fault.status, content_type)
        # "garbage": a 200 whose body is not JSON, as from a misconfigured proxy.
        body = fault.body if fault.body is not None else DEFAULT_GARBAGE
        return Reply(body.encode(), "garbage", 200, "text/html")

    def _code(self, code: int, message: str, **extra: object) -> Reply:
        return code_reply(code, message, self._request_id(), **extra)

    def _request_id(self) -> str:
        return str(next(self._request_ids))

    # ----- HTTP --------------------------------------------------------------------------------------

    async def _decide(self, query: MultiMapping[str]) -> Reply | None:
        """The answer to one API request; None means drop the connection without answering."""
        self.stats.requests += 1
        room_id = query.get("RoomId")
        if room_id is not None:
            self.stats.per_room[room_id] += 1
        action = query.get("Action")
        members = action == MEMBERS_ACTION
        if members:
            self.stats.members_requests += 1
        rejection = self.authenticate(query)
        if rejection is not None:
            return rejection
        if members:
            rejection = self.limit_members(query)
            if rejection is not None:
                return rejection
        mode = None if members else request_mode(query)
        fault = self.faults.take(TRANSPORT_KINDS, room_id=room_id, mode=mode, action=action)
        if fault is not None:
            self.stats.faults_applied[fault.kind] += 1
            if fault.kind == "drop":
                return None
            if fault.kind != "delay":
                return self._fault_reply(fault)
            await self._pause(fault.seconds)
        return self.query_members(query) if members else self.list_users(query)

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        reply = await self._decide(request.query)
        key = "drop" if reply is None else reply.stat_key
        self.stats.record_answer(key, rate_limited=key == ROOM_RATE_LIMITED)
        await self._pause(self.faults.latency_seconds(self._rng))
        if reply is None:
            # Close without a byte of response: the client sees "server disconnected" (RemoteProtocolError).
            if request.transport is not None:
                request.transport.close()
            return web.Response()
        return web.Response(body=reply.body, status=reply.status, content_type=reply.content_type, charset="utf-8")

    async def _pause(self, seconds: float) -> None:
        """Sleep `seconds`, but wake at once if the sandbox stops, so stop() never waits out a long delay.

        The event loop's timers overshoot: epoll waits in whole milliseconds, rounded up, so a 100 ms timer
        fired ~0.9 ms late on average (measured). The injected latency is meant to be a network's RTT, exact,
        so the timer is set _TIMER_SLACK_S early and the rest is waited out yielding to the loop.
        """
        if seconds <= 0:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline - _TIMER_SLACK_S):
                await self._stopping.wait()
        # A spin of at most _TIMER_SLACK_S that yields to the loop on every turn (~3% of a core at 20 req/s).
        while loop.time() < deadline and not self._stopping.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0)

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._handle_api)
        ControlApi(self).register(app.router)
        return app

    async def start(self, host: str = DEFAULT_HOST, port: int = 0) -> str:
        """Listen on host:port (0 picks a free port) and return the base URL to give the client."""
        if self._runner is not None:
            raise RuntimeError("the sandbox is already running")
        self._stopping = asyncio.Event()
        self._runner, bound_port = await start_site(self.make_app(), host, port, shutdown_timeout=_SHUTDOWN_GRACE_S)
        self._base_url = http_url(host, bound_port)
        return self._base_url

    async def stop(self) -> None:
        """Stop listening, end in-flight pauses and close connections; safe to call twice."""
        self._stopping.set()
        runner, self._runner, self._base_url = self._runner, None, None
        if runner is not None:
            await runner.cleanup()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the sandbox is not running; await start() first")
        return self._base_url

    async def __aenter__(self) -> ZimSandbox:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def _refuse_lone_surrogates(users: list[tuple[str, str]]) -> None:
    """A lone surrogate cannot be sent as UTF-8, so a room holding one could answer no page (HTTP 500)."""
    for index, (user_id, user_name) in enumerate(users):
        for field, value in (("user_id", user_id), ("user_name", user_name)):
            found = LONE_SURROGATE.search(value)
            if found is not None:
                raise ValueError(
                    f"users[{index}].{field} contains a lone surrogate (U+{ord(found.group()):04X}), which UTF-8 "
                    "cannot carry; ZIM never sends one"
                )


def sandbox_banner(sandbox: ZimSandbox) -> str:
    """The lines run_sandbox prints: the `export` ones work pasted into a shell and in a .env file alike."""
    rooms = ", ".join([*sandbox.rooms, f"load-<N> (any N up to {MAX_LOAD_USERS})"])
    return "\n".join(
        (
            f"ZIM sandbox listening on {sandbox.base_url}",
            "Paste these lines into a shell (or a .env file in the directory you run roomusers from):",
            f"export ZEGO_API_BASE_URL={sandbox.base_url}",
            f"export ZEGO_APP_ID={sandbox.app_id}",
            f"export ZEGO_SERVER_SECRET={sandbox.secret}",
            f"Demo rooms: {rooms}",
        )
    )


async def run_sandbox(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, latency_ms: float = 0.0) -> None:
    """Serve a sandbox until cancelled, SIGINT or SIGTERM, printing the settings to use it."""
    sandbox = ZimSandbox(latency_ms=latency_ms)
    await sandbox.start(host, port)
    try:
        print(sandbox_banner(sandbox), flush=True)
        await _until_signalled()
    finally:
        await sandbox.stop()


async def _until_signalled() -> None:
    """Wait for SIGINT/SIGTERM (or cancellation), leaving the process's signal handlers as they were."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
            continue
        installed.append(sig)
    try:
        await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
