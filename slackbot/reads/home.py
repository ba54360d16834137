"""App Home from the database, bounded: a few short queries whatever the history holds."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from slackbot.db.models import Incident
from slackbot.reads.queries import first_incidents
from slackbot.slack.home import MAX_LINES, HomeData, Section


def load_home(session: Session, user_id: str, now: datetime) -> HomeData:
    counts = session.exec(
        select(Incident.playbook, Incident.failure_class, func.count())
        .where(Incident.status == "open")
        .group_by(col(Incident.playbook), col(Incident.failure_class))
    ).all()
    open_by_class = {(playbook, failure_class): int(n) for playbook, failure_class, n in counts}
    mine = first_incidents(session, MAX_LINES, status="open", assignee=user_id)
    overdue = first_incidents(session, MAX_LINES, overdue_at=now)
    # Counted already, by class, in the same snapshot: no second count of the open incidents.
    first_open = first_incidents(session, MAX_LINES, total=sum(open_by_class.values()), status="open")
    return HomeData(
        mine=Section(mine.incidents, mine.total),
        overdue=Section(overdue.incidents, overdue.total),
        open=Section(first_open.incidents, first_open.total),
        open_by_class=open_by_class,
    )
