"""`python -m bot query` as a user runs it: a real subprocess talking to the sandbox over loopback."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import signal
import sys

import pytest

from bot.dev.zim_sandbox import ZimSandbox
from bot.roster.model import RoomUser
from bot.roster.view import filter_users
from bot.slack.export import roster_csv

from .conftest import run_cli, run_cli_bytes


async def test_json_output_lists_every_user_in_join_order(sandbox: ZimSandbox, sandbox_env):
    code, out, err = await run_cli("query", "demo-1234", "--json", env=sandbox_env)
    assert (code, err) == (0, "")
    payload = json.loads(out)
    assert payload["room_id"] == "demo-1234"
    assert payload["count"] == 1234
    assert [(u["user_id"], u["user_name"]) for u in payload["users"]] == sandbox.rooms["demo-1234"].users


async def test_reverse_lists_most_recent_first_and_special_room_ids_work(sandbox: ZimSandbox, sandbox_env):
    code, out, _ = await run_cli("query", "room#1+a&b", "--json", "--reverse", env=sandbox_env)
    assert code == 0
    payload = json.loads(out)
    assert payload["room_id"] == "room#1+a&b"
    assert [(u["user_id"], u["user_name"]) for u in payload["users"]] == sandbox.rooms["room#1+a&b"].users[::-1]


async def test_table_output_has_the_count_and_neutralises_control_characters(sandbox: ZimSandbox, sandbox_env):
    sandbox.add_room("ansi", [("u1", "Evil\x1b[2J\nName"), ("u2", "Ann")])
    code, out, _ = await run_cli("query", "ansi", env=sandbox_env)
    assert code == 0
    assert out.splitlines()[0] == "Room ansi: 2 users, in join order."
    assert "\x1b" not in out
    assert len(out.splitlines()) == 4  # headline, column header, two users: no injected line


async def test_empty_room_being_destroyed(sandbox_env):
    code, out, _ = await run_cli("query", "demo-empty", "--json", env=sandbox_env)
    assert code == 0
    assert json.loads(out) == {"room_id": "demo-empty", "complete": True, "reported_count": 0, "count": 0, "users": []}


async def test_invalid_room_id_is_refused_without_any_request(sandbox: ZimSandbox, sandbox_env):
    code, out, err = await run_cli("query", "bad room", env=sandbox_env)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "space" in err
    assert sandbox.stats.requests == 0


async def test_missing_room_is_one_sentence_with_the_request_id(sandbox_env):
    code, _, err = await run_cli("query", "nope", env=sandbox_env)
    assert code == 1
    assert "does not exist" in err
    assert "RequestId" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("change", "variable"),
    [({"ZEGO_APP_ID": ""}, "ZEGO_APP_ID"), ({"ZEGO_SERVER_SECRET": "oops-secret-value"}, "ZEGO_SERVER_SECRET")],
)
async def test_bad_settings_stop_with_one_sentence_naming_the_variable(sandbox_env, change, variable):
    code, _, err = await run_cli("query", "demo-1", env={**sandbox_env, **change})
    assert code == 2
    assert variable in err
    assert "oops-secret-value" not in err
    assert err.count("\n") == 1


async def test_wrong_secret_says_which_setting_to_check(sandbox_env):
    code, _, err = await run_cli("query", "demo-1", env={**sandbox_env, "ZEGO_SERVER_SECRET": "ab" * 16})
    assert code == 1
    assert "ZEGO_SERVER_SECRET" in err
    assert "ab" * 16 not in err


# -- the first hour: filter, -r anywhere, --app, --csv, abbreviations, progress, the banner, .env ------------


def listed(out: str) -> list[tuple[str, str]]:
    return [(u["user_id"], u["user_name"]) for u in json.loads(out)["users"]]


@pytest.mark.parametrize(
    "args",
    [
        ("query", "-r", "demo-120", "--json"),
        ("query", "demo-120", "--json", "-r"),
        ("query", "--reverse", "--app", "DEFAULT", "demo-120", "--json"),
    ],
)
async def test_reverse_and_app_anywhere_on_the_line(sandbox: ZimSandbox, sandbox_env, args):
    code, out, err = await run_cli(*args, env=sandbox_env)
    assert (code, err) == (0, "")
    assert listed(out) == sandbox.rooms["demo-120"].users[::-1]


async def test_filter_matches_as_in_slack(sandbox: ZimSandbox, sandbox_env):
    code, out, err = await run_cli("query", "demo-1234", "LI", "-r", "--json", env=sandbox_env)
    assert (code, err) == (0, "")
    users = [RoomUser(*user) for user in sandbox.rooms["demo-1234"].users[::-1]]
    expected = [(u.user_id, u.user_name) for u in filter_users(users, "LI")]
    assert 0 < len(expected) < 1234
    assert listed(out) == expected
    payload = json.loads(out)
    assert (payload["count"], payload["filter"], payload["matches"]) == (1234, "LI", len(expected))
    code, out, _ = await run_cli("query", "demo-1234", "li", env=sandbox_env)
    assert code == 0
    assert out.splitlines()[0] == f"Room demo-1234: {len(expected):,} of 1,234 users match “li”, in join order."


async def test_a_filter_that_starts_with_a_dash_follows_two_dashes(sandbox: ZimSandbox, sandbox_env):
    sandbox.add_room("dash", [("u-5", "Ann"), ("u6", "-5 Bob"), ("u7", "Cy")])
    code, out, err = await run_cli("query", "dash", "--json", "--", "-5", env=sandbox_env)
    assert (code, err) == (0, "")
    assert listed(out) == [("u-5", "Ann"), ("u6", "-5 Bob")]


@pytest.mark.parametrize(("args", "word"), [(("--revers",), "--revers"), (("--cs",), "--cs"), (("-R",), "-R")])
async def test_abbreviations_and_unknown_options_are_refused(sandbox: ZimSandbox, sandbox_env, args, word):
    code, out, err = await run_cli("query", "demo-120", *args, env=sandbox_env)
    assert code == 2
    assert out == ""
    assert err.startswith("usage: python -m bot query")
    assert word in err
    assert sandbox.stats.requests == 0


async def test_csv_output_is_the_export_format(sandbox: ZimSandbox, sandbox_env):
    code, out, err = await run_cli_bytes("query", "demo-hostile", "--csv", env=sandbox_env)
    assert (code, err) == (0, b"")
    assert out.startswith(b"\xef\xbb\xbfuser_id,user_name\r\n")
    assert out == roster_csv(RoomUser(*user) for user in sandbox.rooms["demo-hostile"].users)


async def test_filtered_csv_has_only_the_matching_rows(sandbox: ZimSandbox, sandbox_env):
    code, out, _ = await run_cli_bytes("query", "demo-1234", "li", "--csv", env=sandbox_env)
    assert code == 0
    users = [RoomUser(*user) for user in sandbox.rooms["demo-1234"].users]
    assert out == roster_csv(filter_users(users, "li"))


async def test_csv_and_json_are_one_choice(sandbox_env):
    code, _, err = await run_cli("query", "demo-12", "--csv", "--json", env=sandbox_env)
    assert code == 2
    assert "not allowed with argument" in err


async def test_unknown_profile_is_one_sentence_and_exit_2(sandbox: ZimSandbox, sandbox_env):
    code, out, err = await run_cli("query", "demo-12", "--app", "nope", env=sandbox_env)
    assert (code, out) == (2, "")
    assert err == "roomusers: there is no app profile nope; configured: default (set ZEGO_PROFILES).\n"
    assert sandbox.stats.requests == 0


async def test_overlong_filter_is_refused_before_any_request(sandbox: ZimSandbox, sandbox_env):
    code, _, err = await run_cli("query", "demo-12", "x" * 257, env=sandbox_env)
    assert code == 2
    assert "257 characters long; it can match nothing" in err
    assert sandbox.stats.requests == 0


async def test_progress_bar_only_on_a_terminal(sandbox_env):
    leader, follower = pty.openpty()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "query", "load-20000", "--json",
            env=sandbox_env, stdout=asyncio.subprocess.PIPE, stderr=follower,
        )  # fmt: skip
    finally:
        os.close(follower)
    drawn = bytearray()

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the other end closed: the process is gone
                return
            if not chunk:
                return
            drawn.extend(chunk)

    reader = asyncio.get_running_loop().run_in_executor(None, read_terminal)
    stdout, _ = await asyncio.wait_for(process.communicate(), 60)
    await asyncio.wait_for(reader, 10)
    os.close(leader)
    assert process.returncode == 0
    assert json.loads(stdout)["count"] == 20000  # stdout is untouched by the bar
    assert b"Reading room load-20000" in drawn
    assert b"20000/20000" in drawn
    assert b"\r" in drawn


async def test_sandbox_banner_can_be_pasted_into_a_shell(sandbox_env, tmp_path):
    env = {k: v for k, v in sandbox_env.items() if not k.startswith("ZEGO_")}
    sandbox = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "sandbox", "--port", "0", env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert sandbox.stdout is not None
        exports: list[str] = []
        while len(exports) < 3:
            line = (await asyncio.wait_for(sandbox.stdout.readline(), 30)).decode()
            assert line, "the sandbox ended before printing its settings"
            if line.startswith("export "):
                exports.append(line.strip())
        script = "\n".join([*exports, f"exec {sys.executable} -m bot query demo-12"])
        shell = await asyncio.create_subprocess_exec(
            "sh", "-c", script, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(shell.communicate(), 60)
        assert (shell.returncode, err) == (0, b"")
        assert out.decode().startswith("Room demo-12: 12 users")
        # The same lines as a .env file in the working directory work too; elsewhere there is nothing to read.
        (tmp_path / ".env").write_text("\n".join(exports) + "\n")
        code, out2, _ = await run_cli("query", "demo-12", env=env, cwd=tmp_path)
        assert (code, out2) == (0, out.decode())
        (tmp_path / "empty").mkdir()
        code, _, err2 = await run_cli("query", "demo-12", env=env, cwd=tmp_path / "empty")
        assert code == 2
        assert "ZEGO_APP_ID is not set" in err2
    finally:
        sandbox.send_signal(signal.SIGINT)
        await asyncio.wait_for(sandbox.wait(), 30)


@pytest.mark.parametrize("command", [("-m", "bot", "sandbox"), ("-m", "bot.dev.zim_sandbox")])
async def test_latency_must_be_a_number_of_milliseconds(command):
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command, "--latency-ms", "-5", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    text = err.decode()
    assert "argument --latency-ms: must be a number of milliseconds, 0 or more (such as 100)" in text
    assert "latency_ms" not in text
    assert "Traceback" not in text


async def test_help_uses_the_program_name():
    script = "import sys; sys.argv[0] = '/x/bin/roomusers'; from bot.cli import main; main(['--help'])"
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert out.decode().startswith("usage: roomusers ")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--help", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert out.decode().startswith("usage: python -m bot ")
    assert "query" in out.decode()


async def test_a_profiles_bad_base_url_names_its_own_variable(sandbox: ZimSandbox, sandbox_env):
    env = {
        **sandbox_env,
        "ZEGO_PROFILES": "eu",
        "ZEGO_EU_APP_ID": sandbox_env["ZEGO_APP_ID"],
        "ZEGO_EU_SERVER_SECRET": sandbox_env["ZEGO_SERVER_SECRET"],
        "ZEGO_EU_API_BASE_URL": f"{sandbox.base_url}/nope",  # the sandbox answers 404 with text, not JSON
    }
    code, _, err = await run_cli("query", "demo-12", "--app", "EU", env=env)
    assert code == 1
    assert "ZEGO_EU_API_BASE_URL" in err
    assert " ZEGO_API_BASE_URL" not in err
    code, out, _ = await run_cli("query", "demo-12", env=env)  # the default profile is unaffected
    assert (code, out.splitlines()[0]) == (0, "Room demo-12: 12 users, in join order.")


# -- completeness: exit 3 for an incomplete list, streamed JSON --------------------------------------------


async def test_query_json_incomplete_exits_3(sandbox: ZimSandbox, sandbox_env):
    """A reconnect right after page 1: the list is printed, says it is incomplete, and the exit status is 3."""
    sandbox.add_room("moving", 3000)
    sandbox.schedule("moving", after=(0, 1), ops=[{"op": "reconnect", "index": 0}])
    code, out, err = await run_cli("query", "moving", "--json", env=sandbox_env)
    assert code == 3
    payload = json.loads(out)
    assert list(payload) == ["room_id", "complete", "reported_count", "count", "problem", "users"]
    assert payload["complete"] is False
    assert payload["reported_count"] == 3000
    assert payload["count"] == len(payload["users"])
    assert payload["problem"] == f"the room changed while it was read: {payload['count']:,} of 3,000 users"
    assert err == f"roomusers: incomplete: {payload['problem']}\n"


async def test_query_table_incomplete_says_so_and_exits_3(sandbox: ZimSandbox, sandbox_env):
    sandbox.add_room("doomed", 3000)
    sandbox.schedule("doomed", after=(0, 2), ops=[{"op": "destroy", "state": "destroying"}])
    code, out, err = await run_cli("query", "doomed", env=sandbox_env)
    assert code == 3
    lines = out.splitlines()
    assert lines[1].startswith("Incomplete: the room is being destroyed: ")
    assert lines[1].endswith(" of 3,000 read")
    assert "incomplete" in err


async def test_query_json_streams_valid_json_with_every_key(sandbox: ZimSandbox, sandbox_env):
    sandbox.add_room("streamed", 3000)
    code, out, err = await run_cli("query", "streamed", "--json", env=sandbox_env)
    assert (code, err) == (0, "")  # and no progress bar: stderr is a pipe
    payload = json.loads(out)
    assert list(payload) == ["room_id", "complete", "reported_count", "count", "users"]
    assert (payload["complete"], payload["reported_count"], payload["count"]) == (True, 3000, 3000)
    assert [(u["user_id"], u["user_name"]) for u in payload["users"]] == sandbox.rooms["streamed"].users


async def test_reverse_starts_from_the_newest_end(sandbox: ZimSandbox, sandbox_env):
    sandbox.add_room("rev", 1200)
    code, out, _ = await run_cli("query", "rev", "--json", "--reverse", env=sandbox_env)
    assert code == 0
    assert sandbox.events("rev")[0][:2] == ("page", 1)
    assert [u["user_id"] for u in json.loads(out)["users"]] == [uid for uid, _ in sandbox.rooms["rev"].users[::-1]]


async def test_query_csv_incomplete_exits_3_with_one_sentence(sandbox: ZimSandbox, sandbox_env):
    sandbox.add_room("moving-csv", 3000)
    sandbox.schedule("moving-csv", after=(0, 1), ops=[{"op": "reconnect", "index": 0}])
    code, out, err = await run_cli_bytes("query", "moving-csv", "--csv", env=sandbox_env)
    assert code == 3
    assert out.startswith(b"\xef\xbb\xbfuser_id,user_name\r\n")
    text = err.decode()
    assert text.startswith("roomusers: incomplete: the room changed while it was read: ")
    assert text.count("\n") == 1


async def test_filtered_json_incomplete_keeps_filter_and_completeness(sandbox: ZimSandbox, sandbox_env):
    sandbox.add_room("moving-li", 3000)
    sandbox.schedule("moving-li", after=(0, 1), ops=[{"op": "reconnect", "index": 0}])
    code, out, _ = await run_cli("query", "moving-li", "1", "--json", env=sandbox_env)
    assert code == 3
    payload = json.loads(out)
    assert list(payload) == [
        "room_id", "complete", "reported_count", "count", "problem", "filter", "matches", "users",
    ]  # fmt: skip
    assert (payload["complete"], payload["filter"]) == (False, "1")
    assert payload["matches"] == len(payload["users"]) <= payload["count"]
