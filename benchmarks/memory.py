"""Memory per cached user: a 100,000-user roster built the way the ZIM client builds it, kept in a snapshot store.

The roster is read with the real `fetch_roster` (both paging chains, `decode_page` on every answer) from a
stub client that serves the sandbox's wire format for the `load-100000` room (bot.dev.zim_sandbox.rooms.generated_users:
IDs like `u000123`, `alice_7`, `x0000000b`; names like "Emma Novak", with a native-script name every 20th
user), with no HTTP and no pacing, then `put` into a `MemorySnapshotStore`. What stays allocated once the
fetch's temporaries are gone is measured two ways, in separate passes:

* tracemalloc: bytes still allocated (Python's view, without allocator overhead) ÷ users;
* RSS: growth of the process's resident set (/proc/self/statm) ÷ users, with allocator overhead.

Then where the bytes go (sys.getsizeof of every distinct object the roster holds), the cost of the same users
in other layouts (built the same way, from freshly decoded pages, measured with tracemalloc), and how much a
full garbage collection (gc.collect()) slows down with the roster held, since objects that stay tracked by the
cyclic GC are visited by every full collection.

With a `redis-server` binary and bot.state available, also Redis: `MEMORY USAGE` of the key that
`RedisSnapshotStore.put` writes, ÷ users, for these names and for high-entropy (random) names, plus the CPU
time of encoding and decoding that value.

Target: ≤ 150 bytes per cached user (in-process store, tracemalloc).

Run: `python -m benchmarks.memory [--users 100000] [--no-redis] [--quick]`. Writes benchmarks/results/memory.json
and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import string
import sys
import time
import tracemalloc
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import (
    RESULTS_DIR,
    full_collection_ms,
    log,
    machine_info,
    machine_line,
    markdown_table,
    publish,
)
from benchmarks._redis import RedisServer
from bot.dev.zim_sandbox import generated_users
from bot.dev.zim_sandbox.wire import encode_user, success_reply
from bot.roster.model import RoomUser, Roster
from bot.state.snapshots import MemorySnapshotStore
from bot.zim import fetch_roster
from bot.zim.models import Page
from bot.zim.wire import FIRST_CURSOR, MAX_LIMIT, decode_page

NAME = "memory"
COMMAND = ".venv/bin/python -m benchmarks.memory"
DEFAULT_USERS = 100_000
TARGET_BYTES_PER_USER = 150.0
GC_SAMPLES = 7
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE


class WireRoom:
    """A room's users as the sandbox's JSON fragments, served page by page like QueryRoomUserList."""

    def __init__(self, users: Sequence[tuple[str, str]]) -> None:
        self.fragments = [encode_user(user_id, name) for user_id, name in users]
        self.reversed = self.fragments[::-1]
        self.requests = 0

    def body(self, mode: int, offset: int) -> bytes:
        fragments = self.reversed if mode == 1 else self.fragments
        end = min(offset + MAX_LIMIT, len(fragments))
        next_flag = "" if end >= len(fragments) else str(end)
        return success_reply(str(10**17 + self.requests), len(fragments), next_flag, fragments[offset:end]).body

    def pages(self) -> list[Page]:
        """Every page in join order, freshly decoded (new str objects), as the client would decode them."""
        return [decode_page(200, self.body(0, offset)) for offset in range(0, len(self.fragments), MAX_LIMIT)]


class StubClient:
    """Just enough of ZimClient for fetch_roster: `query_page` answers from a WireRoom via decode_page."""

    page_limit = MAX_LIMIT

    def __init__(self, room: WireRoom) -> None:
        self.room = room

    async def query_page(self, room_id: str, *, mode: int, cursor: str) -> Page:
        self.room.requests += 1
        offset = 0 if cursor == FIRST_CURSOR else int(cursor)
        return decode_page(200, self.room.body(mode, offset))


async def fetch_and_store(room: WireRoom, room_id: str) -> tuple[MemorySnapshotStore, Roster]:
    store = MemorySnapshotStore()
    roster = await fetch_roster(StubClient(room), room_id)
    await store.put(f"zim:bench:{room_id}", roster)
    return store, roster


def settle() -> None:
    for _ in range(3):
        gc.collect()


# ----- the in-process store ---------------------------------------------------------------------------


def measure_rss(room: WireRoom, room_id: str) -> dict[str, Any]:
    """RSS growth for a first and then a second roster of the same size, both kept.

    The first also pays for the fetch's temporaries (decoded pages, the chains' lists and ID sets), whose
    memory is freed but mostly stays in the process; the second reuses it, so its growth is closer to what
    one more cached roster costs.
    """
    settle()
    before = rss_bytes()
    first = asyncio.run(fetch_and_store(room, room_id))
    settle()
    after_first = rss_bytes()
    second = asyncio.run(fetch_and_store(room, room_id + "-again"))
    settle()
    after_second = rss_bytes()
    users = len(first[1].users)
    del first, second
    settle()
    return {
        "rss_before": before,
        "rss_after_first": after_first,
        "rss_after_second": after_second,
        "first_bytes_per_user": (after_first - before) / users,
        "second_bytes_per_user": (after_second - after_first) / users,
        "users": users,
    }


def measure_traced(room: WireRoom, room_id: str) -> tuple[dict[str, Any], MemorySnapshotStore, Roster]:
    settle()
    tracemalloc.start()
    baseline, _ = tracemalloc.get_traced_memory()
    store, roster = asyncio.run(fetch_and_store(room, room_id))
    settle()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    users = len(roster.users)
    result = {
        "retained_bytes": current - baseline,
        "peak_bytes_during_fetch": peak - baseline,
        "bytes_per_user": (current - baseline) / users,
        "users": users,
        "users_type": type(roster.users).__name__,
    }
    return result, store, roster


def reachable(root: object) -> list[object]:
    """Every distinct object reachable from `root` through gc.get_referents (tuples, lists, slotted objects
    such as a packed sequence), `root` included; type objects, modules and functions are not followed."""
    found: list[object] = []
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type | types.ModuleType | types.FunctionType):
            continue
        seen.add(id(obj))
        found.append(obj)
        stack.extend(gc.get_referents(obj))
    return found


def breakdown(roster: Roster) -> dict[str, Any]:
    """What the roster's users cost, per user, by type of object (sys.getsizeof, as Python counts them)."""
    users = len(roster.users)
    objects = reachable(roster.users)
    sizes: dict[str, int] = {}
    for obj in objects:
        sizes[type(obj).__name__] = sizes.get(type(obj).__name__, 0) + sys.getsizeof(obj)
    names = [user.user_name for user in roster.users]
    ids = [user.user_id for user in roster.users]
    return {
        "users_type": type(roster.users).__name__,
        "per_user_by_type": {name: total / users for name, total in sorted(sizes.items(), key=lambda kv: -kv[1])},
        "total_per_user": sum(sizes.values()) / users,
        "utf8_bytes_per_user": sum(len(value.encode("utf-8", "surrogatepass")) for value in ids + names) / users,
        "avg_user_id_chars": sum(map(len, ids)) / users,
        "avg_user_name_chars": sum(map(len, names)) / users,
        "non_ascii_names_share": sum(1 for name in names if not name.isascii()) / users,
        "distinct_names": len(set(names)),
        "gc_tracked_objects_held": sum(1 for obj in objects if gc.is_tracked(obj)),
        "room_user_gc_tracked_after_full_collection": stays_tracked(RoomUser),
        "plain_tuple_gc_tracked_after_full_collection": stays_tracked(lambda a, b: (a, b)),
    }


