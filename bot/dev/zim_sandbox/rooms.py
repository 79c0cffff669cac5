"""Sandbox rooms: who is in each room, in join order, and the demo rooms every sandbox starts with.

Users are generated deterministically (seeded `random.Random`) so a test or benchmark sees the same names on
every run, and cheaply (bulk `choices`, one f-string per user) so a 100,000-user room builds in well under
0.3 s. Names are deliberately varied: accents, non-Latin scripts, apostrophes, plus a `demo-hostile` room of
names that break naive Slack formatting.
"""

from __future__ import annotations

import functools
import random
import re
import unicodedata
from collections.abc import Iterable
from typing import Literal, get_args

from bot.dev.zim_sandbox.wire import encode_user

RoomState = Literal["ok", "unavailable", "destroying"]
ROOM_STATES: tuple[str, ...] = get_args(RoomState)

MAX_LOAD_USERS = 1_000_000
_LOAD_ROOM = re.compile(r"load-([0-9]{1,7})")

FIRST_NAMES = (
    "Alex", "Sam", "Jordan", "Taylor", "Morgan", "Priya", "Arjun", "Mei", "Wei", "Yuki",
    "Haruto", "Sofia", "Mateo", "Lucía", "José", "Zoë", "Chloé", "Björn", "Søren", "Łukasz",
    "Oluwaseun", "Amara", "Kwame", "Fatima", "Omar", "Leila", "Dmitri", "Olga", "Noa", "Ava",
    "Liam", "Emma", "Noah", "Olivia", "Ethan", "Siobhán", "Ana", "Kai", "Thảo", "Ingrid",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Garcia", "Müller", "Nguyen", "Kim", "Patel", "Okafor", "Rossi", "Novak",
    "Kowalski", "Silva", "Santos", "Ivanova", "Cohen", "Haddad", "Tanaka", "Sato", "Chen", "Li",
    "O'Brien", "Fernández", "Larsen", "Andersson", "Dubois", "Schmidt", "Mensah", "Singh", "Khan", "Yılmaz",
)  # fmt: skip
# Full names in their own scripts, used for one user in twenty: real rooms are not all Latin.
NATIVE_NAMES = (
    "李娜", "王伟", "佐藤 花子", "김민준", "Сергей Иванов", "Αλέξης Παπαδόπουλος",
    "محمد علي", "דנה לוי", "अनन्या शर्मा", "Nguyễn Thị Thảo",
)  # fmt: skip

# ASCII handles for handle-style user IDs ("lucia_42"), computed once rather than per user.
_HANDLES = {
    name: unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower() or "user"
    for name in FIRST_NAMES
}

# Exactly 64 characters: the longest UserName one source allows (64 bytes in ASCII).
LONG_NAME = "Maximilian Bartholomew Fitzgerald-Montgomery of Westminster, Esq"
# Names that must reach Slack as inert text: mentions, links, markup, bidi and joiners, odd whitespace.
HOSTILE_NAMES = (
    "<!channel>", "<!here>", "<!everyone>", "<@U123ABC>", "<#C0123ABCD>", "<!subteam^S123|team>",
    "<https://evil.example|click me>", "https://evil.example/login", "a & b < c > d", "&lt;!channel&gt;",
    "*bold* _it_ ~s~ `code`", "```block```", "> quoted", "@channel", "@here hello",
    "🎉 Party Pat", "👩🏽‍💻 Dev", "🏳️‍🌈", "مريم", "שלום עולם", "עברית and English",
    "\u202eevil override", "李小龙", "山田 太郎", "김지수",
    LONG_NAME,
    "", "   ", "tab\tname", "line\nbreak", 'quote "q"', "back\\slash", "zero\u200bwidth",
    "<script>alert(1)</script>", "Robert'); DROP TABLE users;--", "%s %d {0}",
)  # fmt: skip
HOSTILE_ROOM_SIZE = 40


