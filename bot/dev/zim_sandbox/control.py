"""The sandbox's control API under /_sandbox/, so tests and benchmarks in other processes can steer it.

GET  /_sandbox/stats[?arrivals=1]   counters (and the arrival times)
POST /_sandbox/reset                zero the counters
GET  /_sandbox/faults               active faults
POST /_sandbox/faults               add a fault (JSON object) or several (JSON array)
DELETE /_sandbox/faults             remove every fault
POST /_sandbox/latency              {"latency_ms": 100, "jitter_ms": 0}; an absent key is left unchanged
GET  /_sandbox/rooms                room IDs with their size and state
POST /_sandbox/rooms                {"room_id": "x", "users": 1234 | [[id, name], ...], "state": "ok"}
POST /_sandbox/rooms/{room_id}/changes   {"after": {"mode": 0, "page": 1} | "now", "ops": [...]} (changes.py)
GET  /_sandbox/rooms/{room_id}/changes   {"pending": [...], "applied": [{"after", "ops", "count_after"}]}
DELETE /_sandbox/rooms/{room_id}/changes forget the pending changes
GET  /_sandbox/events?room_id=x     the room's pages served and changes applied, in order
GET  /healthz                       200 "ok"

Bad input gets HTTP 400 with {"error": "..."}; nothing here is signed, since the sandbox binds to loopback.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, cast

from aiohttp import web

from bot.dev.zim_sandbox.changes import ChangeOp, parse_after
from bot.dev.zim_sandbox.faults import Fault
from bot.dev.zim_sandbox.rooms import ROOM_STATES, RoomState

if TYPE_CHECKING:
    from bot.dev.zim_sandbox.server import ZimSandbox


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


async def _json_object(request: web.Request) -> dict[str, object]:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise _bad_request("the body must be a JSON object")
    return body


async def _json_body(request: web.Request) -> object:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _bad_request(f"the body is not valid JSON: {error}") from error


def _parse_users(value: object) -> int | list[tuple[str, str]]:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, list) and all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair) for pair in value
    ):
        return [(pair[0], pair[1]) for pair in value]
    raise _bad_request("users must be a count or a list of [user_id, user_name] pairs")


def _parse_state(value: object) -> RoomState:
    if isinstance(value, str) and value in ROOM_STATES:
        return cast(RoomState, value)  # ROOM_STATES holds exactly RoomState's values
    raise _bad_request(f"state must be one of {', '.join(ROOM_STATES)}")


class ControlApi:
    """Request handlers bound to one sandbox."""

    def __init__(self, sandbox: ZimSandbox) -> None:
        self._sandbox = sandbox

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_get("/healthz", self.healthz)
        router.add_get("/_sandbox/stats", self.stats)
        router.add_post("/_sandbox/reset", self.reset)
        router.add_get("/_sandbox/faults", self.list_faults)
        router.add_post("/_sandbox/faults", self.add_faults)
        router.add_delete("/_sandbox/faults", self.clear_faults)
        router.add_post("/_sandbox/latency", self.set_latency)
        router.add_get("/_sandbox/rooms", self.list_rooms)
        router.add_post("/_sandbox/rooms", self.add_room)
        router.add_post("/_sandbox/rooms/{room_id}/changes", self.add_changes)
        router.add_get("/_sandbox/rooms/{room_id}/changes", self.list_changes)
        router.add_delete("/_sandbox/rooms/{room_id}/changes", self.clear_changes)
        router.add_get("/_sandbox/events", self.events)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def stats(self, request: web.Request) -> web.Response:
        include = request.query.get("arrivals", "") in ("1", "true")
        return web.json_response(self._sandbox.stats.to_json(include_arrivals=include))

    async def reset(self, request: web.Request) -> web.Response:
        self._sandbox.reset_stats()
        return web.json_response(self._sandbox.stats.to_json())

    async def list_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"faults": [fault.to_json() for fault in self._sandbox.faults.faults]})

    async def add_faults(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        items = body if isinstance(body, list) else [body]
        try:
            faults = [Fault.from_json(item) for item in items]
        except (TypeError, ValueError) as error:
            raise _bad_request(str(error)) from error
        # Validate them all before adding any, so a bad batch changes nothing.
        for fault in faults:
            self._sandbox.inject(fault)
        return await self.list_faults(request)

    async def clear_faults(self, request: web.Request) -> web.Response:
        self._sandbox.faults.clear()
        return await self.list_faults(request)

    async def set_latency(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        unknown = sorted(set(body) - {"latency_ms", "jitter_ms"})
        if unknown:
            raise _bad_request(f"unknown field(s): {', '.join(unknown)}; expected latency_ms, jitter_ms")
        plan = self._sandbox.faults
        try:
            plan.set_latency(
                latency_ms=_optional_number(body.get("latency_ms"), "latency_ms"),
                jitter_ms=_optional_number(body.get("jitter_ms"), "jitter_ms"),
            )
        except ValueError as error:
            raise _bad_request(str(error)) from error
        return web.json_response({"latency_ms": plan.latency_ms, "jitter_ms": plan.jitter_ms})

    async def list_rooms(self, request: web.Request) -> web.Response:
        rooms = self._sandbox.rooms.values()
        return web.json_response({"rooms": [{"room_id": r.room_id, "count": len(r), "state": r.state} for r in rooms]})

    async def add_room(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        room_id = body.get("room_id")
        if not isinstance(room_id, str):
            raise _bad_request("room_id must be a string")
        users = _parse_users(body.get("users", 0))
        state = _parse_state(body.get("state", "ok"))
        try:
            room = self._sandbox.add_room(room_id, users, state=state)
        except ValueError as error:
            raise _bad_request(str(error)) from error
        return web.json_response({"room_id": room.room_id, "count": len(room), "state": room.state})

    async def add_changes(self, request: web.Request) -> web.Response:
        room_id = request.match_info["room_id"]
        body = await _json_object(request)
        unknown = sorted(set(body) - {"after", "ops"})
        if unknown:
            raise _bad_request(f"unknown field(s): {', '.join(unknown)}; expected after, ops")
        ops = body.get("ops")
        try:
            after = parse_after(body.get("after", "now"))
            if not isinstance(ops, list):
                raise ValueError("ops must be a list")
            parsed = [ChangeOp.from_json(op) for op in ops]
            # Validated against the room before anything is queued: a bad batch changes nothing.
            self._sandbox.schedule(room_id, after=after, ops=parsed)
        except ValueError as error:
            raise _bad_request(str(error)) from error
        return await self.list_changes(request)

    async def list_changes(self, request: web.Request) -> web.Response:
        room_id = request.match_info["room_id"]
        return web.json_response(
            {
                "pending": [change.to_json() for change in self._sandbox.pending_changes(room_id)],
                "applied": self._sandbox.applied.get(room_id, []),
            }
        )

    async def clear_changes(self, request: web.Request) -> web.Response:
        self._sandbox.clear_changes(request.match_info["room_id"])
        return await self.list_changes(request)

    async def events(self, request: web.Request) -> web.Response:
        room_id = request.query.get("room_id", "")
        return web.json_response({"room_id": room_id, "events": [list(e) for e in self._sandbox.events(room_id)]})


def _optional_number(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    return float(value)
