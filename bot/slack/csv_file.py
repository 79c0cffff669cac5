"""The bytes of a roster's CSV file, shared by the Slack export and `python -m bot query --csv`.

The CSV is meant to be opened in a spreadsheet, so user names (chosen by anyone who can join a room) are
cleaned and defused against formula injection before they are written; user IDs are written exactly as ZIM
returns them. See `roster_csv` for the exact rule. No Slack SDK here: `query` imports this module.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from bot.roster.model import RoomUser
from bot.roster.view import filter_users
from bot.slack.render.escaping import EMOJI_JOINERS, LONE_SURROGATE

__all__ = ["CSV_HEADER", "FORMULA_TRIGGERS", "MatchingCsv", "id_cell", "matching_csv", "name_cell", "roster_csv"]

CSV_HEADER = ("user_id", "user_name")
# OWASP "CSV Injection": spreadsheets evaluate a cell starting with one of these as a formula (or DDE call).
# (Tab and carriage return, also on OWASP's list, cannot start a name: names lose every control character.)
FORMULA_TRIGGERS = frozenset("=+-@")
# Removed from names: control characters (tab, newlines, escapes), format characters (bidi overrides,
# zero-width spaces) and line/paragraph separators; emoji joiners stay, so 👩🏽‍💻 survives.
_REMOVED_FROM_NAMES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def name_cell(name: str) -> str:
    """A user name as written to the CSV: controls, bidi and zero-width characters removed, then `'` before a
    leading `=`, `+`, `-` or `@`."""
    name = LONE_SURROGATE.sub("\ufffd", name)
    if not name.isprintable():
        name = "".join(
            char for char in name if unicodedata.category(char) not in _REMOVED_FROM_NAMES or char in EMOJI_JOINERS
        )
    return "'" + name if name[:1] in FORMULA_TRIGGERS else name


def id_cell(user_id: str) -> str:
    """A user ID as written to the CSV: exactly as ZIM returned it (a lone surrogate, which UTF-8 cannot carry,
    becomes U+FFFD)."""
    return LONE_SURROGATE.sub("\ufffd", user_id)


def roster_csv(users: Iterable[RoomUser]) -> bytes:
    """The users as an RFC 4180 CSV file: UTF-8 **with** a byte-order mark (so Excel reads it as UTF-8),
    `\\r\\n` line endings, header `user_id,user_name`.

    One row per user, in the given order. Quoting is minimal (csv.QUOTE_MINIMAL): a cell is wrapped in double
    quotes only when it contains a comma, a double quote (doubled inside), `\\r` or `\\n`; an empty value is an
    empty cell.

    Names (anyone who joins a room chooses one) lose their control, format (bidi, zero-width) and line
    separator characters, emoji joiners kept; then a name starting with `=`, `+`, `-` or `@` gets a single
    quote `'` prepended (OWASP "CSV Injection"), so no name cell is run as a formula: `=HYPERLINK("http://x")`
    becomes `"'=HYPERLINK(""http://x"")"`. User IDs are written exactly as ZIM returns them, so they still match
    ZIM and the app's backend (README explains the risk left for IDs). Lone surrogates become U+FFFD.
    """
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(CSV_HEADER)
    writer.writerows((id_cell(user.user_id), name_cell(user.user_name)) for user in users)
    return buffer.getvalue().encode("utf-8-sig")


class MatchingCsv(NamedTuple):
    """The CSV file of the users matching a filter, and how many rows (users) it has."""

    rows: int
    content: bytes


def matching_csv(users: Sequence[RoomUser], filter_text: str) -> MatchingCsv:
    """`roster_csv` of the users matching `filter_text` (`filter_users`; every user for blank text), in order.

    Module-level, so the export can run it in the CPU worker process (bot/roster/cpu.py): filtering a
    100,000-user room costs more than encoding it, and only the packed roster has to be sent there.
    """
    matches = filter_users(users, filter_text) if filter_text.strip() else users
    return MatchingCsv(len(matches), roster_csv(matches))
