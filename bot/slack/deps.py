"""What the Slack listeners need, built once per process and passed to each `register`."""

from __future__ import annotations

from dataclasses import dataclass

from bot.dedupe import EventDeduper
from bot.slack.access import AccessPolicy
from bot.slack.answers import RoomAnswers


@dataclass(frozen=True)
class SlackDeps:
    answers: RoomAnswers
    access: AccessPolicy
    deduper: EventDeduper
