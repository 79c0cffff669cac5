"""Who may use roomusers, and where: allow-lists of channels, users and user groups from the environment.

Two layers, both of which must allow: the global ROOMUSERS_ALLOWED_* lists, and for a ZEGO app profile NAME its
own optional ZEGO_<NAME>_ALLOWED_* lists (for the default profile, NAME is its ZEGO_PROFILE_NAME, else DEFAULT).
External users (Slack Connect: another organisation's people in a shared channel) are refused unless
ROOMUSERS_ALLOW_EXTERNAL=true; that is decided from the payload's own fields and the installation Bolt learned
from auth.test, with no extra Web API call.

Rule of one layer: when channels are listed, the request's channel must be one of them. When users and/or user groups
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
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
from cachetools import TTLCache
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import ConfigError, profile_prefix
from bot.slack.render.escaping import SLACK_USER_ID, escape_mrkdwn
from bot.slack.render.text import EXTERNAL_REFUSED

__all__ = [
    "CHANNELS_VAR",
    "MEMBERSHIP_TTL_SECONDS",
    "NOT_ALLOWED_HERE",
    "NOT_ALLOWED_USER",
    "USERGROUPS_VAR",
    "USERS_VAR",
    "AccessPolicy",
    "AccessRules",
    "Identity",
    "Installation",
    "Refusal",
    "is_external",
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
        prefix: str = "ROOMUSERS_ALLOWED_",
        label: str = "",
    ) -> None:
        self._prefix = prefix
        self._label = label  # "" for the global lists; "the ZEGO app staging" for a profile's own
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
    def from_env(cls, env: Mapping[str, str], *, prefix: str = "ROOMUSERS_ALLOWED_", label: str = "") -> AccessPolicy:
        """Read the three <prefix>* variables; ConfigError naming the variable for a malformed entry."""
        return cls(
            channels=_parse_ids(env, f"{prefix}CHANNELS", _CHANNEL_ID, "channel", "C0123ABCD"),
            users=_parse_ids(env, f"{prefix}USERS", SLACK_USER_ID, "user", "U0123ABCD"),
            usergroups=_parse_ids(env, f"{prefix}USERGROUPS", _USERGROUP_ID, "user group", "S0123ABCD"),
            prefix=prefix,
            label=label,
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
            if not self._label:
                return NOT_ALLOWED_HERE
            return f"{self._label} isn't enabled in this channel; ask an admin to add it to {self._prefix}CHANNELS."
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
        if failure is not None:
            return membership_unchecked(failure)
        if self._label:
            return (
                f"You're not on the list of people allowed to use {self._label}; ask an admin to add you or "
                f"your user group to {self._prefix}USERS or {self._prefix}USERGROUPS."
            )
        return NOT_ALLOWED_USER

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


# -- who is asking, and the installation they ask -------------------------------------------------------


def _true(value: object) -> bool:
    return value is True or value == "true"  # form fields are strings


def _text(value: object) -> str | None:
    return str(value) if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Identity:
    """The person behind a request: their user, workspace and (on Enterprise Grid) organisation."""

    user_id: str
    team_id: str | None
    enterprise_id: str | None

    @classmethod
    def from_command(cls, body: Mapping[str, Any]) -> Identity:
        return cls(str(body.get("user_id", "")), _text(body.get("team_id")), _text(body.get("enterprise_id")))

    @classmethod
    def from_action(cls, body: Mapping[str, Any]) -> Identity:
        user = body.get("user") or {}
        team = body.get("team") or {}
        # On an org-wide install `team` is null and `enterprise` is the organisation that installed the app;
        # otherwise `enterprise` may describe the conversation rather than the person, so it is not used.
        enterprise = (body.get("enterprise") or {}).get("id") if _true(body.get("is_enterprise_install")) else None
        return cls(str(user.get("id", "")), _text(user.get("team_id")) or _text(team.get("id")), _text(enterprise))

    @classmethod
    def from_event(cls, body: Mapping[str, Any]) -> Identity:
        event = body.get("event") or {}
        team = _text(event.get("user_team")) or _text(event.get("team")) or _text(body.get("team_id"))
        return cls(str(event.get("user", "")), team, _text(body.get("enterprise_id")))


@dataclass(frozen=True)
class Installation:
    """The workspace (and organisation) the app is installed in, as auth.test told Bolt."""

    team_id: str | None
    enterprise_id: str | None

    @classmethod
    def of(cls, authorize_result: Any) -> Installation | None:
        """From Bolt's `context.authorize_result` (None when Bolt has none: then everyone counts as external)."""
        if authorize_result is None:
            return None
        return cls(
            _text(getattr(authorize_result, "team_id", None)), _text(getattr(authorize_result, "enterprise_id", None))
        )


def is_external(who: Identity, home: Installation | None) -> bool:
    """A person from another workspace and another organisation than the installation's (fail closed)."""
    if home is None:
        return True
    if who.team_id is not None and who.team_id == home.team_id:
        return False
    return not (who.enterprise_id is not None and who.enterprise_id == home.enterprise_id)


@dataclass(frozen=True)
class Refusal:
    kind: str  # "external", "list" (the global lists) or "app" (the profile's own lists)
    sentence: str


class AccessRules:
    """Everything that decides whether a request is answered: external users, the global lists, the app's lists."""

    def __init__(
        self,
        global_: AccessPolicy | None = None,
        *,
        per_app: Mapping[str, AccessPolicy] | None = None,
        allow_external: bool = False,
        default_profile: str = "default",
    ) -> None:
        self.global_ = global_ or AccessPolicy()
        self.per_app = {name: policy for name, policy in (per_app or {}).items() if policy.is_restricted}
        self.allow_external = allow_external
        self.default_profile = default_profile

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], *, profiles: Iterable[str], default_profile: str, allow_external: bool
    ) -> AccessRules:
        per_app = {
            name: AccessPolicy.from_env(
                env, prefix=f"{profile_prefix(name)}ALLOWED_", label=f"the ZEGO app {escape_mrkdwn(name)}"
            )
            for name in profiles
        }
        return cls(
            AccessPolicy.from_env(env),
            per_app=per_app,
            allow_external=allow_external,
            default_profile=default_profile,
        )

    def describe(self) -> str:
        parts = [self.global_.describe()]
        parts += [f"app {name}: {policy.describe().removeprefix('access: ')}" for name, policy in self.per_app.items()]
        parts.append("external users allowed" if self.allow_external else "external users refused")
        return "; ".join(parts)

    async def refusal(
        self,
        who: Identity,
        *,
        channel_id: str,
        profile: str,
        installation: Installation | None,
        client: AsyncWebClient,
    ) -> Refusal | None:
        if not self.allow_external and is_external(who, installation):
            return Refusal("external", EXTERNAL_REFUSED)
        said = await self.global_.refusal(user_id=who.user_id, channel_id=channel_id, client=client)
        if said is not None:
            return Refusal("list", said)
        app = self.per_app.get(profile or self.default_profile)
        if app is not None:
            said = await app.refusal(user_id=who.user_id, channel_id=channel_id, client=client)
            if said is not None:
                return Refusal("app", said)
        return None
