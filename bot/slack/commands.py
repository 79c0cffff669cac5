"""The `/roomusers` slash command: ack at once, answer through the command's response_url."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.slack.answers import RoomAnswers
from bot.slack.blocks import Message, loading_text, problem_message, usage_message
from bot.slack.parsing import HelpRequest, InvalidRequest, parse_command_text

log = logging.getLogger(__name__)

COMMAND = "/roomusers"


async def deliver(respond: AsyncRespond, message: Message, **options: Any) -> bool:
    """Post through response_url; respond() does not raise on HTTP errors, so check and log them."""
    response = await respond(**message.to_payload(), **options)
    if response.status_code != 200:
        log.warning("response_url answered HTTP %s: %s", response.status_code, (response.body or "")[:200])
        return False
    return True


def register(app: AsyncApp, answers: RoomAnswers) -> None:
    @app.command(COMMAND)
    async def roomusers_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        request = parse_command_text(command.get("text") or "")
        if isinstance(request, HelpRequest):
            await ack(**usage_message(request.reason).to_payload())
            return
        if isinstance(request, InvalidRequest):
            await ack(**problem_message(request.problem).to_payload())
            return
        await ack(text=loading_text(request.room_id))
        message = await answers.first_page(request)
        await deliver(respond, message, response_type="ephemeral", replace_original=False)
