"""Reading the app's answers out of the Slack stand-in, shared by the end-to-end test modules."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from bot.dev.local_stack import LocalStack
from bot.dev.slack_standin import SlackStandIn, StoredMessage

USER_LINE = re.compile(r"^([\d,]+)\. .* · `([^`]*)`$", re.MULTILINE)  # positions past 999 read "1,000."


def listed_user_ids(message: StoredMessage) -> list[str]:
    text = "\n".join(b["text"]["text"] for b in message.blocks if b["type"] == "section" and "text" in b)
    return [user_id for _, user_id in USER_LINE.findall(text)]


def action_ids(message: StoredMessage) -> list[str]:
    """The paging buttons (the tools row is tested in test_slack_features.py)."""
    return [e["action_id"] for b in message.blocks if b.get("block_id") == "roomusers_paging" for e in b["elements"]]


def all_text(message: StoredMessage) -> str:
    return json.dumps({"text": message.text, "blocks": message.blocks}, ensure_ascii=False)


async def answer_to(local: LocalStack, text: str) -> StoredMessage:
    """Run the command; return the answer that follows the "fetching" ack."""
    response = await local.slack.send_command(text)
    assert response.status == 200
    assert response.acked_in_time
    ack = await local.slack.next_message()
    assert ack.origin == "ack"
    return await local.slack.next_message()


def tool_ids(message: StoredMessage) -> list[str]:
    return [e["action_id"] for b in message.blocks if b.get("block_id") == "roomusers_tools" for e in b["elements"]]


async def wait_for_message(
    slack: SlackStandIn, find: Callable[[], StoredMessage | None], *, within: float = 30
) -> StoredMessage:
    """Wait until `find()` returns a message (the stand-in wakes waiters on every change)."""
    found = await slack.wait_for(lambda: find() or False, timeout=within)
    assert isinstance(found, StoredMessage)
    return found


def answers_to(slack: SlackStandIn, user: str) -> list[StoredMessage]:
    """The private answers `user` got through response_url (not the "fetching" acks)."""
    return [m for m in slack.ephemerals(user) if m.origin == "response_url"]
