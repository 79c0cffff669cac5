"""Start-up and shutdown log lines say what matters, once, in plain words."""

from __future__ import annotations

import asyncio
import logging

import pytest
from slack_bolt.async_app import AsyncApp

from bot.settings import SlackSettings, ZegoProfiles, ZegoSettings, profiles_summary
from bot.slack.app import BOLT_LOGGER, build_app, web_client
from bot.slack.deps import SlackDeps
from bot.slack.pending import PendingAnswers

SECRET = "0123456789abcdef0123456789abcdef"


def settings(name: str, app_id: int, url: str = "https://zim-api.zego.im") -> ZegoSettings:
    return ZegoSettings(app_id=app_id, server_secret=SECRET, base_url=url, profile=name)


def test_bolt_does_not_warn_about_the_token_we_also_pass(monkeypatch, caplog):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-the-environment")
    caplog.set_level(logging.DEBUG)
    deps = SlackDeps.__new__(SlackDeps)  # the listeners only keep a reference; nothing is called here
    slack = SlackSettings(bot_token="xoxb-x", signing_secret="s" * 32)
    build_app(slack, deps)
    build_app(slack, deps)
    assert not [record for record in caplog.records if "will be unused" in record.getMessage()]
    bolt_log = logging.getLogger(BOLT_LOGGER)
    assert len(bolt_log.filters) == 1
    # Without our filter Bolt does say it (so a reworded warning would fail the check above, not slip by).
    (quiet,) = bolt_log.filters
    bolt_log.removeFilter(quiet)
    try:
        AsyncApp(client=web_client(slack), signing_secret="s" * 32, logger=bolt_log)
    finally:
        bolt_log.addFilter(quiet)
    assert [record for record in caplog.records if "will be unused" in record.getMessage()]


def test_profiles_summary_names_the_app_without_repeating_default():
    one = ZegoProfiles(default="default", by_name={"default": settings("default", 1234567890)})
    assert profiles_summary(one) == "ZEGO app 1234567890 at https://zim-api.zego.im, 20 req/s"
    two = ZegoProfiles(
        default="prod",
        by_name={"prod": settings("prod", 1), "staging": settings("staging", 2, "https://zim-api-fra.zego.im")},
    )
    summary = profiles_summary(two)
    assert summary == (
        "ZEGO apps: prod (default; 1 at https://zim-api.zego.im, 20 req/s), "
        "staging (2 at https://zim-api-fra.zego.im, 20 req/s)"
    )
    assert SECRET not in summary + profiles_summary(one)


@pytest.mark.parametrize(("jobs", "line"), [(1, "for 1 answer in progress"), (2, "for 2 answers in progress")])
async def test_drain_counts_answers_in_words(caplog, jobs, line):
    caplog.set_level(logging.INFO, logger="bot.slack.pending")
    pending = PendingAnswers()
    release = asyncio.Event()
    started = [asyncio.Event() for _ in range(jobs)]

    async def job(index: int) -> None:
        async def work() -> None:
            started[index].set()
            await release.wait()

        async def tell() -> None:
            return None

        await pending.run(work, tell)

    tasks = [asyncio.create_task(job(index)) for index in range(jobs)]
    for event in started:
        await event.wait()
    drained = asyncio.create_task(pending.drain(30))
    await asyncio.sleep(0)  # one turn: the drain logs before its first await
    assert any("waiting up to" in record.getMessage() for record in caplog.records)
    release.set()
    assert await drained == 0
    await asyncio.gather(*tasks)
    messages = [record.getMessage() for record in caplog.records]
    assert f"waiting up to 30 s {line}" in messages
