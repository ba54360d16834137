"""How an incident reference typed in a command, carried by a button or kept in a modal reads."""

from __future__ import annotations

import pytest

from slackbot.domain.ids import MAX_INCIDENT_ID, IncidentRefError, parse_escalate_value, parse_incident_ref


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("INC-42", 42),
        ("inc-42", 42),
        ("#42", 42),
        (" 42 ", 42),
        ("42", 42),
        (42, 42),
        ("INC-0007", 7),
        (str(MAX_INCIDENT_ID), MAX_INCIDENT_ID),
        ("0" * 50 + "1", 1),
    ],
)
def test_what_names_an_incident(ref: object, expected: int) -> None:
    assert parse_incident_ref(ref) == expected


@pytest.mark.parametrize(
    ("ref", "answer"),
    [
        ("²", "'²' is not an incident id"),
        ("INC-٣", "'INC-٣' is not an incident id"),  # str.isdigit() and int() both accept it
        ("4 2", "is not an incident id"),
        ("", "is not an incident id"),
        ("INC-", "is not an incident id"),
        ("-1", "is not an incident id"),
        (str(MAX_INCIDENT_ID + 1), f"no incident INC-{MAX_INCIDENT_ID + 1}"),  # past PostgreSQL's INTEGER
        (str(2**70), f"no incident INC-{2**70}"),
        (2**70, f"no incident INC-{2**70}"),
        ("1" * 1_000_000, "no incident INC-1111"),
        (True, "no incident id given"),
        (None, "no incident id given"),
        ([1], "no incident id given"),
    ],
)
def test_what_does_not_and_what_its_sender_is_told(ref: object, answer: str) -> None:
    with pytest.raises(IncidentRefError) as refused:
        parse_incident_ref(ref)
    assert answer in str(refused.value) and len(str(refused.value)) < 120


def test_the_escalate_button_carries_the_level_the_card_showed() -> None:
    assert parse_escalate_value("7@2") == (7, 2)
    assert parse_escalate_value("7") == (7, None)  # a card drawn before the level was carried
    for forged in ("7@", "7@x", "7@²", "7@" + "9" * 50, "²@1"):
        with pytest.raises(IncidentRefError):
            parse_escalate_value(forged)
