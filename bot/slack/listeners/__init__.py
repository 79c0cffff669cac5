"""The Slack surfaces: each module acks, parses, answers and delivers for one kind of request."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.deps import SlackDeps
from bot.slack.listeners import actions, commands, mentions


def register_listeners(app: AsyncApp, deps: SlackDeps) -> None:
    commands.register(app, deps)
    actions.register(app, deps)
    mentions.register(app, deps)
