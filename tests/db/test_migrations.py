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