def stays_tracked(make: Callable[[str, str], object]) -> bool:
    """Whether a 2-field object of two fresh str is still tracked by the cyclic GC after full collections."""
    value = make(str(random.random()), str(random.random()))
    settle()
    return gc.is_tracked(value)


# ----- other layouts of the same users (for comparison) -----------------------------------------------


def _all_users(pages: list[Page]) -> list[RoomUser]:
    return [user for page in pages for user in page.users]


LAYOUTS: dict[str, Callable[[list[Page]], Any]] = {
    "tuple of RoomUser (NamedTuple)": lambda pages: tuple(_all_users(pages)),
    "tuple of plain (id, name) tuples": lambda pages: tuple((u[0], u[1]) for u in _all_users(pages)),
    "two tuples of str (ids, names)": lambda pages: (
        tuple(u.user_id for u in _all_users(pages)),
        tuple(u.user_name for u in _all_users(pages)),
    ),
    "Roster(users=...) as bot.zim.models builds it today": lambda pages: Roster(
        "load", tuple(_all_users(pages)), 0, 0.0
    ),
}


def measure_layouts(room: WireRoom) -> list[dict[str, Any]]:
    results = []
    users = len(room.fragments)
    gc_without = full_collection_ms(GC_SAMPLES)
    for name, build in LAYOUTS.items():
        settle()
        tracked_before = len(gc.get_objects())
        tracemalloc.start()
        pages = room.pages()
        value = build(pages)
        del pages
        settle()
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        tracked = len(gc.get_objects()) - tracked_before
        gc_with = full_collection_ms(GC_SAMPLES)
        results.append(
            {
                "layout": name,
                "bytes_per_user": current / users,
                "gc_tracked_objects_added": tracked,
                "full_gc_ms_without": gc_without,
                "full_gc_ms_with": gc_with,
                "full_gc_ms_added": gc_with - gc_without,
            }
        )
        log(
            f"layout {name}: {current / users:.1f} B/user, +{tracked} GC-tracked objects, "
            f"full GC {gc_with - gc_without:+.1f} ms"
        )
        del value
    return results


