"""Who may use roomusers, and where: allow-lists of channels, users and user groups from the environment.

Rule: when channels are listed, the request's channel must be one of them. When users and/or user groups
are listed, the user must be listed directly or be a member of one of the groups (the union). When both
kinds are set, both must hold. With nothing set, everyone in the workspace may use the app.

User-group membership comes from `usergroups.users.list` (scope `usergroups:read`). Answers are cached per
group for five minutes, concurrent lookups of one group share a single call, and a lookup that fails refuses
the request (fail closed) unless another source already admits the user.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial

import aiohttp
from cachetools import TTLCache
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import ConfigError
from bot.slack.render.escaping import SLACK_USER_ID

__all__ = [
    "CHANNELS_VAR",
    "MEMBERSHIP_TTL_SECONDS",
    "NOT_ALLOWED_HERE",
    "NOT_ALLOWED_USER",
    "USERGROUPS_VAR",
    "USERS_VAR",
    "AccessPolicy",
    "membership_unchecked",
]

log = logging.getLogger(__name__)

CHANNELS_VAR = "ROOMUSERS_ALLOWED_CHANNELS"
USERS_VAR = "ROOMUSERS_ALLOWED_USERS"
USERGROUPS_VAR = "ROOMUSERS_ALLOWED_USERGROUPS"
MEMBERSHIP_TTL_SECONDS = 300.0
MAX_CACHED_GROUPS = 1024

NOT_ALLOWED_HERE = f"roomusers isn't enabled in this channel; ask an admin to add it to {CHANNELS_VAR}."
NOT_ALLOWED_USER = (
    "You're not on the list of people allowed to use roomusers; ask an admin to add you or your user group."
)

_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
_USERGROUP_ID = re.compile(r"S[A-Z0-9]{2,}")


def membership_unchecked(error_code: str) -> str:
    """The refusal when a user group's members could not be read (so the user could not be admitted)."""
    if error_code == "missing_scope":
        return (
            "roomusers couldn't check your user-group membership because the app lacks the usergroups:read scope; "
            "an admin must reinstall it from manifest.yml."
        )
    return "roomusers couldn't check your user-group membership with Slack just now; try again in a minute."


class _MembershipUnavailable(Exception):
    def __init__(self, group: str, code: str) -> None:
        super().__init__(f"members of {group} unavailable: {code}")
        self.code = code


def _parse_ids(env: Mapping[str, str], name: str, pattern: re.Pattern[str], kind: str, example: str) -> tuple[str, ...]:
    found: dict[str, None] = {}  # ordered and deduplicated
    for raw in env.get(name, "").split(","):
        entry = raw.strip()
        if not entry:
            continue
        if not pattern.fullmatch(entry):
            shown = entry if len(entry) <= 30 else entry[:29] + "…"
            raise ConfigError(
                f"{name} must be a comma-separated list of Slack {kind} IDs such as {example}; "
                f"{shown!r} is not one (use IDs, not names)."
            )
        found[entry] = None
    return tuple(found)


class AccessPolicy:
    """The allow-lists (empty = no restriction of that kind) and a cache of user-group members."""

    def __init__(
        self,
        *,
        channels: Iterable[str] = (),
        users: Iterable[str] = (),
        usergroups: Iterable[str] = (),
        membership_ttl: float = MEMBERSHIP_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.channels = tuple(dict.fromkeys(channels))
        self.users = tuple(dict.fromkeys(users))
        self.usergroups = tuple(dict.fromkeys(usergroups))
        self._channel_set = frozenset(self.channels)
        self._user_set = frozenset(self.users)
        self._members: TTLCache[str, frozenset[str]] = TTLCache(
            maxsize=MAX_CACHED_GROUPS, ttl=membership_ttl, timer=clock
        )
        self._in_flight: dict[str, asyncio.Task[frozenset[str]]] = {}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AccessPolicy:
        """Read the three ROOMUSERS_ALLOWED_* variables; ConfigError naming the variable for a malformed entry."""
        return cls(
            channels=_parse_ids(env, CHANNELS_VAR, _CHANNEL_ID, "channel", "C0123ABCD"),
            users=_parse_ids(env, USERS_VAR, SLACK_USER_ID, "user", "U0123ABCD"),
            usergroups=_parse_ids(env, USERGROUPS_VAR, _USERGROUP_ID, "user group", "S0123ABCD"),
        )

    @property
    def is_restricted(self) -> bool:
        return bool(self.channels or self.users or self.usergroups)

    def describe(self) -> str:
        """One line for the startup log, IDs only."""
        if not self.is_restricted:
            return "access: unrestricted (everyone in the workspace, in any channel)"
        people = " or ".join(
            f"{label} {','.join(ids)}"
            for label, ids in (("users", self.users), ("user groups", self.usergroups))
            if ids
        )
        where = f"channels {','.join(self.channels)}" if self.channels else "any channel"
        return f"access: restricted to {people or 'anyone'} in {where}"

    async def refusal(self, *, user_id: str, channel_id: str, client: AsyncWebClient) -> str | None:
        """None when `user_id` may use roomusers in `channel_id`; otherwise one sentence saying why not."""
        if self.channels and channel_id not in self._channel_set:
            return NOT_ALLOWED_HERE
        if not (self.users or self.usergroups) or user_id in self._user_set:
            return None
        failure: str | None = None
        for group in self.usergroups:
            try:
                members = await self._group_members(group, client)
            except _MembershipUnavailable as unavailable:
                failure = failure or unavailable.code
                continue
            if user_id in members:
                return None
        return membership_unchecked(failure) if failure is not None else NOT_ALLOWED_USER

    async def _group_members(self, group: str, client: AsyncWebClient) -> frozenset[str]:
        cached = self._members.get(group)
        if cached is not None:
            return cached
        task = self._in_flight.get(group)
        if task is None:
            task = asyncio.create_task(self._fetch_members(group, client), name=f"usergroup-members-{group}")
            self._in_flight[group] = task
            task.add_done_callback(partial(self._settle, group))
        # Shielded: one caller giving up must not cancel the lookup the others are waiting on.
        return await asyncio.shield(task)

    def _settle(self, group: str, task: asyncio.Task[frozenset[str]]) -> None:
        if self._in_flight.get(group) is task:
            del self._in_flight[group]
        if not task.cancelled() and task.exception() is None:  # only successes are cached
            self._members[group] = task.result()

    async def _fetch_members(self, group: str, client: AsyncWebClient) -> frozenset[str]:
        try:
            response = await client.usergroups_users_list(usergroup=group)
        except SlackApiError as error:
            code = str(error.response.get("error") or f"http_{error.response.status_code}")
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as error:
            code = type(error).__name__
        else:
            users = response.get("users")
            if isinstance(users, list) and all(isinstance(user, str) for user in users):
                return frozenset(users)
            code = "malformed_response"
        log.warning("Could not read the members of user group %s (refusing access meanwhile): %s", group, code)
        raise _MembershipUnavailable(group, code)
