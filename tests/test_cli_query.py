"""`python -m bot query` as a user runs it: a real subprocess talking to the sandbox over loopback."""

from __future__ import annotations

import json

import pytest

from bot.dev.zim_sandbox import ZimSandbox

from .conftest import run_cli


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
