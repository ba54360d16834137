"""``manifest.yml`` against Slack's published app manifest schema (v1, draft-07)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from slackbot.emulator.api import BOT_SCOPES
from slackbot.manifest import check_manifest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures" / "external"
MANIFEST = REPO / "manifest.yml"
REQUEST_URL = "https://triagebot.example.com/slack/events"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads((FIXTURES / "slack-manifest.schema.1.0.0.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def errors(validator: jsonschema.Draft7Validator, document: object) -> list[str]:
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(document)]


def test_manifest_is_valid_against_slacks_schema(validator, manifest) -> None:
    assert errors(validator, manifest) == []


def test_the_validator_is_live(validator, manifest) -> None:
    valid = json.loads((FIXTURES / "slack-manifest-v1.valid.json").read_text(encoding="utf-8"))
    invalid = json.loads((FIXTURES / "slack-manifest-v1.invalid.json").read_text(encoding="utf-8"))
    assert errors(validator, valid) == []
    found = errors(validator, invalid)
    assert found and "bad_param" in " ".join(found)
    broken = copy.deepcopy(manifest)
    broken["display_information"]["long_description"] = "too short"
    assert errors(validator, broken)


def test_manifest_declares_what_the_bot_relies_on(manifest) -> None:
    info = manifest["display_information"]
    assert info["name"] == "triagebot" and len(info["long_description"]) >= 175
    features = manifest["features"]
    assert features["bot_user"] == {"display_name": "triagebot", "always_online": True}
    assert features["app_home"]["home_tab_enabled"] is True
    assert features["app_home"]["messages_tab_enabled"] is False
    [triage] = [c for c in features["slash_commands"] if c["command"] == "/triage"]
    assert triage["should_escape"] is True and triage["url"] == REQUEST_URL
    assert triage["usage_hint"].startswith("help | list [open|mine|overdue] | show ID | classify ID CLASS")
    settings = manifest["settings"]
    events = settings["event_subscriptions"]
    assert events["request_url"] == REQUEST_URL
    assert set(events["bot_events"]) == {
        "app_home_opened",
        "message.channels",
        "reaction_added",
        "app_mention",
    }
    assert settings["interactivity"] == {"is_enabled": True, "request_url": REQUEST_URL}
    assert settings["socket_mode_enabled"] is False
    assert settings["org_deploy_enabled"] is False and settings["token_rotation_enabled"] is False
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    # Exactly what some call or event needs, nothing more (a reviewer installing the app reads this
    # list); the emulator grants exactly these, so a call they do not cover fails in every test.
    assert scopes == {
        "commands",
        "chat:write",
        "chat:write.public",
        "im:write",
        "im:history",
        "usergroups:read",
        "reactions:read",
        "app_mentions:read",
        "channels:history",
        "files:write",
        "channels:read",  # triagebot doctor: conversations.info on each routing channel
        "users:read",  # triagebot doctor: users.info on each routing user
    }
    assert scopes == set(BOT_SCOPES.split(","))


def test_triagebot_check_accepts_the_manifest() -> None:
    assert check_manifest(MANIFEST) == []
