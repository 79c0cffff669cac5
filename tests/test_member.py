"""`--member`: which of up to 10 users are in a room, in one QueryRoomMembers round trip whatever its size — in
Slack (command and mention, through the sandbox and the strict stand-in) and `python -m bot query ROOM --member`."""

from __future__ import annotations

import json

import pytest

from bot.dev.local_stack import LocalStack
from bot.dev.zim_sandbox import ZimSandbox

from .conftest import run_cli
from .slack_helpers import all_text, answer_to

HOSTILE = "<!here> `x` *bold*"


@pytest.mark.both_modes
async def test_one_request_for_a_100k_room_says_who_is_in_with_names(local: LocalStack):
    room = local.sandbox.find_room("load-100000")
    assert room is not None
    (first_id, first_name), (last_id, last_name) = room.users[0], room.users[-1]
    local.sandbox.reset_stats()
    answer = await answer_to(local, f"load-100000 --member {first_id},nobody-here --member={last_id}")
    assert local.sandbox.stats.requests == 1 and local.sandbox.stats.members_requests == 1
    text = all_text(answer)
    assert "*In the room (2)*" in text and "*Not in the room (1)*" in text
    assert f"`{first_id}` — {first_name}" in text and f"`{last_id}` — {last_name}" in text
    assert "`nobody-here`" in text
    assert "ZIM RequestId" in text
    await local.until_idle()


async def test_names_are_escaped_and_a_mention_answers_in_its_thread(local: LocalStack):
    local.sandbox.add_room("guarded", [("u1", HOSTILE), ("u2", "Bob")])
    mention = await local.slack.mention("guarded --member u1")
    said = await local.slack.next_message()
    assert said.thread_ts == mention.sent["event"]["ts"] and not said.ephemeral
    text = all_text(said)
    assert "*In the room (1)*" in text and "<!here>" not in text and "&lt;!here&gt;" in text
    await local.until_idle()


@pytest.mark.parametrize(
    ("ids", "sentence"),
    [
        (",".join(f"u{i}" for i in range(11)), "at most 10 user IDs at a time; 11 were given"),
        ("x" * 33, "is 33 bytes long; ZIM allows at most 32"),
        ("", "`--member` needs user IDs"),
    ],
)
async def test_bad_user_ids_are_refused_in_the_ack_before_any_request(local: LocalStack, ids: str, sentence: str):
    local.sandbox.reset_stats()
    response = await local.slack.send_command(f"demo-120 --member {ids}".strip())
    assert response.acked_in_time
    refusal = await local.slack.next_message()
    assert refusal.origin == "ack" and sentence in all_text(refusal)
    await local.until_idle()
    assert local.slack.unread() == []
    assert local.sandbox.stats.requests == 0


async def test_a_room_that_does_not_exist_has_nobody_in_it(local: LocalStack):
    """660300001 counts as 0 users, like a room being destroyed (660300008): every user asked is not in it."""
    answer = await answer_to(local, "no-such-room --member u1,u2")
    text = all_text(answer)
    assert "*In the room (0)*" in text and "*Not in the room (2)*" in text
    assert "the room does not exist: nobody listed is in it" in text
    await local.until_idle()


async def test_query_member_json_is_exactly_the_documented_shape(sandbox: ZimSandbox, sandbox_env):
    sandbox.add_room("lobby", [("u1", "Ann"), ("u2", "Bob"), ("u3", "李娜")])
    code, out, err = await run_cli("query", "lobby", "--member", "u3,u9", "--member", "u1", "--json", env=sandbox_env)
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "room_id": "lobby",
        "in": [{"user_id": "u3", "user_name": "李娜"}, {"user_id": "u1", "user_name": "Ann"}],
        "not_in": ["u9"],
    }
    assert sandbox.stats.members_requests == 1 and sandbox.stats.requests == 1
    code, out, _ = await run_cli("query", "lobby", "--member", "u2,u9", env=sandbox_env)
    assert code == 0
    assert out.splitlines()[0] == "Room lobby: 1 of 2 asked users are in the room."
    assert "not in  u9" in out


async def test_query_member_exit_codes_bad_input_2_missing_room_0(sandbox: ZimSandbox, sandbox_env):
    sandbox.reset_stats()
    code, _, err = await run_cli("query", "lobby", "--member", ",".join(f"u{i}" for i in range(11)), env=sandbox_env)
    assert code == 2 and "at most 10 user IDs" in err
    code, _, err = await run_cli("query", "lobby", "anna", "--member", "u1", env=sandbox_env)
    assert code == 2 and "--member takes no filter" in err
    assert sandbox.stats.requests == 0
    code, out, err = await run_cli("query", "no-such-room", "--member", "u1,u2", "--json", env=sandbox_env)
    assert code == 0 and "room no-such-room does not exist in ZIM" in err
    assert json.loads(out) == {"room_id": "no-such-room", "in": [], "not_in": ["u1", "u2"]}
