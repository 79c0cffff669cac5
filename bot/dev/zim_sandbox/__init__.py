"""A faithful local ZIM server (QueryRoomUserList, QueryRoomMembers) for tests, benchmarks and demos (see server.py)."""

from __future__ import annotations

from bot.dev.zim_sandbox.credentials import SANDBOX_APP_ID, SANDBOX_SERVER_SECRET
from bot.dev.zim_sandbox.faults import FAULT_KINDS, Fault, FaultKind, FaultPlan
from bot.dev.zim_sandbox.rooms import SandboxRoom, generated_users, hostile_users, load_room, seed_rooms
from bot.dev.zim_sandbox.server import DEFAULT_HOST, DEFAULT_PORT, ZimSandbox, run_sandbox, sandbox_banner
from bot.dev.zim_sandbox.stats import SandboxStats

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "FAULT_KINDS",
    "SANDBOX_APP_ID",
    "SANDBOX_SERVER_SECRET",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "SandboxRoom",
    "SandboxStats",
    "ZimSandbox",
    "generated_users",
    "hostile_users",
    "load_room",
    "run_sandbox",
    "sandbox_banner",
    "seed_rooms",
]
