"""The bodies Slack sends to an app: slash commands, block_actions clicks and Events API envelopes.

Field names and shapes follow what Slack actually sends (see docs/reference and captured payloads); fields
Bolt or the app might read are all present so the app cannot come to rely on a shortcut of the stand-in.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from bot.dev.slack_standin import ids
from bot.dev.slack_standin.models import BotIdentity, JsonDict, StoredMessage
from bot.slack.render.escaping import escape_mrkdwn

# An org-wide install (Enterprise Grid): users are W…, payloads name the enterprise (samples in
# shared/reference/external/slack/payloads/*org_install.json).
ORG_ENTERPRISE = "E0ORG"
ORG_ENTERPRISE_NAME = "Roomusers Org"
ORG_USER = "W0ORGUSER"


@dataclass(frozen=True, slots=True)
class Shape:
    """Who a payload comes from, beyond the plain single-workspace case.

    `org`: the app is installed org-wide. `from_team`/`from_enterprise`: the user is in another organisation,
    in a Slack Connect channel. `bot_id`: the message was written by another bot (no `user`).
    """

    org: bool = False
    from_team: str | None = None
    from_enterprise: str | None = None
    bot_id: str | None = None


PLAIN = Shape()


def message_json(message: StoredMessage, identity: BotIdentity) -> JsonDict:
    """A stored message as Slack serialises it in API answers and in a click's `message` field."""
    out: JsonDict = {"type": "message", "text": message.text or "", "ts": message.ts, "team": identity.team_id}
    if message.author == identity.bot_user_id:
        out.update(user=identity.bot_user_id, bot_id=identity.bot_id, app_id=identity.app_id)
    else:
        out["user"] = message.author
    if message.blocks:
        out["blocks"] = copy.deepcopy(message.blocks)
    if message.thread_ts is not None:
        out["thread_ts"] = message.thread_ts
    return out


@dataclass(frozen=True, slots=True)
class Person:
    """The human acting in the workspace (typing the command, clicking, mentioning)."""

    user_id: str
    user_name: str
    channel_id: str
    channel_name: str


def command_form(
    identity: BotIdentity,
    person: Person,
    *,
    command: str,
    text: str,
    response_url: str,
    now: float,
    shape: Shape = PLAIN,
) -> dict[str, str]:
    """A slash command's form fields, in the order Slack sends them."""
    form = {
        "token": identity.verification_token,
        "team_id": identity.team_id,
        "team_domain": identity.team_domain,
        "channel_id": person.channel_id,
        "channel_name": person.channel_name,
        "user_id": person.user_id,
        "user_name": person.user_name,
        "command": command,
        "text": escape_mrkdwn(text),  # Slack escapes what users type this way
        "api_app_id": identity.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": ids.trigger_id(now),
    }
    if shape.org:
        form.update(is_enterprise_install="true", enterprise_id=ORG_ENTERPRISE, enterprise_name=ORG_ENTERPRISE_NAME)
    return form


def buttons_in(blocks: list[JsonDict]) -> list[tuple[str | None, JsonDict]]:
    """(block_id, button) for every button in display order: actions blocks and section accessories."""
    found: list[tuple[str | None, JsonDict]] = []
    for block in blocks:
        elements = list(block.get("elements", [])) if block.get("type") == "actions" else []
        if block.get("type") == "section" and isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        block_id = block.get("block_id")
        found += [(block_id, e) for e in elements if isinstance(e, dict) and e.get("type") == "button"]
    return found


def find_button(message: StoredMessage, action_id: str) -> tuple[str, JsonDict]:
    """(block_id, button) for the button with this action_id; LookupError naming the ones there are."""
    buttons = buttons_in(message.blocks)
    for block_id, button in buttons:
        if button.get("action_id") == action_id:
            return str(block_id), button
    available = [button.get("action_id") for _, button in buttons]
    raise LookupError(f"no button with action_id {action_id!r} in message {message.ts}; its buttons: {available}")


