from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from slackbot.clock import FakeClock
from slackbot.config import Playbook, Playbooks, load_playbooks
from slackbot.db.engine import make_engine
from slackbot.db.migrate import upgrade
from tests.pgserver import PostgresServer

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures" / "external"
RUNBOOKS = REPO / "runbooks"


@pytest.fixture(scope="session")
def playbooks() -> Playbooks:
    return load_playbooks(RUNBOOKS)


@pytest.fixture(scope="session")
def runbook(playbooks: Playbooks) -> Playbook:
    """The default playbook (integration-triage, seeds 000/001)."""
    return playbooks.default


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests run on SQLite (the embedded default) and on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'triage.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'triage.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()
