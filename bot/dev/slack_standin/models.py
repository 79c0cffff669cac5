"""What the Slack stand-in remembers: messages, files, and the requests it received or sent."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

JsonDict = dict[str, Any]

# Where a message came from: a Web API call, a response_url post, the body of a slash command's ack
# (Slack shows it as a message), or a human typing in the channel (the text of an @-mention).
Origin = Literal["api", "response_url", "ack", "user"]

# Slack shows "operation_timeout" (commands, clicks) or retries (events) when the app takes longer than this.
ACK_DEADLINE_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """Who the app is in the stand-in's workspace; echoed in payloads exactly as Slack would."""

    bot_user_id: str
    team_id: str
    bot_id: str = "B0ROOMUSERS"
    app_id: str = "A0ROOMUSERS"
    team_domain: str = "roomusers-demo"
    # The legacy verification token Slack still puts in every payload; Bolt ignores it in favour of signatures.
    verification_token: str = "standin-verification-token"  # noqa: S105 - a public, meaningless demo value

    @property
    def workspace_url(self) -> str:
        return f"https://{self.team_domain}.slack.com/"


@dataclass(slots=True)
class StoredMessage:
    """One message as Slack holds it. Visible messages have `user=None`; ephemerals name the one viewer."""

    channel: str
    ts: str
    text: str | None
    blocks: list[JsonDict]
    user: str | None = None
    thread_ts: str | None = None
    ephemeral: bool = False
    origin: Origin = "api"
    replaced_count: int = 0
    author: str = ""
    deleted: bool = False
    # Set when blocks arrived without fallback `text` (notifications and screen readers then show nothing).
    missing_text: bool = False
    link_names: Any = None
    parse: str | None = None
    # An ephemeral Slack accepted but does not show (in a thread with no replies).
    invisible: bool = False
    # An edited user message (an @-mention whose text changed) carries Slack's `edited` field.
    edited: JsonDict | None = None
    # Which exchange (a command, click) created or last replaced it: the `tag` its ResponseContext carried.
    tag: str = ""

    def snapshot(self) -> StoredMessage:
        """A deep copy, so a later replacement cannot change what a test already received."""
        return copy.deepcopy(self)


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file completed through `files.completeUploadExternal` (the last step of `files_upload_v2`)."""

    id: str
    filename: str
    title: str | None
    content: bytes
    channel_id: str | None
    channels: tuple[str, ...] = ()
    thread_ts: str | None = None
    initial_comment: str | None = None


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One Web API request, whatever its outcome; `error` is None when Slack would have answered ok."""

    method: str
    args: JsonDict
    status: int = 200
    error: str | None = None
    at: float = 0.0  # time.monotonic() when it arrived, for rate arithmetic


@dataclass(frozen=True, slots=True)
class ResponseUrlPost:
    """One POST to a response_url: what the app sent and what the stand-in answered."""

    url: str
    payload: JsonDict | None
    status: int
    body: str


@dataclass(frozen=True, slots=True)
class ResponseContext:
    """What a response_url is bound to. `message_ts` is the clicked message; None for a slash command's URL."""

    channel: str
    user: str
    message_ts: str | None = None
    tag: str = ""  # chosen by the driver's caller (the console), copied to the messages this URL posts


@dataclass(frozen=True, slots=True)
class AppResponse:
    """The app's HTTP answer to something the stand-in sent it, as Slack would receive it."""

    status: int
    headers: dict[str, str]
    body: str
    json: Any
    elapsed: float
    # The payload that was sent: form fields for a command, the parsed `payload` for a click, the envelope for
    # an event. Tests use it to resend an event (same event_id) or to read the response_url handed out.
    sent: JsonDict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def acked_in_time(self) -> bool:
        return self.ok and self.elapsed <= ACK_DEADLINE_SECONDS
