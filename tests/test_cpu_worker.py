"""CPU-heavy work off the loop: big CSVs are encoded in a worker process (its own GIL), the same bytes as
inline; a worker that dies costs that job a thread, not an error."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bot.dev.zim_sandbox.rooms import HOSTILE_NAMES, generated_users
from bot.roster.cpu import CPU_PROCESS_USERS, off_process, stop_cpu_worker
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


def hang_unless_in(parent: int, started: str) -> str:
    """In the worker: say so in the file `started`, then hang (a job that never ends); in `parent`: return."""
    if os.getpid() == parent:
        return "ran in the parent"
    Path(started).write_text(str(os.getpid()))
    time.sleep(3600)
    return "never"


async def test_stopping_the_worker_ends_a_hung_job_and_queued_ones_run_in_the_thread(tmp_path):
    parent, started = os.getpid(), tmp_path / "started"
    hung = asyncio.create_task(off_process(CPU_PROCESS_USERS, hang_unless_in, parent, str(started)))
    queued = asyncio.create_task(off_process(CPU_PROCESS_USERS, os.getpid))
    async with asyncio.timeout(30):
        while not started.exists():  # noqa: ASYNC110  # until the worker runs the hung job
            await asyncio.sleep(0.02)
    worker = int(started.read_text())
    os.kill(worker, signal.SIGTERM)  # as a stop of the whole process group would: the worker ignores it
    await stop_cpu_worker(wait=0.2)
    assert await hung == "ran in the parent"
    assert await queued == parent
    try:
        os.kill(worker, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError("the worker process still runs after stop_cpu_worker")
    assert await off_process(CPU_PROCESS_USERS, os.getpid) not in (parent, worker)  # a new worker


async def test_the_worker_ignores_sigterm():
    worker = await off_process(CPU_PROCESS_USERS, os.getpid)
    assert worker != os.getpid()
    os.kill(worker, signal.SIGTERM)
    assert await off_process(CPU_PROCESS_USERS, os.getpid) == worker
    await stop_cpu_worker()


# Starts the worker in a process of its own, prints the worker's pid, then waits to be killed.
KILLED_APP = """
import asyncio, os, sys, time
from bot.roster.cpu import CPU_PROCESS_USERS, off_process
print(asyncio.run(off_process(CPU_PROCESS_USERS, os.getpid)), flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_the_worker_exits_when_its_app_is_killed_outright():
    # A SIGKILLed app can't stop its worker; left behind, the worker would hold the app's stderr open for ever.
    app = await asyncio.create_subprocess_exec(
        sys.executable, "-c", KILLED_APP, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert app.stdout is not None and app.stderr is not None
        worker = int(await asyncio.wait_for(app.stdout.readline(), 60))
        assert worker != app.pid and _alive(worker)
        app.kill()
        await app.wait()
        # stderr reaches its end only once every process holding it (the worker too) has exited.
        await asyncio.wait_for(app.stderr.read(), 20)
        deadline = time.monotonic() + 10
        while _alive(worker):  # reaped by init a moment after it exits
            assert time.monotonic() < deadline, "the worker outlived its app"
            await asyncio.sleep(0.05)
    finally:
        if app.returncode is None:
            app.kill()
            await app.wait()
