"""Access per ZEGO app, external users, and the replay guard shared by replicas.

The external-user rule is checked on real payload shapes (copied from the reference samples into tests/data) and
end to end through the stand-in; the per-app lists and the shared replay guard end to end too.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from prometheus_client import REGISTRY

from bot.dev.local_stack import local_replicas, local_stack, sandbox_profile
from bot.dev.slack_standin import SlackStandIn, StoredMessage
from bot.dev.zim_sandbox import ZimSandbox
from bot.settings import ConfigError, ZegoProfiles, load_runtime_settings
from bot.slack.access import AccessPolicy, AccessRules, Identity, Installation, is_external
from bot.slack.render.text import EXTERNAL_REFUSED

from .conftest import FAST_RETRY
from .redis_server import RedisServer
from .slack_helpers import all_text, answers_to, listed_user_ids, wait_for_message
from .test_security import FORM, command_body

SAMPLES = Path(__file__).parent / "data" / "slack_payloads"


def replies(slack: SlackStandIn, user: str) -> list[StoredMessage]:
    """What `user` was told: a refusal comes in the ack itself (issue 13), an answer through response_url."""
    return [m for m in slack.ephemerals(user) if m.origin == "response_url" or "Not allowed" in all_text(m)]


def sample(name: str) -> dict[str, Any]:
    data = json.loads((SAMPLES / name).read_text())
    if "payload" in data:
        return dict(data["payload"])
    if "body" in data:
        return dict(data["body"])
    return dict(parse_qsl(data["raw_body"]))


def event_installation(body: dict[str, Any]) -> Installation:
    (auth,) = body["authorizations"]
    return Installation(auth.get("team_id"), auth.get("enterprise_id"))


def test_an_org_wide_installs_own_user_is_internal_though_team_is_null():
    body = sample("block_actions.ephemeral.org_install.json")
    assert body["team"] is None
    assert not is_external(Identity.from_action(body), Installation("T_ORG_PRIMARY", "E111"))


def test_an_org_wide_installs_mention_is_internal():
    body = sample("app_mention.events_api.org_install.json")
    assert not is_external(Identity.from_event(body), event_installation(body))


def test_a_shared_channel_event_from_another_organisation_is_external():
    body = sample("events_api.shared_channel.reaction_added.json")
    assert is_external(Identity.from_event(body), event_installation(body))


def test_a_workspace_installs_own_users_are_internal():
    click = sample("block_actions.ephemeral.in_thread.json")
    assert not is_external(Identity.from_action(click), Installation("T111", None))
    mention = sample("app_mention.events_api.slack_docs.json")
    assert not is_external(Identity.from_event(mention), event_installation(mention))
    command = sample("slash_command.http_form.bolt-python.json")
    assert not is_external(Identity.from_command(command), Installation("T111", "E111"))
    # Another workspace of the same organisation (Enterprise Grid) is not external either.
    assert not is_external(Identity.from_command(command), Installation("T999", "E111"))


def test_another_workspace_or_an_unknown_installation_is_external():
    command = sample("slash_command.http_form.bolt-python.json")
    assert is_external(Identity.from_command(command), Installation("T999", "E999"))
    assert is_external(Identity.from_command(command), None)  # fail closed
    # A non-org-wide click's `enterprise` may describe the conversation, not the person: it is not trusted.
    click = dict(sample("block_actions.ephemeral.in_thread.json"), enterprise={"id": "E1"})
    click["user"] = dict(click["user"], team_id="T_OTHER")
    click["team"] = {"id": "T_OTHER"}
    assert is_external(Identity.from_action(click), Installation("T111", "E1"))


def test_allow_external_takes_only_true_or_false():
    assert load_runtime_settings({}).allow_external is False
    assert load_runtime_settings({"ROOMUSERS_ALLOW_EXTERNAL": " TRUE "}).allow_external is True
    with pytest.raises(ConfigError) as raised:
        load_runtime_settings({"ROOMUSERS_ALLOW_EXTERNAL": "yes"})
    assert str(raised.value) == "ROOMUSERS_ALLOW_EXTERNAL must be true or false."


def test_a_malformed_per_app_entry_names_the_exact_variable():
    with pytest.raises(ConfigError) as raised:
        AccessRules.from_env(
            {"ZEGO_STAGING_ALLOWED_USERS": "alice"},
            profiles=["prod", "staging"],
            default_profile="prod",
            allow_external=False,
        )
    assert str(raised.value).startswith("ZEGO_STAGING_ALLOWED_USERS must be a comma-separated list of Slack user IDs")
    rules = AccessRules.from_env(
        {"ZEGO_PROD_ALLOWED_CHANNELS": "C0PROD"}, profiles=["prod"], default_profile="prod", allow_external=False
    )
    assert list(rules.per_app) == ["prod"] and rules.per_app["prod"].channels == ("C0PROD",)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_an_external_user_is_refused_and_allowed_only_with_ROOMUSERS_ALLOW_EXTERNAL(
    sandbox: ZimSandbox, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="roomusers.audit")
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY) as local:
        response = await local.slack.send_command("demo-12", team_id="T0ELSEWHERE")
        assert response.status == 200
        refusal = await wait_for_message(local.slack, lambda: next(iter(replies(local.slack, "U0ALICE")), None))
        assert "other organisations in shared channels" in all_text(refusal)
        assert sandbox.stats.requests == 0
        audit = [r.getMessage() for r in caplog.records if '"refusal": "external"' in r.getMessage()]
        assert audit and '"outcome": "refused"' in audit[-1]
        # People of the installation's own workspace are served as before.
        await local.slack.send_command("demo-12", user_id="U0BOB")
        own = await wait_for_message(local.slack, lambda: next(iter(answers_to(local.slack, "U0BOB")), None))
        assert len(listed_user_ids(own)) == 12
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, access=AccessRules(allow_external=True)) as local:
        await local.slack.send_command("demo-12", team_id="T0ELSEWHERE")
        answer = await wait_for_message(local.slack, lambda: next(iter(answers_to(local.slack, "U0ALICE")), None))
        assert len(listed_user_ids(answer)) == 12
    assert EXTERNAL_REFUSED.endswith("in shared channels.")


async def test_an_apps_own_lists_apply_in_addition_to_the_global_ones(sandbox: ZimSandbox):
    default = sandbox_profile(sandbox)
    staging = sandbox_profile(sandbox, name="staging")
    profiles = ZegoProfiles(default="default", by_name={"default": default, "staging": staging})
    env = {"ROOMUSERS_ALLOWED_CHANNELS": "C0OPS", "ZEGO_STAGING_ALLOWED_USERS": "U0BOB"}
    access = AccessRules.from_env(env, profiles=profiles.by_name, default_profile="default", allow_external=False)
    async with local_stack(sandbox=sandbox, retry=FAST_RETRY, profiles=profiles, access=access) as local:

        async def ask(text: str, user: str, channel: str = "C0OPS") -> StoredMessage:
            seen = len(replies(local.slack, user))
            await local.slack.send_command(text, user_id=user, channel_id=channel)
            return await wait_for_message(local.slack, lambda: next(iter(replies(local.slack, user)[seen:]), None))

        refused = await ask("demo-12 --app staging", "U0ALICE")  # global allows, staging's list does not
        assert "ZEGO_STAGING_ALLOWED_USERS" in all_text(refused)
        assert sandbox.stats.requests == 0
        assert len(listed_user_ids(await ask("demo-12 --app staging", "U0BOB"))) == 12  # both allow
        assert len(listed_user_ids(await ask("demo-12", "U0ALICE"))) == 12  # the default app has no list of its own
        elsewhere = await ask("demo-12 --app staging", "U0BOB", channel="C0OTHER")  # staging allows, global not
        assert "ROOMUSERS_ALLOWED_CHANNELS" in all_text(elsewhere)
    assert AccessPolicy.from_env(env).channels == ("C0OPS",)


async def test_a_request_replayed_to_another_replica_is_refused(sandbox: ZimSandbox, redis_server: RedisServer):
    if not redis_server.running:
        redis_server.start()
    redis_server.flush()
    async with local_replicas(2, sandbox=sandbox, redis_url=redis_server.url, retry=FAST_RETRY) as local:
        body = command_body(local.slack, "demo-12")
        stamp = int(time.time())
        local.route(0)
        first = await local.slack.post_signed(body, FORM, timestamp_override=stamp)
        assert first.status == 200
        local.route(1)
        replay = await local.slack.post_signed(body, FORM, timestamp_override=stamp)
        assert replay.status == 401 and replay.json == {"error": "replayed request"}
        # With Redis gone, each replica still refuses a copy of what it answered itself.
        redis_server.stop()
        other = command_body(local.slack, "demo-1")
        assert (await local.slack.post_signed(other, FORM, timestamp_override=stamp)).status == 200
        again = await local.slack.post_signed(other, FORM, timestamp_override=stamp)
        assert again.status == 401
        assert metric("roomusers_shared_state_fallback") == 1.0
