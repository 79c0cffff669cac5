"""LOG_FORMAT=json: one JSON object per line; audit lines carry their fields."""

from __future__ import annotations

import json
import logging

import pytest

from bot.observability.audit import AuditRecord
from bot.observability.logs import JsonFormatter, configure_logging, log_format
from bot.settings import ConfigError


def test_audit_records_become_flat_json_objects(caplog):
    caplog.set_level(logging.INFO, logger="roomusers.audit")
    record = AuditRecord("command", "U1", "C1")
    record.note(room="lobby", room_users=3, request_ids=["r1", "r2"])
    record.emit("ok")
    (logged,) = [r for r in caplog.records if r.name == "roomusers.audit"]
    line = json.loads(JsonFormatter().format(logged))
    assert line["level"] == "INFO"
    assert line["surface"] == "command"
    assert line["room"] == "lobby"
    assert line["zim_request_ids"] == ["r1", "r2"]
    assert "\n" not in JsonFormatter().format(logged)


def test_other_records_carry_message_and_exception():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "failed here"
    assert "RuntimeError: boom" in line["exception"]


def test_log_format_setting():
    assert log_format({}) == "text"
    assert log_format({"LOG_FORMAT": "JSON"}) == "json"
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        log_format({"LOG_FORMAT": "xml"})


def test_configure_logging_quiets_request_url_loggers():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(logging.DEBUG, "json")
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        assert logging.getLogger("httpx").level == logging.WARNING
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


def test_an_audit_record_is_emitted_and_counted_once(caplog):
    from prometheus_client import REGISTRY

    caplog.set_level(logging.INFO, logger="roomusers.audit")
    labels = {"surface": "test-once", "outcome": "ok"}
    record = AuditRecord("test-once", "U1", "C1")
    record.emit("ok")
    record.emit("ok")  # a bug: logged as such, not counted
    record.ensure("internal_error")  # a finally after the real outcome: nothing
    lines = [r for r in caplog.records if r.name == "roomusers.audit"]
    assert [r.levelno for r in lines] == [logging.INFO, logging.ERROR]
    assert "emitted twice" in lines[1].getMessage()
    assert REGISTRY.get_sample_value("roomusers_commands_total", labels) == 1.0
    unfinished = AuditRecord("test-once", "U1", "C1")
    unfinished.ensure("internal_error")
    assert REGISTRY.get_sample_value("roomusers_commands_total", {**labels, "outcome": "internal_error"}) == 1.0
