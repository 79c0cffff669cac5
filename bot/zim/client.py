"""The ZIM HTTP client: one signed, paced, retried QueryRoomUserList or QueryRoomMembers call at a time."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

import httpx

from bot.observability.metrics import LIMITER_WAIT_SECONDS, ZIM_REQUESTS, ZIM_RETRIES
from bot.zim import codes
from bot.zim.errors import SendSlotWaitExhausted, ZimCredentialsRejected, ZimError, ZimRejected, ZimUnavailable
from bot.zim.members import MEMBERS_ACTION, RoomMembers, decode_members, members_query, validate_user_ids
from bot.zim.models import Page
from bot.zim.pacing import Pacer, Priority
from bot.zim.room_id import validate_room_id
from bot.zim.signing import common_params, encode_query
from bot.zim.wire import ACTION, MAX_LIMIT, TransientAnswer, decode_page, page_params

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT = httpx.Timeout(12.0, connect=5.0)
RATE_LIMIT_COOL_DOWN = 1.0  # ZIM's window is one second of arrivals
# True while this task's current attempt waits for a pacer slot, so a budget running out there is told apart
# from one running out on ZIM (the caller's task and context: set and read by one request's attempts).
_WAITING_FOR_SLOT: ContextVar[bool] = ContextVar("zim_waiting_for_slot", default=False)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and in total time."""

    max_attempts: int = 6
    base_delay: float = 0.2
    max_delay: float = 3.0
    total_budget: float = 25.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


