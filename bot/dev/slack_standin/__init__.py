"""A faithful local stand-in for Slack, for end-to-end tests, `make demo` and the interactive console.

async with SlackStandIn(signing_secret=..., bot_token=..., app_url="http://127.0.0.1:3000/slack/events") as slack:
    client = AsyncWebClient(token=..., base_url=slack.api_base_url)
    await slack.send_command("demo-120")
    page = await slack.next_message()
    print(render_message(page))
    await slack.click(page, buttons(page)[-1][1])
"""

from bot.dev.slack_standin.driver import AppDriver
from bot.dev.slack_standin.limits import MessageRejected, check_message
from bot.dev.slack_standin.models import (
    ACK_DEADLINE_SECONDS,
    ApiCall,
    AppResponse,
    BotIdentity,
    ResponseContext,
    ResponseUrlPost,
    StoredFile,
    StoredMessage,
)
from bot.dev.slack_standin.render import buttons, render_message
from bot.dev.slack_standin.server import SlackStandIn

__all__ = [
    "ACK_DEADLINE_SECONDS",
    "ApiCall",
    "AppDriver",
    "AppResponse",
    "BotIdentity",
    "MessageRejected",
    "ResponseContext",
    "ResponseUrlPost",
    "SlackStandIn",
    "StoredFile",
    "StoredMessage",
    "buttons",
    "check_message",
    "render_message",
]
