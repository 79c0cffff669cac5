"""CPU-heavy work off the loop: big CSVs are encoded in a worker process (its own GIL), the same bytes as
inline; a worker that dies costs that job a thread, not an error."""

from __future__ import annotations

import os
from collections.abc import Sequence

from bot.dev.zim_sandbox.rooms import HOSTILE_NAMES, generated_users
from bot.roster.cpu import CPU_PROCESS_USERS, off_process
from bot.roster.model import RoomUser, Roster
from bot.roster.view import filter_users
from bot.slack.csv_file import MatchingCsv, matching_csv
from bot.slack.export import roster_csv


def die_unless_in(pid: int) -> str:
    """Kills any process but `pid` (the worker), so the job can only finish in the parent's thread."""
    if os.getpid() != pid:
        os._exit(1)
    return "ran in the parent"


async def test_a_big_csv_is_encoded_in_another_process_byte_for_byte():
    users = [RoomUser(*user) for user in generated_users(CPU_PROCESS_USERS)]
    users += [RoomUser(f"hostile-{n}", name) for n, name in enumerate(HOSTILE_NAMES)]
    roster = Roster(room_id="big", users=users, reported_count=len(users), fetched_at=1.0)
    for ordered in (roster.users, roster.ordered(newest_first=True)):
        assert await off_process(len(ordered), roster_csv, ordered) == roster_csv(ordered)
    assert await off_process(CPU_PROCESS_USERS, os.getpid) != os.getpid()
    assert await off_process(CPU_PROCESS_USERS - 1, os.getpid) == os.getpid()  # smaller: not worth a process


def matching_csv_outside(parent: int, users: Sequence[RoomUser], filter_text: str) -> MatchingCsv:
    """`matching_csv`, refused in `parent`: the job must filter and encode in the worker process."""
    if os.getpid() == parent:
        raise AssertionError("the filtered export ran in the app's process")
    return matching_csv(users, filter_text)


async def test_a_filtered_csv_is_filtered_and_encoded_in_the_worker_from_the_packed_roster():
    users = [RoomUser(*user) for user in generated_users(CPU_PROCESS_USERS)]
    users += [RoomUser(f"hostile-{n}", name) for n, name in enumerate(HOSTILE_NAMES)]
    roster = Roster(room_id="big", users=users, reported_count=len(users), fetched_at=1.0)
    for ordered in (roster.users, roster.ordered(newest_first=True)):
        for filter_text in ("ann", "  LI ", "nobody-has-this", ""):
            matches = filter_users(ordered, filter_text)
            shipped = await off_process(len(ordered), matching_csv_outside, os.getpid(), ordered, filter_text)
            assert shipped == (len(matches), roster_csv(matches))
    assert 0 < len(filter_users(roster.users, "ann")) < len(users)


async def test_a_dead_worker_costs_the_job_a_thread_and_the_next_job_a_new_worker(caplog):
    parent = os.getpid()
    assert await off_process(CPU_PROCESS_USERS, die_unless_in, parent) == "ran in the parent"
    assert "worker process died" in caplog.text
    assert await off_process(CPU_PROCESS_USERS, os.getpid) != parent
