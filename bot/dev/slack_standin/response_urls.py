"""response_urls: minting them, their 5-uses-in-30-minutes budget, and what a POST to one does.

Semantics follow Slack (slack-platform.md §3):
- `response_type: "in_channel"` posts a visible message; anything else an ephemeral one to the user.
- From a click's URL, `replace_original: true` edits the clicked message in place (ephemeral or not) and
  `delete_original: true` deletes it.
- From a slash command's own URL there is no original, so `replace_original` just posts a new message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.dev.slack_standin import ids
from bot.dev.slack_standin.limits import CheckedMessage, MessageRejected, check_message, lint_message
from bot.dev.slack_standin.models import BotIdentity, JsonDict, Origin, ResponseContext
from bot.dev.slack_standin.workspace import Slot, Workspace

MAX_USES = 5
LIFETIME_SECONDS = 30 * 60
OK = (200, "ok")


@dataclass(slots=True)
class _Grant:
    context: ResponseContext
    created: float
    uses: int = 0


def _flag(value: Any) -> bool:
    return value is True or value in ("true", "1", 1)


class ResponseUrls:
    def __init__(self, workspace: Workspace, identity: BotIdentity, clock: Callable[[], float]) -> None:
        self._ws = workspace
        self._id = identity
        self._clock = clock
        self._grants: dict[str, _Grant] = {}
        self.base_url = ""  # set by the server once it knows its address

    def mint(self, context: ResponseContext) -> str:
        token = ids.url_token()
        self._grants[token] = _Grant(context=context, created=self._clock())
        return f"{self.base_url}/response/{token}"

    def uses(self, url: str) -> int:
        """How many of its 5 uses a response_url has spent (0 for an unknown URL)."""
        grant = self._grants.get(url.rsplit("/", 1)[-1])
        return grant.uses if grant else 0

    def post(self, token: str, raw: bytes) -> tuple[int, str]:
        """Apply one POST to a response_url; the (HTTP status, text body) Slack would answer."""
        grant = self._grants.get(token)
        if grant is None:
            return 404, "no_service"
        if self._clock() - grant.created > LIFETIME_SECONDS:
            return 404, "expired_url"
        if grant.uses >= MAX_USES:
            return 404, "used_url"
        # Every accepted request spends a use, even one whose payload is then refused: the stricter reading.
        grant.uses += 1
        payload = parse_payload(raw)
        if payload is None:
            return 400, "invalid_payload"
        return self.deliver(grant.context, payload, origin="response_url")

    def deliver(
        self, context: ResponseContext, payload: JsonDict, *, origin: Origin, slot: Slot | None = None
    ) -> tuple[int, str]:
        """Act on a response payload (from a response_url, or a slash command's ack body) for `context`."""
        clicked = context.message_ts is not None
        if clicked and origin == "response_url" and not {"replace_original", "delete_original"} & payload.keys():
            # Legacy Slack replaced by default; never rely on either default (slack-platform.md §3).
            self._ws.warn(f"response_url for message {context.message_ts}: replace_original not set explicitly")
        if _flag(payload.get("delete_original")):
            return self._delete(context)
        try:
            checked = check_message(payload.get("text"), payload.get("blocks"))
        except MessageRejected as rejected:
            return 400, rejected.error
        for warning in lint_message(f"{origin} in {context.channel}", checked, payload):
            self._ws.warn(warning)
        if clicked and _flag(payload.get("replace_original")):
            return self._replace(context, checked)
        self._post_new(context, payload, checked, origin, slot)
        return OK

    def _delete(self, context: ResponseContext) -> tuple[int, str]:
        original = self._ws.message(context.message_ts) if context.message_ts else None
        if original is None:
            return 404, "message_not_found"
        self._ws.delete(original)
        return OK

    def _replace(self, context: ResponseContext, checked: CheckedMessage) -> tuple[int, str]:
        original = self._ws.message(context.message_ts) if context.message_ts else None
        if original is None:
            return 404, "message_not_found"
        # A replacement is a whole new message body: blocks left out are gone, and an ephemeral stays one.
        self._ws.replace(
            original,
            text=checked.text,
            blocks=checked.blocks or [],
            missing_text=checked.missing_text,
            tag=context.tag,
        )
        return OK

    def _post_new(
        self, context: ResponseContext, payload: JsonDict, checked: CheckedMessage, origin: Origin, slot: Slot | None
    ) -> None:
        in_channel = payload.get("response_type") == "in_channel"
        self._ws.add(
            channel=context.channel,
            text=checked.text,
            blocks=checked.blocks,
            author=self._id.bot_user_id,
            origin=origin,
            user=None if in_channel else context.user,
            thread_ts=payload.get("thread_ts") or None,
            missing_text=checked.missing_text,
            slot=slot,
            tag=context.tag,
        )


def parse_payload(raw: bytes) -> JsonDict | None:
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None
