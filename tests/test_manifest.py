"""manifest.yml is a valid Slack app manifest and asks for exactly what the app uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = Path(__file__).resolve().parent / "data" / "slack-manifest-schema"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMA_DIR / "manifest.schema.1.0.0.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "manifest.yml").read_text())
    return loaded


def test_manifest_validates_against_slacks_published_schema(validator, manifest):
    errors = sorted(validator.iter_errors(manifest), key=str)
    assert errors == []


def test_the_schema_itself_rejects_its_invalid_sample(validator):
    invalid = json.loads((SCHEMA_DIR / "manifest.invalid.json").read_text())
    assert list(validator.iter_errors(invalid))


def test_command_interactivity_mentions_and_socket_mode(manifest):
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/roomusers"
    assert command["usage_hint"].startswith("<room-id>")
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_mention"]
    assert manifest["settings"]["socket_mode_enabled"] is True


def test_exactly_the_bot_scopes_needed(manifest):
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == [
        "app_mentions:read",
        "channels:read",
        "chat:write",
        "commands",
        "files:write",
        "groups:read",
        "im:write",
        "usergroups:read",
    ]
    assert "user" not in manifest["oauth_config"]["scopes"]
