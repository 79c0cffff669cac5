"""The Web API methods the app uses, answered the way Slack answers them (ok/error JSON, never exceptions).

Arguments arrive already merged from the query string, form or JSON body (slack_sdk uses all three), so
values may be strings ("1", a JSON-encoded blocks array) or native JSON types; each handler copes with both.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.dev.slack_standin import ids
from bot.dev.slack_standin.limits import CheckedMessage, MessageRejected, check_message, lint_message
from bot.dev.slack_standin.models import BotIdentity, JsonDict, StoredFile, StoredMessage
from bot.dev.slack_standin.payloads import message_json
from bot.dev.slack_standin.workspace import Workspace

Handler = Callable[[JsonDict], JsonDict]


class ApiError(Exception):
    """A Slack error code for the current call, e.g. ApiError("message_not_found")."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(slots=True)
class _PendingUpload:
    filename: str
    length: int
    content: bytes | None = None


def _ok(**fields: Any) -> JsonDict:
    return {"ok": True, **fields}


def _required(args: JsonDict, name: str, error: str = "invalid_arguments") -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError(error)
    return value


class WebApi:
    """Dispatches `POST /api/<method>` calls to handlers that read and change the workspace."""

    def __init__(self, workspace: Workspace, identity: BotIdentity) -> None:
        self._ws = workspace
        self._id = identity
        self._uploads: dict[str, _PendingUpload] = {}
        self.upload_base_url = ""  # set by the server once it knows its address
        self._handlers: dict[str, Handler] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.update": self._update,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
            "usergroups.users.list": self._usergroup_users,
        }

    def call(self, method: str, args: JsonDict) -> JsonDict:
        handler = self._handlers.get(method)
        if handler is None:
            return {"ok": False, "error": "unknown_method", "req_method": method}
        try:
            return handler(args)
        except ApiError as error:
            return {"ok": False, "error": error.code}
        except MessageRejected as rejected:
            body: JsonDict = {"ok": False, "error": rejected.error}
            if rejected.details:
                body["response_metadata"] = {"messages": rejected.details}
            return body

    def receive_upload(self, file_id: str, content: bytes) -> bool:
        """The upload step of files_upload_v2: bytes POSTed to the URL files.getUploadURLExternal issued."""
        pending = self._uploads.get(file_id)
        if pending is None:
            return False
        pending.content = content
        if len(content) != pending.length:
            self._ws.warn(f"upload {file_id}: declared length {pending.length}, received {len(content)} bytes")
        return True

    # -- identity ----------------------------------------------------------------------------------------

    def _auth_test(self, _args: JsonDict) -> JsonDict:
        return _ok(
            url=self._id.workspace_url,
            team="Roomusers Demo",
            user="roomusers",
            team_id=self._id.team_id,
            user_id=self._id.bot_user_id,
            bot_id=self._id.bot_id,
            is_enterprise_install=False,
        )

    # -- messages ----------------------------------------------------------------------------------------

    def _channel(self, args: JsonDict) -> str:
        channel = _required(args, "channel", "channel_not_found")
        # Posting to a user ID posts to the bot's DM with that user, and Slack answers with the D... channel.
        return self._ws.dm_channel(channel) if channel[0] in "UW" else channel

    def _checked(self, method: str, args: JsonDict) -> CheckedMessage:
        checked = check_message(args.get("text"), args.get("blocks"))
        for warning in lint_message(f"{method} to {args.get('channel')}", checked, args):
            self._ws.warn(warning)
        return checked

    def _check_reach(self, channel: str, *, user: str | None = None) -> None:
        """Slack's membership rules for posting (slack-platform.md §13); response_urls are never checked."""
        conversation = self._ws.conversations.get(channel)
        if conversation is None:
            raise ApiError("channel_not_found")
        if conversation.kind == "app_dm" and not self._ws.messages_tab_enabled:
            raise ApiError("messages_tab_disabled")
        if not conversation.bot_member:
            # A public channel is visible to the bot, it just isn't in it; anything private does not exist for it.
            raise ApiError("not_in_channel" if conversation.kind == "public" else "channel_not_found")
        if user is not None and user not in conversation.members:
            raise ApiError("user_not_in_channel")

    def _post_message(self, args: JsonDict) -> JsonDict:
        self._check_reach(self._channel(args))
        message = self._store("chat.postMessage", args)
        return _ok(channel=message.channel, ts=message.ts, message=message_json(message, self._id))

    def _post_ephemeral(self, args: JsonDict) -> JsonDict:
        user = _required(args, "user", "user_not_in_channel")
        self._check_reach(self._channel(args), user=user)
        return _ok(message_ts=self._store("chat.postEphemeral", args, user=user).ts)

    def _store(self, method: str, args: JsonDict, *, user: str | None = None) -> StoredMessage:
        """A message the app posts through the Web API (visible, or ephemeral for `user`), checked as Slack does."""
        channel = self._channel(args)
        checked = self._checked(method, args)
        message = self._ws.add(
            channel=channel,
            text=checked.text,
            blocks=checked.blocks,
            author=self._id.bot_user_id,
            origin="api",
            user=user,
            thread_ts=args.get("thread_ts") or None,
            missing_text=checked.missing_text,
        )
        self._remember_options(message, args)
        return message

    def _remember_options(self, message: StoredMessage, args: JsonDict) -> None:
        message.link_names = args.get("link_names")
        message.parse = args.get("parse")

    def _update(self, args: JsonDict) -> JsonDict:
        channel = self._channel(args)
        message = self._ws.message(_required(args, "ts", "message_not_found"))
        if message is None or message.channel != channel:
            raise ApiError("message_not_found")
        # Ephemerals are not stored by Slack and others' messages are not ours: neither can be edited.
        if message.ephemeral or message.author != self._id.bot_user_id:
            raise ApiError("cant_update_message")
        checked = self._checked("chat.update", args)
        # chat.update keeps the previous blocks (and text) when the call leaves them out.
        blocks = checked.blocks if checked.blocks is not None else message.blocks
        text = checked.text if checked.text is not None else message.text
        self._ws.replace(message, text=text, blocks=blocks, missing_text=checked.missing_text)
        self._remember_options(message, args)
        return _ok(channel=channel, ts=message.ts, text=text or "", message=message_json(message, self._id))

    # -- conversations -----------------------------------------------------------------------------------

    def _conversations_info(self, args: JsonDict) -> JsonDict:
        """What real Slack says: a public channel is visible with `is_member`; a private channel, DM or group DM
        the bot is not part of does not exist for it (`channel_not_found`). Public needs channels:read, private
        groups:read (im:read / mpim:read for DMs, which the app does not ask for)."""
        channel = _required(args, "channel", "channel_not_found")
        conversation = self._ws.conversations.get(channel)
        if conversation is None:
            raise ApiError("channel_not_found")
        needed = {"public": "channels:read", "private": "groups:read", "im": "im:read", "mpim": "mpim:read"}
        scope = needed.get(conversation.kind, "im:read")
        if scope not in self._ws.scopes:
            raise ApiError("missing_scope")
        if not conversation.bot_member and conversation.kind != "public":
            raise ApiError("channel_not_found")
        kind = conversation.kind
        return _ok(
            channel={
                "id": conversation.id,
                "name": conversation.name,
                "is_channel": kind == "public",
                "is_group": kind == "private",
                "is_im": kind in ("im", "app_dm"),
                "is_mpim": kind == "mpim",
                "is_private": kind != "public",
                "is_member": conversation.bot_member,
            }
        )

    def _conversations_open(self, args: JsonDict) -> JsonDict:
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if not users:
            raise ApiError("users_list_not_supplied")
        channel = self._ws.dm_channel(users[0]) if len(users) == 1 else ids.slack_id("G")
        return _ok(channel={"id": channel})

    # -- user groups -------------------------------------------------------------------------------------

    def _usergroup_users(self, args: JsonDict) -> JsonDict:
        members = self._ws.usergroups.get(_required(args, "usergroup", "no_such_subteam"))
        if members is None:
            raise ApiError("no_such_subteam")
        return _ok(users=list(members))

    # -- files (files_upload_v2) -------------------------------------------------------------------------

    def _get_upload_url(self, args: JsonDict) -> JsonDict:
        filename = _required(args, "filename")
        length = args.get("length")
        if isinstance(length, str) and length.isdigit():
            length = int(length)  # form-encoded calls send numbers as strings
        if not isinstance(length, int) or isinstance(length, bool) or length < 0:
            raise ApiError("invalid_arguments")
        file_id = ids.slack_id("F")
        self._uploads[file_id] = _PendingUpload(filename=filename, length=length)
        return _ok(upload_url=f"{self.upload_base_url}/upload/{file_id}", file_id=file_id)

    def _complete_upload(self, args: JsonDict) -> JsonDict:
        entries = _json_list(args.get("files"))
        channels = tuple(c for c in str(args.get("channels") or "").split(",") if c)
        channel_id = args.get("channel_id") or None
        for channel in (channel_id, *channels):
            if channel:
                self._check_reach(str(channel))
        completed = [self._complete_one(entry, channel_id, channels, args) for entry in entries]
        self._ws.files.extend(completed)
        return _ok(files=[_file_json(f) for f in completed])

    def _complete_one(
        self, entry: Any, channel_id: str | None, channels: tuple[str, ...], args: JsonDict
    ) -> StoredFile:
        file_id = entry.get("id") if isinstance(entry, dict) else None
        pending = self._uploads.pop(file_id, None) if isinstance(file_id, str) else None
        if pending is None or pending.content is None:
            raise ApiError("file_not_found")
        return StoredFile(
            id=str(file_id),
            filename=pending.filename,
            title=entry.get("title"),
            content=pending.content,
            channel_id=channel_id,
            channels=channels,
            thread_ts=args.get("thread_ts") or None,
            initial_comment=args.get("initial_comment") or None,
        )


def _json_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ApiError("invalid_arguments") from None
    if not isinstance(value, list) or not value:
        raise ApiError("invalid_arguments")
    return value


def _file_json(stored: StoredFile) -> JsonDict:
    shared = [c for c in (stored.channel_id, *stored.channels) if c]
    return {
        "id": stored.id,
        "name": stored.filename,
        "title": stored.title or stored.filename,
        "size": len(stored.content),
        "channels": shared,
    }