class ZimClient:
    """Signs every request afresh, waits for the shared pacer, and retries what is transient."""

    def __init__(
        self,
        *,
        app_id: int,
        server_secret: str,
        base_url: str,
        pacer: Pacer,
        http: httpx.AsyncClient,
        retry: RetryPolicy | None = None,
        page_limit: int = MAX_LIMIT,
        settings_prefix: str = "ZEGO_",
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._app_id = app_id
        self._secret = server_secret
        self._base_url = base_url.rstrip("/")
        self._pacer = pacer
        self._http = http
        self._retry = retry or RetryPolicy()
        self.page_limit = page_limit
        self._settings_prefix = settings_prefix
        self._clock = clock
        self._rng = rng or random.Random()

    def __repr__(self) -> str:
        return f"ZimClient(app_id={self._app_id}, base_url={self._base_url!r})"

    @property
    def app_id(self) -> int:
        return self._app_id

    async def query_page(self, room_id: str, *, mode: int, cursor: str, priority: Priority = "interactive") -> Page:
        """One page of QueryRoomUserList, retried until it succeeds, fails for good, or the budget ends."""
        return await self._retrying(
            lambda: self._send(room_id, mode=mode, cursor=cursor, priority=priority),
            what=f"room={room_id!r} mode={mode}",
            cool_down_on=codes.RATE_LIMITED,
        )

    async def query_members(
        self, room_id: str, user_ids: Iterable[str], *, priority: Priority = "interactive"
    ) -> RoomMembers:
        """QueryRoomMembers: which of `user_ids` (at most 10) are in the room, in one round trip.

        The room ID and user IDs are checked first (InvalidRoomId / InvalidUserIds, nothing sent); duplicate
        IDs are asked once. Retried like `query_page`, except that QueryRoomMembers' own room-level limit
        (660300006, 5/s per room) only backs this call off: it does not hold every other sender of the app.
        A room being destroyed (660300008) is an answer (`being_destroyed`, nobody in), not an error.
        """
        validate_room_id(room_id)
        asked = validate_user_ids(user_ids)
        return await self._retrying(
            lambda: self._send_members(room_id, asked, priority=priority),
            what=f"members room={room_id!r} users={len(asked)}",
            cool_down_on=codes.RATE_LIMITED - {codes.ROOM_RATE_LIMITED},
        )

    async def _retrying(self, send: Callable[[], Awaitable[T]], *, what: str, cool_down_on: frozenset[int]) -> T:
        """`send()` retried while ZIM's answers are transient, within the policy's attempts and total budget."""
        started = time.monotonic()
        attempt = 0
        last: TransientAnswer | None = None
        while True:
            attempt += 1
            remaining = self._retry.total_budget - (time.monotonic() - started)
            _WAITING_FOR_SLOT.set(False)
            try:
                # The budget bounds every attempt too: its wait for a send slot and its HTTP exchange.
                async with asyncio.timeout(remaining):
                    return await send()
            except TimeoutError:
                if _WAITING_FOR_SLOT.get():
                    raise SendSlotWaitExhausted(
                        f"No ZIM send slot came free within {self._retry.total_budget:.0f} s "
                        "(other requests of this app had the rate), so ZIM was not asked.",
                        attempts=attempt,
                    ) from None
                last = last or TransientAnswer("the request did not complete in time")
                raise self._gave_up(last, attempt, started).naming_settings(self._settings_prefix) from None
            except TransientAnswer as answer:
                last = answer
                if answer.code in cool_down_on:
                    await self._pacer.cool_down(RATE_LIMIT_COOL_DOWN)
            except ZimCredentialsRejected as rejected:
                # An expired signature is worth one fresh signature (the clock may have just been fixed).
                if rejected.code != codes.SIGNATURE_EXPIRED or attempt > 1:
                    raise rejected.naming_settings(self._settings_prefix) from None
                last = TransientAnswer(rejected.message, code=rejected.code, request_id=rejected.request_id)
            except ZimRejected as rejected:  # e.g. "…; check ZEGO_API_BASE_URL" for another profile's URL
                raise rejected.naming_settings(self._settings_prefix) from None
            delay = self._retry.backoff(attempt, self._rng)
            elapsed = time.monotonic() - started
            if attempt >= self._retry.max_attempts or elapsed + delay > self._retry.total_budget:
                raise self._gave_up(last, attempt, started).naming_settings(self._settings_prefix)
            ZIM_RETRIES.inc()
            log.info("zim retry %s attempt=%d in %.2fs: %s", what, attempt, delay, last)
            await asyncio.sleep(delay)

    @staticmethod
    def _gave_up(last: TransientAnswer, attempts: int, started: float) -> ZimUnavailable:
        elapsed = time.monotonic() - started
        return ZimUnavailable(
            f"ZIM is unavailable: {last.description} (gave up after {attempts} attempts in {elapsed:.1f} s).",
            code=last.code,
            request_id=last.request_id,
            attempts=attempts,
        )

    async def _wait_turn(self, priority: Priority) -> None:
        _WAITING_FOR_SLOT.set(True)  # stays set if the budget's timeout cancels the wait
        if priority == "background":
            LIMITER_WAIT_SECONDS.observe(await self._pacer.wait_background_turn())
        else:
            LIMITER_WAIT_SECONDS.observe(await self._pacer.wait_turn())
        _WAITING_FOR_SLOT.set(False)

    async def _get(self, url: str) -> httpx.Response:
        try:
            return await self._http.get(url)
        except httpx.TimeoutException:
            ZIM_REQUESTS.labels("timeout").inc()
            raise TransientAnswer("the request timed out") from None
        except httpx.TransportError as exc:
            ZIM_REQUESTS.labels("connection").inc()
            raise TransientAnswer(f"the connection failed ({type(exc).__name__})") from None

    async def _send_members(self, room_id: str, asked: tuple[str, ...], *, priority: Priority) -> RoomMembers:
        await self._wait_turn(priority)
        common = common_params(MEMBERS_ACTION, self._app_id, self._secret, clock=self._clock)
        url = f"{self._base_url}/?{members_query(common, room_id, asked)}"
        sent = time.monotonic()
        response = await self._get(url)
        try:
            members = decode_members(response.status_code, response.content, room_id=room_id, asked=asked)
        except (TransientAnswer, ZimError) as error:
            ZIM_REQUESTS.labels(_code_label(error.code, response.status_code)).inc()
            raise
        ZIM_REQUESTS.labels(str(codes.ROOM_EMPTY if members.being_destroyed else codes.SUCCESS)).inc()
        log.debug(
            "zim members room=%r asked=%d in=%d request_id=%s %.0fms",
            room_id,
            len(asked),
            len(members.present),
            members.request_id,
            (time.monotonic() - sent) * 1000,
        )
        return members

    async def _send(self, room_id: str, *, mode: int, cursor: str, priority: Priority = "interactive") -> Page:
        await self._wait_turn(priority)
        params = common_params(ACTION, self._app_id, self._secret, clock=self._clock)
        params.update(page_params(room_id, mode=mode, cursor=cursor, limit=self.page_limit))
        url = f"{self._base_url}/?{encode_query(params)}"
        sent = time.monotonic()
        response = await self._get(url)
        try:
            page = decode_page(response.status_code, response.content)
        except (TransientAnswer, ZimError) as error:
            ZIM_REQUESTS.labels(_code_label(error.code, response.status_code)).inc()
            raise
        ZIM_REQUESTS.labels(str(codes.ROOM_EMPTY if page.being_destroyed else codes.SUCCESS)).inc()
        log.debug(
            "zim page room=%r mode=%d users=%d count=%d request_id=%s %.0fms",
            room_id,
            mode,
            len(page.users),
            page.count,
            page.request_id,
            (time.monotonic() - sent) * 1000,
        )
        return page


def _code_label(code: int | None, status: int) -> str:
    if code is not None:
        return str(code)
    return "not_json" if status == 200 else f"http_{status}"


def new_http_client(timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> httpx.AsyncClient:
    # Two keep-alive connections serve the two paging chains of a fetch; more are opened on demand.
    return httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_keepalive_connections=20))