# ----- Redis (optional) ---------------------------------------------------------------------------------


def random_users(n: int, seed: int = 7) -> list[tuple[str, str]]:
    """Unique IDs and high-entropy names of the same lengths as the sandbox's (no repeated first/last names)."""
    rng = random.Random(seed)
    letters = string.ascii_letters
    users = []
    for i in range(1, n + 1):
        first = "".join(rng.choices(letters, k=rng.randint(3, 8)))
        last = "".join(rng.choices(letters, k=rng.randint(4, 9)))
        users.append((f"u{rng.getrandbits(40):012x}{i}", f"{first} {last}"))
    return users


async def redis_case(server: RedisServer, label: str, roster: Roster) -> dict[str, Any]:
    from bot.state.connection import connect
    from bot.state.snapshots import RedisSnapshotStore, decode_roster, encode_roster

    redis = connect(server.url)
    try:
        store = RedisSnapshotStore(redis)
        key = f"bench:{label}"
        await store.put(key, roster)
        usage = await redis.execute_command("MEMORY", "USAGE", store.redis_key(key), "SAMPLES", "0")
        value = encode_roster(roster)
        started = time.process_time()
        encode_roster(roster)
        encode_ms = (time.process_time() - started) * 1000
        started = time.process_time()
        decoded = decode_roster(value)
        decode_ms = (time.process_time() - started) * 1000
        assert decoded.users == roster.users
        await store.discard(key)
    finally:
        await redis.aclose()
    users = len(roster.users)
    return {
        "names": label,
        "users": users,
        "value_bytes": len(value),
        "memory_usage_bytes": int(usage),
        "bytes_per_user": int(usage) / users,
        "encode_cpu_ms": encode_ms,
        "decode_cpu_ms": decode_ms,
    }


def measure_redis(roster: Roster) -> list[dict[str, Any]]:
    entropy = random_users(len(roster.users))
    high = Roster(roster.room_id, tuple(RoomUser(*pair) for pair in entropy), len(entropy), roster.fetched_at)

    async def run() -> list[dict[str, Any]]:
        with RedisServer() as server:
            return [await redis_case(server, "sandbox names", roster), await redis_case(server, "random names", high)]

    return asyncio.run(run())


# ----- report -----------------------------------------------------------------------------------------


