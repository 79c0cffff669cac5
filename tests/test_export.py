"""The roster as a CSV file: exact bytes, formula-injection defusing, file names, and uploads to the Slack stand-in."""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
from collections.abc import AsyncIterator

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.dev.slack_standin import SlackStandIn
from bot.roster.model import RoomUser
from bot.slack.export import Exported, ExportTarget, csv_filename, roster_csv, upload_problem, upload_roster_csv
from bot.slack.render.escaping import EMOJI_JOINERS

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-export-test-token"
FETCHED_AT = 1795847460.0  # 2026-11-28 06:31:00 UTC
USERS = (RoomUser("u1", "Zoë"), RoomUser("u2", "=1+1"), RoomUser("u3", '李雷, "Ray"'))
HEADER = b"user_id,user_name\r\n"
BOM = b"\xef\xbb\xbf"


def rows(users: list[tuple[str, str]]) -> bytes:
    return roster_csv(RoomUser(uid, name) for uid, name in users)


# -- roster_csv: exact bytes ---------------------------------------------------------------------------------


def test_bom_header_and_line_endings():
    assert roster_csv([]) == BOM + HEADER


@pytest.mark.parametrize(
    ("name", "cell"),
    [
        ("Alice", b"Alice"),
        ('=HYPERLINK("http://x")', b'"\'=HYPERLINK(""http://x"")"'),
        ("-5", b"'-5"),
        ("+1", b"'+1"),
        ("@SUM(1)", b"'@SUM(1)"),
        ("\tcmd", b"cmd"),
        ("\t=cmd", b"'=cmd"),  # neutralised after the removal
        ("\rcmd", b"cmd"),
        ("=1+1,2", b"\"'=1+1,2\""),
        ("a-b=c", b"a-b=c"),  # only the first character matters
        (" =1", b" =1"),
        ("'quoted", b"'quoted"),
        ("Smith, John", b'"Smith, John"'),
        ('say "hi"', b'"say ""hi"""'),
        ("two\nlines", b"twolines"),
        ("cr\r\nlf", b"crlf"),
        ("👩🏽‍💻 Zoë", "👩🏽‍💻 Zoë".encode()),
        ("مرحبا\u202eabc", "مرحباabc".encode()),
        ("\u202e=HYPERLINK(\"x\")", b'"\'=HYPERLINK(""x"")"'),
        ("Ann\u200bLee", b"AnnLee"),
        ("a\u2028b", b"ab"),
        ("", b""),
    ],
    ids=[
        "plain", "hyperlink", "minus", "plus", "at", "tab", "tab-then-formula", "cr", "formula-with-comma",
        "inner-operators", "leading-space", "leading-quote", "comma", "quotes", "newline", "crlf", "emoji",
        "bidi", "bidi-then-formula", "zero-width", "line-separator", "empty",
    ],
)  # fmt: skip
def test_one_name_exactly(name, cell):
    assert rows([("u1", name)]) == BOM + HEADER + b"u1," + cell + b"\r\n"


@pytest.mark.parametrize("user_id", ["-5", "=1+1", "@x", "+1", "\tA", "a,b", 'q"', "\r\n"])
def test_ids_are_written_exactly_as_zim_returns_them(user_id):
    data = rows([(user_id, "n"), ("u-2", "a")])
    parsed = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert parsed[1:] == [[user_id, "n"], ["u-2", "a"]]


def test_spreadsheet_text_round_trips_through_the_bom():
    data = rows([("u1", "佐藤 花子"), ("u2", "Chloé")])
    assert data.startswith(BOM)
    assert data.decode("utf-8-sig") == "user_id,user_name\r\nu1,佐藤 花子\r\nu2,Chloé\r\n"


def test_lone_surrogates_become_replacement_characters():
    data = rows([("u\udc00", "bad\ud800name")])
    assert data == BOM + HEADER + "u\ufffd,bad\ufffdname\r\n".encode()


_REMOVED = ("Cc", "Cf", "Zl", "Zp")


def expected_name(name: str) -> str:
    name = "".join(
        "\ufffd" if "\ud800" <= c <= "\udfff" else c
        for c in name
        if unicodedata.category(c) not in _REMOVED or c in EMOJI_JOINERS
    )
    return "'" + name if name[:1] in ("=", "+", "-", "@") else name