def generated_users(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """`n` deterministic (user_id, user_name) pairs with unique IDs in mixed but realistic styles."""
    rng = random.Random(seed)
    firsts = rng.choices(FIRST_NAMES, k=n)
    lasts = rng.choices(LAST_NAMES, k=n)
    natives = rng.choices(NATIVE_NAMES, k=n // 20 + 1)
    users: list[tuple[str, str]] = []
    append = users.append
    for i, first, last in zip(range(1, n + 1), firsts, lasts, strict=True):
        name = natives[i // 20] if i % 20 == 0 else f"{first} {last}"
        # Mostly zero-padded IDs; some handle- and hex-style ones so clients assume no format.
        # Each style is distinct ('u' + digits, '_' handles, 'x' + hex) and embeds i, so IDs never collide.
        if i % 7 == 0:
            user_id = f"{_HANDLES[first]}_{i}"
        elif i % 11 == 0:
            user_id = f"x{i:08x}"
        else:
            user_id = f"u{i:06d}"
        append((user_id, name))
    return users


@functools.cache
def _seed_users(n: int, seed: int) -> tuple[tuple[str, str], ...]:
    # Demo rooms are rebuilt for every sandbox (tests start dozens); generate each roster once per process.
    return tuple(generated_users(n, seed))


def hostile_users() -> list[tuple[str, str]]:
    """The `demo-hostile` roster: every hostile name once, padded with ordinary users."""
    users = [(f"h{i:03d}", name) for i, name in enumerate(HOSTILE_NAMES, start=1)]
    padding = generated_users(HOSTILE_ROOM_SIZE, seed=404)[: max(0, HOSTILE_ROOM_SIZE - len(users))]
    return users + padding


def page_bounds(offset: int, limit: int, total: int) -> int:
    """The end of the page [offset, end) of a list of `total`; a cursor past the end gives an empty page."""
    return max(offset, min(offset + limit, total))


class SandboxRoom:
    """A room's state and members in login order (oldest first); the JSON encoding of its members is cached.

    The order is login time, as ZIM's (zim-api.md §5b): `join` appends, `leave` removes (everyone after
    moves one place toward the start), `reconnect` removes and appends (a new login time puts the user at
    the newest end), `destroy` makes later pages 660300008 ("destroying") or 660300001 ("gone"). Cursors
    are offsets in each Mode's own order, the harsher reading of §5b. With `record_history`, `history`
    holds the membership (IDs) after every change, starting with the initial one.

    After mutating the `users` list in place without changing its length, call `invalidate()`.
    """

    def __init__(
        self,
        room_id: str,
        users: Iterable[tuple[str, str]] = (),
        state: RoomState = "ok",
        *,
        record_history: bool = False,
    ) -> None:
        self.room_id = room_id
        self.state: RoomState = state
        self.gone = False  # destroyed for good: the sandbox answers 660300001
        self._users = list(users)
        self._encoded: dict[bool, list[bytes]] = {}
        self._encoded_len = -1
        self._names: dict[str, str] | None = None
        self._names_len = -1
        self.history: list[tuple[str, ...]] | None = None
        if record_history:
            self.history = [tuple(uid for uid, _ in self._users)]

    @property
    def users(self) -> list[tuple[str, str]]:
        return self._users

    @users.setter
    def users(self, users: list[tuple[str, str]]) -> None:
        self._users = list(users)
        self.invalidate()

    def __len__(self) -> int:
        return len(self._users)

    def __repr__(self) -> str:
        return f"SandboxRoom({self.room_id!r}, {len(self._users)} users, state={self.state!r})"

    def join(self, user_id: str, user_name: str) -> bool:
        """Append a user at the newest end; False if already present (ZIM keeps one entry)."""
        if any(uid == user_id for uid, _ in self._users):
            return False
        self._users.append((user_id, user_name))
        self._changed()
        return True

    def leave(self, user: str | int) -> str | None:
        """Remove a user (by ID, or by index in login order, -1 the newest); the ID removed, or None if
        absent. Later users shift one place toward the start."""
        index = self._index(user)
        if index is None:
            return None
        user_id = self._users.pop(index)[0]
        self._changed()
        return user_id

    def reconnect(self, user: str | int) -> str | None:
        """Log a user in again: a new login time moves them to the newest end. The ID, or None if absent."""
        index = self._index(user)
        if index is None:
            return None
        member = self._users.pop(index)
        self._users.append(member)
        self._changed()
        return member[0]

    def destroy(self, state: Literal["destroying", "gone"] = "destroying") -> None:
        """Start destroying the room: later pages are 660300008, or 660300001 once it is `gone`."""
        self.state = "destroying"
        self.gone = state == "gone"
        self._changed()

    def page(self, mode: int, offset: int, limit: int) -> tuple[list[tuple[str, str]], int, int]:
        """The users of the page at `offset` in Mode `mode`'s order, the Count, and the page's end offset."""
        total = len(self._users)
        end = page_bounds(offset, limit, total)
        if mode == 1:
            return [self._users[total - 1 - i] for i in range(offset, end)], total, end
        return self._users[offset:end], total, end

    def _index(self, user: str | int) -> int | None:
        if isinstance(user, int):
            size = len(self._users)
            return user % size if -size <= user < size else None
        for index, (uid, _) in enumerate(self._users):
            if uid == user:
                return index
        return None

    def _changed(self) -> None:
        self.invalidate()  # a reconnect keeps the length, so the encoding cache must be told
        if self.history is not None:
            self.history.append(tuple(uid for uid, _ in self._users))

    def invalidate(self) -> None:
        """Forget the cached encoding (and name index) after the member list changed."""
        self._encoded.clear()
        self._encoded_len = -1
        self._names = None
        self._names_len = -1

    def name_of(self, user_id: str) -> str | None:
        """The user's name if they are in the room, else None; the index is built once per membership change."""
        if self._names is None or self._names_len != len(self._users):
            self._names = {}
            for uid, name in self._users:
                self._names.setdefault(uid, name)
            self._names_len = len(self._users)
        return self._names.get(user_id)

    def encoded(self, *, reverse: bool) -> list[bytes]:
        """Members as JSON fragments, in join order or reversed; built once per membership change."""
        if self._encoded_len != len(self._users):  # also catches in-place appends/removals
            self.invalidate()
            self._encoded_len = len(self._users)
        cached = self._encoded.get(reverse)
        if cached is None:
            if reverse:
                cached = self.encoded(reverse=False)[::-1]
            else:
                cached = [encode_user(uid, name) for uid, name in self._users]
            self._encoded[reverse] = cached
        return cached


def load_room(room_id: str) -> SandboxRoom | None:
    """The on-demand `load-<N>` room (N <= 1,000,000 generated users), or None for any other ID."""
    match = _LOAD_ROOM.fullmatch(room_id)
    if match is None or int(match.group(1)) > MAX_LOAD_USERS:
        return None
    size = int(match.group(1))
    return SandboxRoom(room_id, generated_users(size, seed=size))


def seed_rooms() -> dict[str, SandboxRoom]:
    """A fresh set of demo rooms covering the page boundaries (499/500/501), churn and error states."""
    sized = {
        "demo-1": 1,
        "demo-12": 12,
        "demo-120": 120,
        "demo-499": 499,
        "demo-500": 500,
        "demo-501": 501,
        "demo-1234": 1234,
        "demo-10k": 10_000,
        "room#1+a&b": 30,
    }
    rooms = {room_id: SandboxRoom(room_id, _seed_users(n, n)) for room_id, n in sized.items()}
    rooms["demo-hostile"] = SandboxRoom("demo-hostile", hostile_users())
    rooms["demo-empty"] = SandboxRoom("demo-empty", state="destroying")
    rooms["demo-broken"] = SandboxRoom("demo-broken", _seed_users(5, 5), state="unavailable")
    return rooms
