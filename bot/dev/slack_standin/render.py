"""Block Kit messages rendered for a terminal, as a user would see them in Slack.

mrkdwn control sequences are resolved the way Slack displays them (`<url|label>` → "label (url)", dates → their
fallback, `<@U1>` → "@U1") and only then are `&lt;` `&gt;` `&amp;` unescaped, so escaped user content such as
`&lt;!channel&gt;` shows as the literal text "<!channel>", never as a live mention. Control and format
characters from message content are replaced, so untrusted names cannot move the cursor or reorder the line.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

from bot.dev.slack_standin.models import JsonDict, StoredMessage
from bot.dev.slack_standin.payloads import buttons_in
from bot.query import printable
from bot.slack.render.escaping import unescape_slack

_CONTROL = re.compile(r"<([^<>]*)>")
_DIM, _RESET = "\x1b[2m", "\x1b[0m"


def _resolve(match: re.Match[str]) -> str:
    target, _, label = match.group(1).partition("|")
    if target.startswith("!date^"):
        return label or target
    if target.startswith(("@", "#")):
        return target[0] + (label or target[1:])
    if target.startswith("!subteam^"):
        return label or "@group"
    if target.startswith("!"):
        return "@" + target[1:]  # <!here>, <!channel>, <!everyone>
    return f"{label} ({target})" if label else target


def display_text(obj: Any) -> str:
    """What Slack shows for a text object: mrkdwn control sequences resolved, entities unescaped."""
    if not isinstance(obj, dict):
        return ""
    text = str(obj.get("text", ""))
    if obj.get("type") == "mrkdwn":
        text = _CONTROL.sub(_resolve, text)
    return unescape_slack(text)


def buttons(message: JsonDict | StoredMessage) -> list[tuple[str, str]]:
    """(label, action_id) of every button in display order; "press button 2" is `buttons(m)[1]`."""
    return [
        (printable(display_text(button.get("text"))), str(button.get("action_id")))
        for _, button in buttons_in(_blocks(message))
    ]


def render_message(message: JsonDict | StoredMessage, *, width: int = 100, ansi: bool = False) -> str:
    """A readable, terminal-safe rendering of `message` (a stored message or a Block Kit payload dict)."""
    renderer = _Renderer(width=width, ansi=ansi)
    lines: list[str] = []
    if isinstance(message, StoredMessage) and message.ephemeral:
        lines.append(renderer.dim("(only visible to you)"))
    blocks = _blocks(message)
    if not blocks:
        text = message.text if isinstance(message, StoredMessage) else message.get("text")
        return "\n".join([*lines, *renderer.paragraph(display_text({"type": "mrkdwn", "text": text or ""}))])
    for block in blocks:
        lines += renderer.block(block)
    return "\n".join(lines)


def _blocks(message: JsonDict | StoredMessage) -> list[JsonDict]:
    blocks = message.blocks if isinstance(message, StoredMessage) else message.get("blocks")
    return [b for b in blocks or [] if isinstance(b, dict)]


class _Renderer:
    """Renders one message; numbers buttons across the whole message in display order."""

    def __init__(self, *, width: int, ansi: bool) -> None:
        self.width = max(width, 20)
        self.ansi = ansi
        self._button_number = 0
        self._by_type: dict[str, Callable[[JsonDict], list[str]]] = {
            "header": self._header,
            "section": self._section,
            "context": self._context,
            "actions": self._actions,
            "divider": lambda _block: ["─" * self.width],
            "image": lambda block: [f"[image: {printable(str(block.get('alt_text', '')))}]"],
            "rich_text": lambda block: self.paragraph("".join(_rich_text(block))),  # raw text, not escaped
        }

    def dim(self, line: str) -> str:
        return f"{_DIM}{line}{_RESET}" if self.ansi else line

    def paragraph(self, text: str, indent: str = "") -> list[str]:
        lines: list[str] = []
        for raw in text.split("\n"):
            wrapped = textwrap.wrap(printable(raw), self.width - len(indent), break_on_hyphens=False)
            lines += [indent + line for line in wrapped] or [indent.rstrip()]
        return lines

    def block(self, block: JsonDict) -> list[str]:
        render = self._by_type.get(str(block.get("type")))
        return render(block) if render else [f"[{printable(str(block.get('type')))} block]"]

    def _header(self, block: JsonDict) -> list[str]:
        return [f"══ {printable(display_text(block.get('text')))} ══"]

    def _section(self, block: JsonDict) -> list[str]:
        lines = self.paragraph(display_text(block.get("text"))) if "text" in block else []
        for field in block.get("fields") or []:
            lines += self.paragraph(display_text(field), indent="  ")
        accessory = block.get("accessory")
        if isinstance(accessory, dict):
            lines.append(self._element(accessory))
        return lines

    def _context(self, block: JsonDict) -> list[str]:
        parts = [
            f"[image: {e.get('alt_text', '')}]" if e.get("type") == "image" else display_text(e)
            for e in block.get("elements") or []
            if isinstance(e, dict)
        ]
        return [self.dim(line) for line in self.paragraph(" · ".join(parts), indent="  ┆ ")]

    def _actions(self, block: JsonDict) -> list[str]:
        elements = [e for e in block.get("elements") or [] if isinstance(e, dict)]
        return ["   ".join(self._element(e) for e in elements)]

    def _element(self, element: JsonDict) -> str:
        if element.get("type") != "button":
            return f"‹{printable(str(element.get('type')))}›"
        self._button_number += 1
        return f"[{self._button_number}] {printable(display_text(element.get('text')))}"


def _rich_text(node: Any) -> Iterator[str]:
    """The visible text of a rich_text block, in order."""
    if isinstance(node, list):
        for item in node:
            yield from _rich_text(item)
    elif isinstance(node, dict):
        if isinstance(node.get("text"), str):
            yield node["text"]
        elif node.get("type") == "user":
            yield f"@{node.get('user_id', '')}"
        yield from _rich_text(node.get("elements"))
