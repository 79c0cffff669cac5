"""What the Slack listeners need, built once per process and passed to each `register`."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.slack.access import AccessRules
from bot.slack.answers import RoomAnswers
from bot.slack.budget import UpdateBudget
from bot.slack.pending import PendingAnswers
from bot.slack.render.blocks import Message, problem_message
from bot.slack.render.text import rate_limited_sentence
from bot.slack.watches import WatchDesk
from bot.state.once import EventDeduper
from bot.state.ratelimit import MemoryUserRate, UserRate

RESTARTING = "roomusers is restarting and could not finish this answer; please try again in a moment."


def restarting_message() -> Message:
    return problem_message(RESTARTING, title="Interrupted")


@dataclass(frozen=True)
class SlackDeps:
    answers: RoomAnswers
    access: AccessRules
    deduper: EventDeduper
    pending: PendingAnswers = field(default_factory=PendingAnswers)
    # chat.update is Tier 3 for the whole app: every loading mention's progress edits share this budget.
    updates: UpdateBudget = field(default_factory=UpdateBudget)
    progress_every: float = 3.0  # the shortest interval between one message's progress edits
    user_rate: UserRate = field(default_factory=lambda: MemoryUserRate(0))  # 0: no limit
    watches: WatchDesk | None = None  # None: watches are not offered (e.g. a bare test app)

    async def over_rate(self, team_id: str, user_id: str) -> str | None:
        """None when this person may make one more request now; else the polite refusal (counted as taken)."""
        wait = await self.user_rate.take(f"{team_id}:{user_id}")
        return rate_limited_sentence(self.user_rate.rate, wait) if wait > 0 else None
