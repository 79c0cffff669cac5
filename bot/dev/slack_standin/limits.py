"""Slack's rules for a message's text and blocks, enforced on every message the app sends.

The stand-in is deliberately at least as strict as Slack: an app that passes here must not meet
`invalid_blocks` or `msg_blocks_too_long` in production. Errors carry the JSON-pointer details Slack puts in
`response_metadata.messages`, so a failing test says which block broke which rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.dev.slack_standin.models import JsonDict

MAX_BLOCKS = 50
MAX_TEXT = 3000  # any text object, including a section's text
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_URL = 3000
MAX_ID = 255
# Undocumented: chat.postMessage answers msg_blocks_too_long from roughly 12,000 characters of block text
# even when every block is valid (bolt-js #2509, #2867). The stand-in uses the low end of that range.
MAX_TOTAL_BLOCK_TEXT = 12_000

_TEXT_TYPES = ("plain_text", "mrkdwn")
_PLAIN = ("plain_text",)
_BUTTON_STYLES = ("primary", "danger")
_OFF = (None, "", "0", "false", 0, False)  # link_names values that leave @names as text
_UNCHECKED_BLOCKS = ("divider", "image", "input", "file", "video", "markdown", "rich_text")


class MessageRejected(Exception):
    """Slack would refuse this message with `error` (e.g. "invalid_blocks"); `details` are its messages."""

    def __init__(self, error: str, details: list[str] | None = None) -> None:
        super().__init__(f"{error}: {'; '.join(details or [])}" if details else error)
        self.error = error
        self.details = details or []


@dataclass(frozen=True, slots=True)
class CheckedMessage:
    """A message Slack would accept. `blocks` is None when the request had no blocks field at all."""

    text: str | None
    blocks: list[JsonDict] | None
    missing_text: bool


def check_message(text: Any, blocks: Any) -> CheckedMessage:
    """Validate `text` and `blocks` (a list, or a JSON string as form-encoded calls send it)."""
    if text is not None and not isinstance(text, str):
        raise MessageRejected("invalid_arguments", [_detail("/text", "must be a string")])
    parsed = parse_blocks(blocks)
    if parsed:
        _check_blocks(parsed)
    if not text and not parsed:
        raise MessageRejected("no_text")
    # Blocks without fallback text post fine, but notifications and screen readers then have nothing to show.
    missing_text = bool(parsed) and not (text and text.strip())
    return CheckedMessage(text=text, blocks=parsed, missing_text=missing_text)


def lint_message(where: str, checked: CheckedMessage, options: JsonDict) -> list[str]:
    """What Slack accepts but this app must never do; the stand-in records these as warnings."""
    warnings = []
    if checked.missing_text:
        warnings.append(f"{where}: blocks without fallback text")
    if options.get("link_names") not in _OFF:
        warnings.append(f"{where}: link_names={options['link_names']!r} turns untrusted @names into pings")
    if options.get("parse") == "full":
        warnings.append(f"{where}: parse=full turns untrusted text into links and mentions")
    return warnings


def parse_blocks(blocks: Any) -> list[JsonDict] | None:
    if blocks is None:
        return None
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except json.JSONDecodeError:
            raise MessageRejected("invalid_blocks_format", [_detail("/blocks", "must be valid JSON")]) from None
    if not isinstance(blocks, list):
        raise MessageRejected("invalid_blocks", [_detail("/blocks", "must be an array")])
    if len(blocks) > MAX_BLOCKS:
        raise MessageRejected("invalid_blocks", [_detail("/blocks", f"must be less than {MAX_BLOCKS + 1} items")])
    return blocks


def _detail(pointer: str, problem: str) -> str:
    return f"[ERROR] {problem} [json-pointer:{pointer}]"


def _check_blocks(blocks: list[Any]) -> None:
    checker = _Checker()
    for index, block in enumerate(blocks):
        checker.block(block, f"/blocks/{index}")
    if checker.errors:
        raise MessageRejected("invalid_blocks", checker.errors)
    if checker.total_text > MAX_TOTAL_BLOCK_TEXT:
        raise MessageRejected("msg_blocks_too_long")


class _Checker:
    """Walks the blocks once, collecting every rule broken and the total text length."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.total_text = 0
        self._block_ids: set[str] = set()
        self._by_type: dict[str, Callable[[JsonDict, str], None]] = {
            "section": self._section,
            "header": self._header,
            "context": self._context,
            "actions": self._actions,
        }

    def fail(self, pointer: str, problem: str) -> None:
        self.errors.append(_detail(pointer, problem))

    def block(self, block: Any, pointer: str) -> None:
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            self.fail(f"{pointer}/type", "missing required field: type")
            return
        self._block_id(block.get("block_id"), pointer)
        kind = block["type"]
        if kind in self._by_type:
            self._by_type[kind](block, pointer)
        elif kind in _UNCHECKED_BLOCKS:
            self.total_text += _nested_text_length(block)
        else:
            self.fail(f"{pointer}/type", f"unsupported type: {kind}")

    def _block_id(self, value: Any, pointer: str) -> None:
        if value is None:
            return
        if not isinstance(value, str) or not 0 < len(value) <= MAX_ID:
            self.fail(f"{pointer}/block_id", f"must be a string of 1 to {MAX_ID} characters")
        elif value in self._block_ids:
            self.fail(f"{pointer}/block_id", "duplicate block_id")
        else:
            self._block_ids.add(value)

    def text_object(self, obj: Any, pointer: str, *, max_len: int, types: tuple[str, ...] = _TEXT_TYPES) -> None:
        if not isinstance(obj, dict):
            self.fail(pointer, "must be a text object")
            return
        if obj.get("type") not in types:
            self.fail(f"{pointer}/type", f"must be one of: {', '.join(types)}")
        text = obj.get("text")
        if not isinstance(text, str) or not text:
            self.fail(f"{pointer}/text", "must be more than 0 characters")
            return
        if len(text) > max_len:
            self.fail(f"{pointer}/text", f"must be less than {max_len + 1} characters")
        self.total_text += len(text)

    def _section(self, block: JsonDict, pointer: str) -> None:
        fields = block.get("fields")
        if "text" not in block and not fields:
            self.fail(pointer, "must provide either text or fields")
        if "text" in block:
            self.text_object(block["text"], f"{pointer}/text", max_len=MAX_TEXT)
        if fields is not None:
            if not isinstance(fields, list) or len(fields) > MAX_FIELDS:
                self.fail(f"{pointer}/fields", f"must be an array of at most {MAX_FIELDS} items")
            else:
                for i, item in enumerate(fields):
                    self.text_object(item, f"{pointer}/fields/{i}", max_len=MAX_FIELD_TEXT)
        if "accessory" in block:
            self.element(block["accessory"], f"{pointer}/accessory")

    def _header(self, block: JsonDict, pointer: str) -> None:
        self.text_object(block.get("text"), f"{pointer}/text", max_len=MAX_HEADER_TEXT, types=_PLAIN)

    def _context(self, block: JsonDict, pointer: str) -> None:
        elements = self._elements(block, pointer, MAX_CONTEXT_ELEMENTS)
        for i, element in enumerate(elements):
            if isinstance(element, dict) and element.get("type") == "image":
                continue
            self.text_object(element, f"{pointer}/elements/{i}", max_len=MAX_TEXT)

    def _actions(self, block: JsonDict, pointer: str) -> None:
        action_ids: set[str] = set()
        for i, element in enumerate(self._elements(block, pointer, MAX_ACTIONS_ELEMENTS)):
            self.element(element, f"{pointer}/elements/{i}")
            action_id = element.get("action_id") if isinstance(element, dict) else None
            if isinstance(action_id, str):
                if action_id in action_ids:
                    self.fail(f"{pointer}/elements/{i}/action_id", "duplicate action_id within the block")
                action_ids.add(action_id)

    def _elements(self, block: JsonDict, pointer: str, limit: int) -> list[Any]:
        elements = block.get("elements")
        if not isinstance(elements, list) or not 0 < len(elements) <= limit:
            self.fail(f"{pointer}/elements", f"must be an array of 1 to {limit} items")
            return []
        return elements

    def element(self, element: Any, pointer: str) -> None:
        if not isinstance(element, dict) or not isinstance(element.get("type"), str):
            self.fail(f"{pointer}/type", "missing required field: type")
            return
        action_id = element.get("action_id")
        if action_id is not None and (not isinstance(action_id, str) or not 0 < len(action_id) <= MAX_ID):
            self.fail(f"{pointer}/action_id", f"must be a string of 1 to {MAX_ID} characters")
        if element["type"] == "button":
            self._button(element, pointer)

    def _button(self, button: JsonDict, pointer: str) -> None:
        self.text_object(button.get("text"), f"{pointer}/text", max_len=MAX_BUTTON_TEXT, types=_PLAIN)
        for key, limit in (("value", MAX_BUTTON_VALUE), ("url", MAX_URL)):
            value = button.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                self.fail(f"{pointer}/{key}", f"must be a string of at most {limit} characters")
        if "style" in button and button["style"] not in _BUTTON_STYLES:
            self.fail(f"{pointer}/style", f"must be one of: {', '.join(_BUTTON_STYLES)}")


def _nested_text_length(node: Any) -> int:
    """Characters under any "text" key, for block types the stand-in does not check field by field."""
    if isinstance(node, list):
        return sum(_nested_text_length(item) for item in node)
    if not isinstance(node, dict):
        return 0
    own = len(node["text"]) if isinstance(node.get("text"), str) else 0
    return own + sum(_nested_text_length(value) for key, value in node.items() if key != "text" or own == 0)
