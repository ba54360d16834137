"""The schema Alembic builds is the schema the models describe, on SQLite and PostgreSQL alike.

A model change without its migration would pass every other test (they all migrate first) and
then fail on a deployed database whose schema only migrations ever touch.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from slackbot.db import models  # noqa: F401  (registers every table on SQLModel.metadata)
from slackbot.db.migrate import alembic_config, current_revision, upgrade


def differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), SQLModel.metadata))


def test_migrating_to_head_builds_exactly_the_models_schema(engine: Engine) -> None:
    assert differences(engine) == []
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    assert current_revision(engine) == ScriptDirectory.from_config(config).get_current_head()


def test_each_migration_can_be_undone_and_redone(engine: Engine) -> None:
    from alembic import command

    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
        connection.commit()
    indexes = {ix["name"] for ix in inspect(engine).get_indexes("outbox")}
    assert "ix_outbox_incident_id" in indexes and "ix_outbox_incident_kind_state" not in indexes
    assert differences(engine) != []  # the comparison sees an index that is missing
    upgrade(engine)
    assert differences(engine) == []


def test_incidents_from_before_playbooks_keep_their_class_severity_and_history(engine: Engine) -> None:
    """Migration 0003 on a database written by the previous release: its incidents were opened under
    the one runbook there was, which is now the integration-triage playbook. They keep their class,
    severity, timeline and deadline, and the bot reads them with that playbook."""
    from alembic import command
    from sqlalchemy import text

    from slackbot.config import load_playbooks
    from slackbot.db.engine import session_scope
    from slackbot.db.models import Incident
    from tests.conftest import RUNBOOKS

    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
        connection.commit()
    at = "2026-11-22 03:12:00"
    with engine.begin() as connection:  # the previous release's columns only
        connection.execute(
            text(
                "INSERT INTO incidents (fingerprint, open_key, repository, scenario_id, invariant_id, test_identity,"
                " symptom, key_entity_ids, suite, channel, status, failure_class, class_source, severity,"
                " contract_violation, multi_prefix, occurrence_count, first_seen, last_seen, classify_deadline,"
                " escalation_level, bead_state, revision, created_at, updated_at)"
                " VALUES ('fp', 'fp', 'acme/dispatch', 'ADV-003', 'IDEMP-002', 'x', 'double accept', '{}', 'nightly',"
                " 'C0NIGHTLY', 'open', 'flake_concurrency', 'human', 'SEV-2', false, false, 3, :at, :at, :at,"
                " 1, 'none', 4, :at, :at)"
            ),
            {"at": at},
        )
        connection.execute(
            text(
                "INSERT INTO timeline (incident_id, at, actor, source, kind, message, data)"
                " VALUES (1, :at, 'U0ERIN', 'button', 'classified', 'Classified flake_concurrency by U0ERIN', '{}')"
            ),
            {"at": at},
        )
    upgrade(engine)
    assert differences(engine) == []
    with session_scope(engine) as session:
        incident = session.get(Incident, 1)
        assert incident is not None
        assert (incident.playbook, incident.failure_class, incident.severity) == (
            "integration-triage",
            "flake_concurrency",
            "SEV-2",
        )
        assert (incident.flags, incident.record, incident.revision, incident.occurrence_count) == ([], {}, 4, 3)
        assert incident.classify_deadline is not None
        playbook = load_playbooks(RUNBOOKS).get(incident.playbook)
        assert playbook.class_label(incident.failure_class) == "Flake/concurrency"
        history = session.execute(text("SELECT message FROM timeline WHERE incident_id = 1")).scalars().all()
        assert history == ["Classified flake_concurrency by U0ERIN"]
