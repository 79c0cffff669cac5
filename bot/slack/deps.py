"""What the Slack listeners need, built once per process and passed to each `register`."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.slack.access import AccessPolicy
from bot.slack.answers import RoomAnswers
from bot.slack.budget import UpdateBudget
from bot.slack.pending import PendingAnswers
from bot.slack.render.blocks import Message, problem_message
from bot.state.once import EventDeduper

RESTARTING = "roomusers is restarting and could not finish this answer; please try again in a moment."


def restarting_message() -> Message:
    return problem_message(RESTARTING, title="Interrupted")


@dataclass(frozen=True)
class SlackDeps:
    answers: RoomAnswers
    access: AccessPolicy
    deduper: EventDeduper
    pending: PendingAnswers = field(default_factory=PendingAnswers)
    # chat.update is Tier 3 for the whole app: every loading mention's progress edits share this budget.
    updates: UpdateBudget = field(default_factory=UpdateBudget)
    progress_every: float = 3.0  # the shortest interval between one message's progress edits
