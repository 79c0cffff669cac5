"""Paging buttons: each click replaces its message in place through the click's own response_url."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.slack.answers import RoomAnswers
from bot.slack.blocks import problem_message
from bot.slack.commands import deliver
from bot.slack.paging import StaleButton, decode_page_ref

PAGING_ACTIONS = re.compile(r"^roomusers_(prev|next)$")
STALE_BUTTON = (
    "This button comes from an older version of roomusers and can't be used any more; "
    "run `/roomusers &lt;room-id&gt;` again."
)


def register(app: AsyncApp, answers: RoomAnswers) -> None:
    @app.action(PAGING_ACTIONS)
    async def page_clicked(ack: AsyncAck, action: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        try:
            ref = decode_page_ref(str(action.get("value", "")))
        except StaleButton:
            await deliver(respond, problem_message(STALE_BUTTON), response_type="ephemeral", replace_original=False)
            return
        message = await answers.page(ref)
        await deliver(respond, message, replace_original=True)