@given(st.lists(st.tuples(st.text(), st.text())))
def test_round_trip_gives_back_ids_verbatim_and_names_by_the_rule(users):
    data = roster_csv(RoomUser(uid, name) for uid, name in users)
    assert data.startswith(BOM)

    parsed = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))

    assert parsed[0] == ["user_id", "user_name"]
    lone = re.compile("[\ud800-\udfff]")
    assert parsed[1:] == [[lone.sub("\ufffd", uid), expected_name(name)] for uid, name in users]
    for _, name in parsed[1:]:
        assert name[:1] not in ("=", "+", "-", "@")
        assert all(unicodedata.category(c) not in _REMOVED or c in EMOJI_JOINERS for c in name)


# -- csv_filename ---------------------------------------------------------------------------------------------


def test_filename_has_the_room_and_utc_time():
    assert csv_filename("demo-120", FETCHED_AT) == "roomusers-demo-120-20261128-063100Z.csv"


@pytest.mark.parametrize(
    ("room_id", "expected"),
    [
        ("../../etc/passwd", "roomusers-.._.._etc_passwd-20261128-063100Z.csv"),
        ("a b|c;d$(e)", "roomusers-a_b_c_d__e_-20261128-063100Z.csv"),
        ("room/<x>\\y", "roomusers-room__x__y-20261128-063100Z.csv"),
        ("Zoë", "roomusers-Zo_-20261128-063100Z.csv"),
        ("", "roomusers-_-20261128-063100Z.csv"),
    ],
)
def test_unsafe_filename_characters_are_replaced(room_id, expected):
    assert csv_filename(room_id, FETCHED_AT) == expected


@given(st.text(), st.floats(allow_nan=True, allow_infinity=True))
def test_filenames_are_always_safe(room_id, fetched_at):
    name = csv_filename(room_id, fetched_at)
    assert re.fullmatch(r"roomusers-[A-Za-z0-9._-]{1,64}(-\d{8}-\d{6}Z)?\.csv", name)
    assert "/" not in name
    assert "\\" not in name


# -- upload_roster_csv against the Slack stand-in ----------------------------------------------------------


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(signing_secret=SECRET, bot_token=TOKEN) as running:
        yield running


@pytest.fixture
def client(slack: SlackStandIn) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=slack.api_base_url)


async def upload(client: AsyncWebClient, target: ExportTarget, **overrides: object) -> str | None:
    options: dict[str, object] = {
        "room_id": "demo-120",
        "users": USERS,
        "fetched_at": FETCHED_AT,
        "target": target,
        "requested_by": "U0ALICE",
    }
    options.update(overrides)
    result = await upload_roster_csv(client, **options)  # type: ignore[arg-type]
    return None if isinstance(result, Exported) else result


async def test_upload_to_a_channel_thread(slack, client):
    problem = await upload(client, ExportTarget(channel_id="C0OPS", thread_ts="1795847400.000100"), profile="eu")

    assert problem is None
    [stored] = slack.files
    assert stored.content == roster_csv(USERS)
    assert stored.filename == "roomusers-demo-120-20261128-063100Z.csv"
    assert (stored.channel_id, stored.thread_ts) == ("C0OPS", "1795847400.000100")
    assert stored.title == "Users of room demo-120 (eu)"
    comment = stored.initial_comment or ""
    assert comment.startswith("Users of room `demo-120` (app `eu`) (3 users, fetched <!date^1795847460^")
    assert "|2026-11-28 06:31:00 UTC>" in comment
    assert comment.endswith(" — requested by <@U0ALICE>")
    assert [call.method for call in slack.api_calls] == ["files.getUploadURLExternal", "files.completeUploadExternal"]


async def test_untrusted_room_id_is_escaped_in_the_comment(slack, client):
    problem = await upload(client, ExportTarget(channel_id="C0OPS"), room_id="<!channel>`x", users=USERS[:1])

    assert problem is None
    [stored] = slack.files
    assert stored.initial_comment is not None
    assert stored.initial_comment.startswith("Users of room `&lt;!channel&gt;ˋx` (1 user, fetched ")
    assert "<!channel>" not in stored.initial_comment
    assert stored.thread_ts is None


