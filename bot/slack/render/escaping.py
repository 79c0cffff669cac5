"""Making untrusted text safe and readable in Slack.

Slack treats `&`, `<` and `>` as control characters in every text object: an unescaped `<!channel>` or
`<https://evil|Click>` in a user name would become a live broadcast or a disguised link. Names can also
carry newlines, bidi overrides and zero-width characters that would reshape a list, so list entries are
cleaned before they are escaped.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

__all__ = [
    "ELLIPSIS",
    "EMOJI_JOINERS",
    "LONE_SURROGATE",
    "SLACK_USER_ID",
    "clean_untrusted",
    "escape_mrkdwn",
    "largest_fitting",
    "quote_code",
    "slack_length",
    "unescape_slack",
]

ELLIPSIS = "…"

# Control, format and line/paragraph separators: newlines, tabs, bidi overrides, zero-width spaces.
_BLANKED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
# Format characters that only join emoji (👩🏽‍💻, subdivision flags) and cannot reorder or hide text.
EMOJI_JOINERS = frozenset({"\u200d", *map(chr, range(0xE0020, 0xE0080))})
# A lone surrogate (ZIM's JSON may carry one) cannot be encoded as UTF-8; it is replaced before text leaves us.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# A Slack user ID: U… in a workspace, W… in an Enterprise Grid org.
SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack parses (`&` first, so entities are not double-escaped)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape_slack(text: str) -> str:
    """Undo Slack's escaping of command and mention text (`&amp;` last, so `&amp;lt;` stays `&lt;`)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def slack_length(text: str) -> int:
    """Length in UTF-16 code units: never less than Python's count, so limits measured this way are safe."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def _flatten(text: str) -> str:
    if not text.isprintable():  # fast path: printable text holds no Cc/Cf/Zl/Zp and no lone surrogates
        text = LONE_SURROGATE.sub("\ufffd", text)
        text = "".join(
            " " if unicodedata.category(char) in _BLANKED_CATEGORIES and char not in EMOJI_JOINERS else char
            for char in text
        )
    return " ".join(text.split())


def clean_untrusted(text: str, max_chars: int) -> str:
    """Flatten an untrusted name or ID to one tidy line of at most `max_chars` characters ("" if nothing is left).

    Control and format characters become spaces, whitespace runs collapse, lone surrogates (which cannot be
    sent as UTF-8) become U+FFFD, and a cut is marked with "…" (counted within `max_chars`).
    """
    if max_chars <= 0:
        return ""
    # Flattening a prefix yields a prefix of the flattened whole, so a huge name only costs a few windows.
    window = 2 * max_chars + 16
    while True:
        flat = _flatten(text[:window])
        if len(flat) > max_chars:
            return flat[: max_chars - 1].rstrip() + ELLIPSIS
        if window >= len(text):
            return flat
        window *= 4


def quote_code(text: str, max_chars: int) -> str:
    """Untrusted text as one inline code span that cannot break: cleaned (one line, at most `max_chars`), each
    backtick shown as ˋ (U+02CB: Slack has no escape for a backtick, which would end the span), escaped."""
    cleaned = clean_untrusted(text, max_chars)
    if not cleaned:
        return "_(empty)_"
    return "`" + escape_mrkdwn(cleaned.replace("`", "\u02cb")) + "`"


def largest_fitting(fits: Callable[[int], bool], *, low: int, high: int) -> int:
    """The largest n in [low, high) with fits(n), given fits(low) and not fits(high) and that fits is monotonic
    (a binary search: rendering a candidate is the costly part)."""
    while high - low > 1:
        middle = (low + high) // 2
        if fits(middle):
            low = middle
        else:
            high = middle
    return low
