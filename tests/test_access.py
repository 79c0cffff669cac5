"""Who may use roomusers, and where: parsing the allow-lists, the rule, and user-group lookups via the stand-in."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.dev.slack_standin import SlackStandIn
from bot.settings import ConfigError
from bot.slack.access import NOT_ALLOWED_HERE, NOT_ALLOWED_USER, AccessPolicy, membership_unchecked

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-access-test-token"
UNCHECKED = membership_unchecked("fatal_error")


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(signing_secret=SECRET, bot_token=TOKEN) as running:
        running.workspace.usergroups.update({"S0OPS": ["U0OPS1", "U0OPS2"], "S0DEV": ["U0DEV1"], "S0EMPTY": []})
        yield running


@pytest.fixture
def client(slack: SlackStandIn) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=slack.api_base_url)


def group_lookups(slack: SlackStandIn) -> list[str]:
    return [call.args["usergroup"] for call in slack.api_calls if call.method == "usergroups.users.list"]


# -- from_env ------------------------------------------------------------------------------------------------


def test_nothing_set_means_everyone():
    for env in ({}, {"ROOMUSERS_ALLOWED_CHANNELS": "", "ROOMUSERS_ALLOWED_USERS": " ,  , "}):
        policy = AccessPolicy.from_env(env)
        assert not policy.is_restricted
        assert (policy.channels, policy.users, policy.usergroups) == ((), (), ())
        assert policy.describe() == "access: unrestricted (everyone in the workspace, in any channel)"


def test_lists_are_parsed_with_whitespace_tolerated_and_duplicates_dropped():
    policy = AccessPolicy.from_env(
        {
            "ROOMUSERS_ALLOWED_CHANNELS": " C0OPS, G0PRIV ,D0DM,C0OPS",
            "ROOMUSERS_ALLOWED_USERS": "U0ALICE,\tW0BOB ,",
            "ROOMUSERS_ALLOWED_USERGROUPS": "S0OPS",
            "UNRELATED": "x",
        }
    )

    assert policy.is_restricted
    assert policy.channels == ("C0OPS", "G0PRIV", "D0DM")
    assert policy.users == ("U0ALICE", "W0BOB")
    assert policy.usergroups == ("S0OPS",)
    assert policy.describe() == (
        "access: restricted to users U0ALICE,W0BOB or user groups S0OPS in channels C0OPS,G0PRIV,D0DM"
    )


def test_describe_channels_only():
    assert AccessPolicy(channels=["C0OPS"]).describe() == "access: restricted to anyone in channels C0OPS"
    assert AccessPolicy(usergroups=["S0OPS"]).describe() == "access: restricted to user groups S0OPS in any channel"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ROOMUSERS_ALLOWED_CHANNELS", "#general"),
        ("ROOMUSERS_ALLOWED_CHANNELS", "U0ALICE"),
        ("ROOMUSERS_ALLOWED_CHANNELS", "c0ops"),
        ("ROOMUSERS_ALLOWED_CHANNELS", "C0OPS;C0DEV"),
        ("ROOMUSERS_ALLOWED_USERS", "@alice"),
        ("ROOMUSERS_ALLOWED_USERS", "C0OPS"),
        ("ROOMUSERS_ALLOWED_USERS", "U1"),
        ("ROOMUSERS_ALLOWED_USERGROUPS", "U0ALICE"),
        ("ROOMUSERS_ALLOWED_USERGROUPS", "S0 OPS"),
        ("ROOMUSERS_ALLOWED_USERGROUPS", "@ops-team"),
    ],
)
def test_malformed_entries_name_the_variable(variable, value):
    with pytest.raises(ConfigError) as raised:
        AccessPolicy.from_env({variable: value})

    message = str(raised.value)
    assert message.startswith(f"{variable} must be a comma-separated list of Slack ")
    assert message.endswith("(use IDs, not names).")
    assert repr(value) in message
    assert "\n" not in message


def test_a_long_bad_entry_is_shortened_in_the_message():
    with pytest.raises(ConfigError) as raised:
        AccessPolicy.from_env({"ROOMUSERS_ALLOWED_USERS": "U0ALICE, " + "x" * 500})
    assert len(str(raised.value)) < 200


# -- the rule ------------------------------------------------------------------------------------------------

ALICE, OPS1, DEV1, MALLORY = "U0ALICE", "U0OPS1", "U0DEV1", "U0MALLORY"

RULES = [
    # (policy settings, user, channel, expected answer)
    ({}, MALLORY, "C0ANY", None),
    ({"channels": ["C0OPS", "D0DM"]}, MALLORY, "C0OPS", None),
    ({"channels": ["C0OPS", "D0DM"]}, MALLORY, "D0DM", None),
    ({"channels": ["C0OPS", "D0DM"]}, ALICE, "C0OTHER", NOT_ALLOWED_HERE),
    ({"users": [ALICE]}, ALICE, "C0ANY", None),
    ({"users": [ALICE]}, MALLORY, "C0ANY", NOT_ALLOWED_USER),
    ({"users": [ALICE]}, OPS1, "C0ANY", NOT_ALLOWED_USER),
    ({"usergroups": ["S0OPS"]}, OPS1, "C0ANY", None),
    ({"usergroups": ["S0OPS"]}, ALICE, "C0ANY", NOT_ALLOWED_USER),
    ({"usergroups": ["S0EMPTY"]}, ALICE, "C0ANY", NOT_ALLOWED_USER),
    ({"users": [ALICE], "usergroups": ["S0OPS", "S0DEV"]}, ALICE, "C0ANY", None),
    ({"users": [ALICE], "usergroups": ["S0OPS", "S0DEV"]}, OPS1, "C0ANY", None),
    ({"users": [ALICE], "usergroups": ["S0OPS", "S0DEV"]}, DEV1, "C0ANY", None),
    ({"users": [ALICE], "usergroups": ["S0OPS", "S0DEV"]}, MALLORY, "C0ANY", NOT_ALLOWED_USER),
    ({"channels": ["C0OPS"], "users": [ALICE]}, ALICE, "C0OPS", None),
    ({"channels": ["C0OPS"], "users": [ALICE]}, ALICE, "C0OTHER", NOT_ALLOWED_HERE),
    ({"channels": ["C0OPS"], "users": [ALICE]}, MALLORY, "C0OPS", NOT_ALLOWED_USER),
    ({"channels": ["C0OPS"], "usergroups": ["S0OPS"]}, OPS1, "C0OTHER", NOT_ALLOWED_HERE),
    ({"channels": ["C0OPS"], "usergroups": ["S0OPS"]}, OPS1, "C0OPS", None),
]


@pytest.mark.parametrize(("settings", "user", "channel", "expected"), RULES)
async def test_rule_table(slack, client, settings, user, channel, expected):
    policy = AccessPolicy(**settings)

    assert await policy.refusal(user_id=user, channel_id=channel, client=client) == expected


async def test_no_group_lookup_when_the_channel_or_the_user_list_already_decides(slack, client):
    policy = AccessPolicy(channels=["C0OPS"], users=[ALICE], usergroups=["S0OPS"])

    assert await policy.refusal(user_id=OPS1, channel_id="C0OTHER", client=client) == NOT_ALLOWED_HERE
    assert await policy.refusal(user_id=ALICE, channel_id="C0OPS", client=client) is None
    assert slack.api_calls == []


def test_refusals_are_single_sentences_without_data():
    assert NOT_ALLOWED_HERE == (
        "roomusers isn't enabled in this channel; ask an admin to add it to ROOMUSERS_ALLOWED_CHANNELS."
    )
    assert NOT_ALLOWED_USER == (
        "You're not on the list of people allowed to use roomusers; ask an admin to add you or your user group."
    )
    for sentence in (NOT_ALLOWED_HERE, NOT_ALLOWED_USER, UNCHECKED, membership_unchecked("missing_scope")):
        assert sentence.count(". ") == 0
        assert sentence.endswith(".")


# -- user-group membership: caching and single flight --------------------------------------------------------


async def test_membership_is_cached_per_group(slack, client):
    policy = AccessPolicy(usergroups=["S0OPS", "S0DEV"])

    assert await policy.refusal(user_id=DEV1, channel_id="C0OPS", client=client) is None
    assert group_lookups(slack) == ["S0OPS", "S0DEV"]

    # Later clicks, by the same or other people, are answered from the cache.
    assert await policy.refusal(user_id=DEV1, channel_id="C0OPS", client=client) is None
    assert await policy.refusal(user_id=OPS1, channel_id="C0OPS", client=client) is None
    assert await policy.refusal(user_id=MALLORY, channel_id="C0OPS", client=client) == NOT_ALLOWED_USER
    assert group_lookups(slack) == ["S0OPS", "S0DEV"]


async def test_stops_at_the_first_group_that_admits_the_user(slack, client):
    policy = AccessPolicy(usergroups=["S0OPS", "S0DEV"])

    assert await policy.refusal(user_id=OPS1, channel_id="C0OPS", client=client) is None
    assert group_lookups(slack) == ["S0OPS"]


async def test_cached_membership_expires_after_five_minutes(slack, client):
    now = [1000.0]
    policy = AccessPolicy(usergroups=["S0OPS"], clock=lambda: now[0])

    assert await policy.refusal(user_id=ALICE, channel_id="C0OPS", client=client) == NOT_ALLOWED_USER
    slack.workspace.usergroups["S0OPS"].append(ALICE)
    now[0] += 299
    assert await policy.refusal(user_id=ALICE, channel_id="C0OPS", client=client) == NOT_ALLOWED_USER
    now[0] += 2
    assert await policy.refusal(user_id=ALICE, channel_id="C0OPS", client=client) is None
    assert group_lookups(slack) == ["S0OPS", "S0OPS"]


async def test_concurrent_checks_share_one_lookup(slack, client):
    policy = AccessPolicy(usergroups=["S0OPS"])

    answers = await asyncio.gather(
        *(policy.refusal(user_id=user, channel_id="C0OPS", client=client) for user in (OPS1, OPS1, ALICE, "U0OPS2"))
    )

    assert answers == [None, None, NOT_ALLOWED_USER, None]
    assert group_lookups(slack) == ["S0OPS"]


async def test_a_cancelled_caller_does_not_cancel_the_shared_lookup(slack, client):
    policy = AccessPolicy(usergroups=["S0OPS"])
    first = asyncio.create_task(policy.refusal(user_id=OPS1, channel_id="C0OPS", client=client))
    second = asyncio.create_task(policy.refusal(user_id=OPS1, channel_id="C0OPS", client=client))
    await asyncio.sleep(0)
    first.cancel()

    assert await second is None
    with pytest.raises(asyncio.CancelledError):
        await first
    assert group_lookups(slack) == ["S0OPS"]


# -- lookup failures: fail closed ----------------------------------------------------------------------------


@pytest.mark.parametrize("error", ["fatal_error", "missing_scope", "no_such_subteam"])
async def test_failed_lookup_refuses_and_is_not_cached(slack, client, caplog, error):
    policy = AccessPolicy(usergroups=["S0OPS"])
    slack.fail_next_api_calls("usergroups.users.list", error)

    with caplog.at_level(logging.WARNING, logger="bot.slack.access"):
        refused = await policy.refusal(user_id=OPS1, channel_id="C0OPS", client=client)

    assert refused == membership_unchecked(error)
    assert "couldn't check your user-group membership" in refused
    assert error in caplog.text
    assert TOKEN not in caplog.text
    # The failure is not remembered: the next check asks Slack again and admits the member.
    assert await policy.refusal(user_id=OPS1, channel_id="C0OPS", client=client) is None
    assert group_lookups(slack) == ["S0OPS", "S0OPS"]


async def test_missing_scope_names_the_scope():
    assert "usergroups:read" in membership_unchecked("missing_scope")
    assert "usergroups:read" not in membership_unchecked("fatal_error")


async def test_unknown_group_fails_closed(slack, client):
    policy = AccessPolicy(usergroups=["S0GONE"])

    assert await policy.refusal(user_id=OPS1, channel_id="C0OPS", client=client) == membership_unchecked(
        "no_such_subteam"
    )


async def test_another_source_still_admits_when_one_group_fails(slack, client):
    policy = AccessPolicy(usergroups=["S0OPS", "S0DEV"])
    slack.fail_next_api_calls("usergroups.users.list", "fatal_error")

    assert await policy.refusal(user_id=DEV1, channel_id="C0OPS", client=client) is None
    # S0DEV is cached now; S0OPS fails again, and nobody else can vouch for Mallory: refused.
    slack.fail_next_api_calls("usergroups.users.list", "fatal_error")
    assert await policy.refusal(user_id=MALLORY, channel_id="C0OPS", client=client) == UNCHECKED
    assert group_lookups(slack) == ["S0OPS", "S0DEV", "S0OPS"]


async def test_direct_listing_wins_even_when_slack_is_unreachable():
    dead = AsyncWebClient(token=TOKEN, base_url="http://127.0.0.1:9/api/", timeout=2)
    policy = AccessPolicy(users=[ALICE], usergroups=["S0OPS"])

    assert await policy.refusal(user_id=ALICE, channel_id="C0OPS", client=dead) is None
    assert await policy.refusal(user_id=OPS1, channel_id="C0OPS", client=dead) == membership_unchecked(
        "ClientConnectorError"
    )


async def test_concurrent_checks_share_one_failure(slack, client):
    policy = AccessPolicy(usergroups=["S0OPS"])
    slack.fail_next_api_calls("usergroups.users.list", "fatal_error")

    answers = await asyncio.gather(*(policy.refusal(user_id=OPS1, channel_id="C0OPS", client=client) for _ in "ab"))

    assert answers == [UNCHECKED, UNCHECKED]
    assert group_lookups(slack) == ["S0OPS"]
