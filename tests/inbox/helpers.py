"""What the inbox tests share: incidents to click on, an inbox without a server, what it did."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.after_ack import AckFirst, AfterAck
from slackbot.clock import FakeClock
from slackbot.config import Playbooks
from slackbot.db.models import InboxItem, Incident, TimelineEvent
from slackbot.domain.changes import Change
from slackbot.inbox import Inbox, Request
from slackbot.incidents.core import IncidentCore
from slackbot.sources.ingest import IngestService
from tests.factories import parsed, result

CLASSES = ("algorithm_regression", "data_schema_drift")


def open_incidents(engine: Engine, playbooks: Playbooks, clock: FakeClock, count: int) -> list[int]:
    failures = [result(f"BID-{n:03d}", "TENANT-001", test_name=f"case {n}") for n in range(1, count + 1)]
    with Session(engine) as session:
        IngestService(playbooks, clock).ingest(session, parsed(*failures))
        session.commit()
        return sorted(i.id or 0 for i in session.exec(select(Incident)))


class Told:
    """Stands in for the response URLs: what each person was told."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, str]] = []

    async def __call__(self, url: str, text: str, in_channel: bool) -> None:
        self.answers.append((url, text))


def inbox_for(
    engine: Engine,
    playbooks: Playbooks,
    clock: FakeClock,
    responders: set[str] | None = None,
    gate: AckFirst | None = None,
) -> Inbox:
    async def allowed(user: str) -> bool:
        return responders is None or user in responders

    inbox = Inbox(
        engine,
        IncidentCore(playbooks, clock),
        clock,
        AfterAck(gate or AckFirst(quiet=0.001, max_delay=0.5)),
        allowed=allowed,
        describe=lambda: "@oncall",
        on_changed=lambda: None,
        poll=0.05,
    )
    inbox.answer = Told()
    return inbox


def classified(engine: Engine, incident_id: int) -> list[str]:
    """The classes the incident was given, in order, as its timeline tells them."""
    with Session(engine) as session:
        rows = session.exec(
            select(TimelineEvent)
            .where(
                TimelineEvent.incident_id == incident_id, col(TimelineEvent.kind).in_(["classified", "reclassified"])
            )
            .order_by(col(TimelineEvent.id))
        )
        return [row.message.split()[1] for row in rows]  # 'Reclassified <class> (was …) by …'


def rows(engine: Engine) -> list[InboxItem]:
    with Session(engine) as session:
        return list(session.exec(select(InboxItem).order_by(col(InboxItem.id))))


def request(n: int, incident_id: int, change: Change, user: str = "U0CAROL") -> Request:
    return Request(f"block_actions:T{n}:incident_classify:{n}.0", incident_id, user, "button", change, f"https://r/{n}")


async def drain(inbox: Inbox) -> None:
    while await inbox.apply_pending():
        pass