def block_actions_payload(
    identity: BotIdentity,
    person: Person,
    message: StoredMessage,
    *,
    block_id: str,
    button: JsonDict,
    response_url: str,
    now: float,
    shape: Shape = PLAIN,
) -> JsonDict:
    """A `block_actions` payload for a click on `button` in `message`."""
    action: JsonDict = {
        "action_id": button.get("action_id"),
        "block_id": block_id,
        "text": copy.deepcopy(button.get("text")),
        "type": "button",
        "action_ts": f"{now:.6f}",
    }
    if "value" in button:  # Slack omits value when the button has none
        action["value"] = button["value"]
    payload: JsonDict = {
        "type": "block_actions",
        "user": {
            "id": person.user_id,
            "username": person.user_name,
            "name": person.user_name,
            "team_id": identity.team_id,
        },
        "api_app_id": identity.app_id,
        "token": identity.verification_token,
        "container": {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": message.channel,
            "is_ephemeral": message.ephemeral,
        },
        "trigger_id": ids.trigger_id(now),
        "team": {"id": identity.team_id, "domain": identity.team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": message.channel, "name": person.channel_name},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }
    if shape.org:  # org-wide install: no team at the top, the enterprise instead; the user's team stays
        payload.update(team=None, enterprise={"id": ORG_ENTERPRISE, "name": ORG_ENTERPRISE_NAME})
        payload["is_enterprise_install"] = True
    if shape.from_team is not None:
        payload["user"]["team_id"] = shape.from_team
    # Slack leaves `message` out for ephemeral messages (it does not keep them), so apps must page from the
    # button value or their own state, never from body["message"].
    if not message.ephemeral:
        payload["message"] = message_json(message, identity)
    return payload


def app_mention_envelope(
    identity: BotIdentity, mention: StoredMessage, *, event_id: str, now: float, shape: Shape = PLAIN
) -> JsonDict:
    """An Events API `event_callback` delivering an `app_mention` for the stored mention message.

    An edited mention (`mention.edited` set) is a new delivery: new event_id, the same ts, an `edited` field.
    """
    source_team = shape.from_team or identity.team_id
    event: JsonDict = {"type": "app_mention"}
    if shape.bot_id is not None:  # written by another bot: bot_id and bot_profile, no user (slack-platform.md §13)
        event["bot_id"] = shape.bot_id
        event["bot_profile"] = {"id": shape.bot_id, "app_id": "A0OTHERBOT", "name": "otherbot", "team_id": source_team}
    else:
        event["user"] = mention.author
    event.update(text=mention.text, ts=mention.ts, team=source_team, channel=mention.channel, event_ts=mention.ts)
    if shape.from_team is not None:
        event.update(user_team=shape.from_team, source_team=shape.from_team)
    if mention.thread_ts is not None:
        event["thread_ts"] = mention.thread_ts
    if mention.edited is not None:
        event["edited"] = copy.deepcopy(mention.edited)
        event["event_ts"] = mention.edited["ts"]
    envelope: JsonDict = {
        "token": identity.verification_token,
        "team_id": source_team,
        "api_app_id": identity.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(now),
        "authorizations": [
            {
                "enterprise_id": ORG_ENTERPRISE if shape.org else None,
                "team_id": None if shape.org else identity.team_id,
                "user_id": identity.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": shape.org,
            }
        ],
        "is_ext_shared_channel": shape.from_team is not None,
        "event_context": f"4-{ids.url_token()}",
    }
    if shape.org or shape.from_enterprise is not None:
        # Top-level team_id / enterprise_id describe where the message came from (the other org, in Connect).
        envelope["enterprise_id"] = shape.from_enterprise or ORG_ENTERPRISE
    return envelope


def url_verification_body(identity: BotIdentity, challenge: str) -> JsonDict:
    return {"token": identity.verification_token, "challenge": challenge, "type": "url_verification"}
