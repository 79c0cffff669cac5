"""README says what the first hour needs, and nothing that contradicts the product."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from bot.dev.zim_sandbox.faults import FAULT_KINDS, Fault

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "phrase",
    [
        "--csv",
        "--app",
        "--room",
        "byte-order mark",
        "export ZEGO_",
        "working directory",
        "**User IDs are written exactly as ZIM",
        "#4 2",
        "waits up to 30 s",
        "POST /_sandbox/faults",
    ],
)
def test_readme_documents(phrase: str) -> None:
    assert phrase in README


@pytest.mark.parametrize("name", [*FAULT_KINDS, *(field.name for field in dataclasses.fields(Fault))])
def test_readme_documents_every_fault_kind_and_field(name: str) -> None:
    assert f"`{name}`" in README


def test_no_old_64_character_filter_cap_is_left() -> None:
    usage = subprocess.run(
        [sys.executable, "-m", "bot", "--help"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    query_usage = subprocess.run(
        [sys.executable, "-m", "bot", "query", "--help"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    parsing = (ROOT / "bot" / "slack" / "parsing.py").read_text(encoding="utf-8")
    for text in (README, usage, query_usage, parsing):
        assert "64 characters" not in text
        assert "at most 64" not in text
    assert "--csv" in query_usage
    assert "ROOM [FILTER ...]" in query_usage