def markdown(document: dict[str, Any], machine: dict[str, Any]) -> str:
    """The report, from the results document's sections (tracemalloc, rss, breakdown, target, layouts, redis)."""
    traced, rss, parts = document["tracemalloc"], document["rss"], document["breakdown"]
    users = traced["users"]
    verdict = document["target"]["verdict"]
    by_type = [(f"`{name}` objects", f"{per_user:.1f}") for name, per_user in parts["per_user_by_type"].items()]
    lines = [
        f"# {NAME}",
        "",
        f"{machine_line(machine)}; {users:,} users (the sandbox's load-{users} room), read with fetch_roster from a "
        f"stub client and put in a MemorySnapshotStore; `Roster.users` is a `{traced['users_type']}`. "
        f"Regenerate: `{COMMAND}`.",
        "",
        markdown_table(
            ("measure", "bytes", "bytes per cached user"),
            [
                (
                    "tracemalloc: still allocated after the fetch",
                    f"{traced['retained_bytes']:,}",
                    f"**{traced['bytes_per_user']:.1f}**",
                ),
                (
                    "tracemalloc: peak during the fetch",
                    f"{traced['peak_bytes_during_fetch']:,}",
                    f"{traced['peak_bytes_during_fetch'] / users:.1f}",
                ),
                (
                    "RSS growth, first roster (fetch temporaries included)",
                    f"{rss['rss_after_first'] - rss['rss_before']:,}",
                    f"{rss['first_bytes_per_user']:.1f}",
                ),
                (
                    "RSS growth, second roster",
                    f"{rss['rss_after_second'] - rss['rss_after_first']:,}",
                    f"{rss['second_bytes_per_user']:.1f}",
                ),
            ],
            [":---", "---:", "---:"],
        ),
        "",
        f"Target (≤ {TARGET_BYTES_PER_USER:g} bytes per cached user, tracemalloc): **{verdict}** "
        f"({traced['bytes_per_user'] - TARGET_BYTES_PER_USER:+.1f} bytes per user).",
        "",
        f"Where the bytes go (sys.getsizeof of each distinct object `Roster.users` holds, per user; IDs average "
        f"{parts['avg_user_id_chars']:.1f} characters, names {parts['avg_user_name_chars']:.1f}, "
        f"{parts['non_ascii_names_share']:.0%} of names non-ASCII; their UTF-8 alone is "
        f"{parts['utf8_bytes_per_user']:.1f} bytes per user):",
        "",
        markdown_table(
            ("object", "bytes per user"), [*by_type, ("total", f"{parts['total_per_user']:.1f}")], [":---", "---:"]
        ),
        "",
        f"GC-tracked objects held by `Roster.users`: {parts['gc_tracked_objects_held']:,}. A RoomUser stays tracked "
        f"by the cyclic GC after full collections: {parts['room_user_gc_tracked_after_full_collection']}; a plain "
        f"tuple of two str: {parts['plain_tuple_gc_tracked_after_full_collection']}.",
        "",
        "The same users in other layouts (tracemalloc; full GC = median gc.collect() with that one roster held):",
        "",
        markdown_table(
            ("layout", "bytes per user", "GC-tracked objects added", "full GC ms (+ vs none)"),
            [
                (
                    row["layout"],
                    f"{row['bytes_per_user']:.1f}",
                    f"{row['gc_tracked_objects_added']:,}",
                    f"{row['full_gc_ms_with']:.1f} ({row['full_gc_ms_added']:+.1f})",
                )
                for row in document["layouts"]
            ],
            [":---", "---:", "---:", "---:"],
        ),
        "",
    ]
    if document["redis"]:
        lines += [
            f"Redis ({document['redis_note']}): `MEMORY USAGE` of the key RedisSnapshotStore.put writes:",
            "",
            markdown_table(
                ("names", "value bytes", "MEMORY USAGE bytes", "bytes per user", "encode CPU ms", "decode CPU ms"),
                [
                    (
                        row["names"],
                        f"{row['value_bytes']:,}",
                        f"{row['memory_usage_bytes']:,}",
                        f"{row['bytes_per_user']:.1f}",
                        f"{row['encode_cpu_ms']:.1f}",
                        f"{row['decode_cpu_ms']:.1f}",
                    )
                    for row in document["redis"]
                ],
                [":---", "---:", "---:", "---:", "---:", "---:"],
            ),
            "",
        ]
    else:
        lines += [f"Redis: {document['redis_note']}.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=DEFAULT_USERS, help="room size (default 100000)")
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis measurement")
    parser.add_argument("--quick", action="store_true", help="same as the default (it takes seconds)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if not 1_000 <= args.users <= 1_000_000:
        parser.error("--users must be 1,000-1,000,000")
    room_id = f"load-{args.users}"
    room = WireRoom(generated_users(args.users, seed=args.users))
    rss = measure_rss(room, room_id)  # first, before tracemalloc's own allocations exist
    log(f"RSS: {rss['first_bytes_per_user']:.1f} / {rss['second_bytes_per_user']:.1f} bytes per user")
    traced, store, roster = measure_traced(room, room_id)
    log(f"tracemalloc: {traced['bytes_per_user']:.1f} bytes per user ({room.requests} pages requested in all)")
    parts = breakdown(roster)
    del store
    layouts = measure_layouts(room)
    redis: list[dict[str, Any]] = []
    if args.no_redis:
        redis_note = "skipped (--no-redis)"
    elif not RedisServer.available():
        redis_note = "skipped: no redis-server binary or no bot.state package"
    else:
        redis_note = "measured"
        redis = measure_redis(roster)
    verdict = "PASS" if traced["bytes_per_user"] <= TARGET_BYTES_PER_USER else "MISS"
    machine = machine_info()
    sections = {
        "settings": {"users": args.users},
        "target": {"bytes_per_user": TARGET_BYTES_PER_USER, "measured": traced["bytes_per_user"], "verdict": verdict},
        "tracemalloc": traced,
        "rss": rss,
        "breakdown": parts,
        "layouts": layouts,
        "redis": redis,
        "redis_note": redis_note,
    }
    return publish(args.results_dir, NAME, COMMAND, machine, markdown(sections, machine), sections)


if __name__ == "__main__":
    sys.exit(main())