async def test_direct_target_goes_to_the_dm_and_never_to_the_channel(slack, client):
    target = ExportTarget(channel_id="C0OPS", thread_ts="1795847400.000100", direct_to_user="U0ALICE")

    problem = await upload(client, target)

    assert problem is None
    [opened, *_] = slack.api_calls
    assert (opened.method, opened.args.get("users")) == ("conversations.open", "U0ALICE")
    [stored] = slack.files
    dm = slack.workspace.dm_channel("U0ALICE")
    assert dm.startswith("D")
    assert (stored.channel_id, stored.channels, stored.thread_ts) == (dm, (), None)
    assert stored.content == roster_csv(USERS)
    assert all(call.args.get("channel_id") != "C0OPS" for call in slack.api_calls)


@pytest.mark.parametrize(
    ("error", "sentence"),
    [
        ("not_in_channel", "I can't post files in this channel; invite @roomusers and try again."),
        ("channel_not_found", "I can't post files in this channel; invite @roomusers and try again."),
        (
            "missing_scope",
            "The app lacks the files:write (and im:write) scope; an admin must reinstall it from manifest.yml.",
        ),
        ("file_uploads_disabled", "File uploads are disabled in this workspace, so I can't send the CSV file."),
        (
            "file_uploads_except_images_disabled",
            "File uploads are disabled in this workspace, so I can't send the CSV file.",
        ),
        ("ratelimited", "Slack is limiting how fast files can be uploaded right now; try again in a minute."),
        ("fatal_error", "Slack refused the CSV upload (error `fatal_error`); try again or ask an admin."),
    ],
)
async def test_refused_uploads_become_sentences(slack, client, caplog, error, sentence):
    slack.fail_next_api_calls("files.completeUploadExternal", error)

    with caplog.at_level(logging.WARNING, logger="bot.slack.export"):
        problem = await upload(client, ExportTarget(channel_id="C0OPS"))

    assert problem == sentence
    assert slack.files == []
    assert error in caplog.text
    assert TOKEN not in caplog.text


async def test_rate_limit_with_retry_after(slack, client):
    slack.rate_limit_next_api_calls("files.getUploadURLExternal", retry_after=30)

    problem = await upload(client, ExportTarget(channel_id="C0OPS"))

    assert problem == "Slack is limiting how fast files can be uploaded right now; try again in 30 seconds."


async def test_dm_that_cannot_be_opened(slack, client):
    slack.fail_next_api_calls("conversations.open", "missing_scope")

    problem = await upload(client, ExportTarget(channel_id="C0OPS", direct_to_user="U0ALICE"))

    assert problem is not None
    assert "im:write" in problem
    assert slack.files == []
    assert [call.method for call in slack.api_calls] == ["conversations.open"]


async def test_unreachable_slack_is_a_retry_later_sentence(slack):
    dead = AsyncWebClient(token=TOKEN, base_url="http://127.0.0.1:9/api/", timeout=2)

    problem = await upload(dead, ExportTarget(channel_id="C0OPS"))

    assert problem == "I couldn't reach Slack to upload the CSV file; try again in a moment."


class ExplodingClient(AsyncWebClient):
    def __init__(self, error: BaseException) -> None:
        super().__init__(token=TOKEN)
        self.error = error

    async def files_upload_v2(self, **kwargs: object) -> AsyncSlackResponse:
        raise self.error


@pytest.mark.parametrize(
    ("error", "sentence"),
    [
        (TimeoutError(), "I couldn't reach Slack to upload the CSV file; try again in a moment."),
        (aiohttp.ServerDisconnectedError(), "I couldn't reach Slack to upload the CSV file; try again in a moment."),
        (RuntimeError("boom"), "Something went wrong while uploading the CSV file; try again in a moment."),
    ],
    ids=["timeout", "disconnected", "unexpected"],
)
async def test_no_exception_escapes(error, sentence):
    assert await upload(ExplodingClient(error), ExportTarget(channel_id="C0OPS")) == sentence


def test_upload_problem_for_an_http_429_without_an_error_code():
    response = AsyncSlackResponse(
        client=None,
        http_verb="POST",
        api_url="http://x/api/files.completeUploadExternal",
        req_args={},
        data={"ok": False},
        headers={"Retry-After": "7"},
        status_code=429,
    )
    assert upload_problem(SlackApiError("limited", response)).endswith("try again in 7 seconds.")


def test_filename_of_a_filtered_export_says_matching():
    assert csv_filename("demo-120", FETCHED_AT, matching=True) == "roomusers-demo-120-20261128-063100Z-matching.csv"
    assert csv_filename("demo-120", float("nan"), matching=True) == "roomusers-demo-120-matching.csv"
