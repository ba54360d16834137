"""The promises the bot must keep through the simulated fortnight, checked against what happened.

Each check reads two sides and compares them: the bot's database (incidents, occurrences, the
timeline, the outbox) and the outside world it acted on (the Slack emulator's messages, the fake
PagerDuty's events, the beads in bd and GitHub). A broken promise is a *violation*: one line
naming the incident, outbox row, message ts or time involved, so a failed run says exactly what
went wrong and where to look.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.clock import as_utc
from slackbot.config import Playbook as Runbook
from slackbot.config import load_playbooks
from slackbot.db.engine import make_engine
from slackbot.db.models import Incident, Occurrence, OutboxItem, Run, TimelineEvent
from slackbot.outbox.slack_deliveries import CARD_EVENT, POST_EVENT, is_posted
from slackbot.simulation.applicable import not_applicable
from slackbot.simulation.outside import check_outside
from slackbot.simulation.records import Check, SimulationRun, SnapMessage

PAGE_KINDS = ("dm", "pagerduty")
CHECKLIST_EVENT = "triagebot_checklist"


@dataclass
class Facts:
    """The database side, loaded once."""

    runbook: Runbook
    incidents: list[Incident]
    runs: list[Run]
    occurrences: Counter[int]  # incident id -> occurrences
    occurrences_by_run: Counter[int]  # run pk -> occurrences
    orphans: list[int]  # occurrence ids without an incident
    timeline: dict[int | None, list[TimelineEvent]]
    outbox: list[OutboxItem]
    playbooks: list[Runbook] = field(default_factory=list)  # every playbook (alerts go to operations)

    def playbook(self, name: str | None) -> Runbook:
        return next((p for p in self.playbooks if p.name == name), self.runbook)

    @classmethod
    def load(cls, engine: Engine, runbook: Runbook, playbooks: list[Runbook] | None = None) -> Facts:
        with Session(engine) as session:
            incidents = list(session.exec(select(Incident).order_by(col(Incident.id))))
            runs = list(session.exec(select(Run).order_by(col(Run.id))))
            known = {i.id for i in incidents}
            occurrences: Counter[int] = Counter()
            by_run: Counter[int] = Counter()
            orphans = []
            for occurrence_id, incident_id, run_pk in session.exec(
                select(Occurrence.id, Occurrence.incident_id, Occurrence.run_pk)
            ):
                if incident_id not in known:
                    orphans.append(int(occurrence_id or 0))
                occurrences[incident_id] += 1
                by_run[run_pk] += 1
            timeline: dict[int | None, list[TimelineEvent]] = defaultdict(list)
            for event in session.exec(select(TimelineEvent).order_by(col(TimelineEvent.at), col(TimelineEvent.id))):
                timeline[event.incident_id].append(event)
            outbox = list(session.exec(select(OutboxItem).order_by(col(OutboxItem.id))))
        return cls(runbook, incidents, runs, occurrences, by_run, orphans, timeline, outbox, playbooks or [runbook])

    def rows(self, *kinds: str, incident_id: int | None = None) -> list[OutboxItem]:
        return [r for r in self.outbox if r.kind in kinds and (incident_id is None or r.incident_id == incident_id)]

    def events(self, incident_id: int, *kinds: str) -> list[TimelineEvent]:
        return [e for e in self.timeline.get(incident_id, []) if not kinds or e.kind in kinds]


def _skipped(row: OutboxItem) -> bool:
    return bool(row.result.get("skipped") or row.result.get("superseded") or row.result.get("already"))


def _when(value: datetime | None) -> str:
    return as_utc(value).strftime("%a %d %b %H:%M:%S") if value else "never"


def _posted(message: SnapMessage) -> str:
    """A message by its ts and the (virtual) time it was posted."""
    return f"{message.ts} ({_when(datetime.fromtimestamp(message.at, UTC))})"


def _outbox_id(message: SnapMessage, event: str) -> Any:
    metadata = message.metadata or {}
    if metadata.get("event_type") != event:
        return None
    payload = metadata.get("event_payload") or {}
    return payload.get("outbox") if event != CARD_EVENT else payload.get("incident")


# -- the checks -------------------------------------------------------------------------------------


def check_occurrences(run: SimulationRun, facts: Facts) -> Check:
    check = Check("occurrences", "Every failure CI reported became an occurrence of an incident", 0)
    for occurrence_id in facts.orphans:
        check.violations.append(f"occurrence {occurrence_id} belongs to no incident")
    by_identity = {(r.repository, r.run_id, r.run_attempt): r for r in facts.runs}
    for sent in run.traffic.sent:
        check.checked += len(sent.failures)
        stored = by_identity.get((str(sent.report["run"]["repository"]), sent.run_id, 1))
        if stored is None:
            check.violations.append(f"run {sent.run_id} ({sent.suite}, {_when(sent.at)}) is not in the database")
            continue
        answers = run.ingest_answers.get(sent.run_id, [])
        if sent.resent and (len(answers) != 2 or not answers[1].get("duplicate")):
            check.violations.append(f"run {sent.run_id} was sent twice and the second copy was not a duplicate")
        got = facts.occurrences_by_run.get(stored.id or 0, 0)
        if got != len(sent.failures):
            resent = " (CI sent it twice)" if sent.resent else ""
            check.violations.append(
                f"run {sent.run_id}{resent} reported {len(sent.failures)} failures; "
                f"the database holds {got} occurrences"
            )
    for incident in facts.incidents:
        counted = facts.occurrences.get(incident.id or 0, 0)
        if counted != incident.occurrence_count:
            check.violations.append(
                f"{incident.key} says {incident.occurrence_count} occurrences; {counted} are stored"
            )
    return check


def check_one_card(run: SimulationRun, facts: Facts) -> Check:
    check = Check("one_card", "Every incident has exactly one card in Slack, and the bot knows which", 0)
    cards: dict[int, list[SnapMessage]] = defaultdict(list)
    for message in run.snapshot.top_level():
        incident_id = _outbox_id(message, CARD_EVENT)
        if incident_id is not None:
            cards[int(incident_id)].append(message)
    known = {i.id for i in facts.incidents}
    for incident_id, found in cards.items():
        if incident_id not in known:
            check.violations.append(f"a card for INC-{incident_id} (ts {found[0].ts}) has no incident")
    for incident in facts.incidents:
        check.checked += 1
        found = cards.get(incident.id or 0, [])
        where = f"#{incident.channel}"
        if not found:
            check.violations.append(f"{incident.key} has no card in {where} (card_ts={incident.card_ts!r})")
            continue
        if len(found) > 1:
            check.violations.append(
                f"{incident.key} has {len(found)} cards in {where}: ts " + ", ".join(_posted(m) for m in found)
            )
        if incident.card_ts not in {m.ts for m in found}:
            check.violations.append(
                f"{incident.key} records card_ts={incident.card_ts!r} but its card in {where} is ts {found[0].ts}"
            )
        wrong = [m.ts for m in found if m.channel != incident.channel]
        if wrong:
            check.violations.append(f"{incident.key}'s card is in the wrong channel (ts {', '.join(wrong)})")
    return check


def check_escalations(run: SimulationRun, facts: Facts) -> Check:
    check = Check("escalations", "Every page the bot queued reached its person and PagerDuty exactly once", 0)
    dms = _dm_messages(run)
    triggers: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for event in run.snapshot.pagerduty:
        if event.get("event_action") == "trigger" and event.get("_received_at"):
            key = (str(event.get("dedup_key")), str(event.get("routing_key")))
            triggers[key].append(datetime.fromisoformat(event["_received_at"]))
    for incident in facts.incidents:
        iid = incident.id or 0
        # when each level was due is the outside check's business (outside.check_timed_rule): here
        # only what the bot recorded against what reached the fakes
        fired = [e for e in facts.events(iid, "escalated") if e.source == "timer"]
        check.checked += len(facts.rows(*PAGE_KINDS, incident_id=iid))
        levels = Counter(int(e.data.get("level", 0)) for e in fired)
        for level, count in sorted(levels.items()):
            if count > 1:
                check.violations.append(f"{incident.key}: escalation level {level} fired {count} times")
        for marked in facts.events(iid, "severity"):
            rule = facts.playbook(incident.playbook).policy.severities.get(str(marked.data.get("severity")))
            if rule is None or not rule.pages:
                continue
            check.checked += 1
            pages = [e for e in facts.events(iid, "paged") if e.data.get("reason") == "severity" and e.at >= marked.at]
            if not pages:
                check.violations.append(
                    f"{incident.key} was marked {marked.data.get('severity')} at {_when(marked.at)} "
                    f"but nobody was paged ({', '.join(rule.pages)} should have been)"
                )
        paged = {e.data.get("step") for e in facts.events(iid, "paged") if e.data.get("reason") == "unclassified"}
        for level in sorted(levels):
            if str(level) not in paged:
                check.violations.append(f"{incident.key}: escalation level {level} fired but paged nobody")
        # every page row that went out reached its person exactly once
        for row in facts.rows("dm", incident_id=iid):
            if row.state != "done":
                continue  # not delivered: the outbox check reports it
            got = len(dms.get(row.id or 0, []))
            want = 0 if _skipped(row) else 1
            if got != want:
                check.violations.append(
                    f"{incident.key}: page DM (outbox {row.id}, {row.payload.get('reason')} "
                    f"step {row.payload.get('step')}) to {row.payload.get('user')} arrived {got} times"
                )
        check.violations.extend(_pagerduty_mismatches(facts, incident, triggers))
    return check


def _pagerduty_mismatches(
    facts: Facts, incident: Incident, triggers: dict[tuple[str, str], list[datetime]]
) -> list[str]:
    """Each delivered trigger reached PagerDuty while its row was being delivered, and PagerDuty
    received no trigger that no row sent. A row retried after a crash or a timeout may have
    reached PagerDuty twice: PagerDuty folds triggers with one dedup_key into one alert (the
    Events API's idempotency), so that is one page, not two."""
    found: list[str] = []
    windows: dict[str, list[tuple[datetime, datetime, OutboxItem]]] = defaultdict(list)
    for row in facts.rows("pagerduty", incident_id=incident.id):
        key = _routing_key(facts.playbook(incident.playbook), row)
        if row.state == "done" and not _skipped(row) and key and row.done_at is not None:
            windows[key].append((as_utc(row.created_at), as_utc(row.done_at), row))
    keys = set(windows) | {k for (dedup, k) in triggers if dedup == incident.key}
    for key in sorted(keys):
        received = triggers.get((incident.key, key), [])
        for start, done, row in windows.get(key, []):
            if not any(start <= at <= done for at in received):
                found.append(
                    f"{incident.key}: PagerDuty trigger outbox {row.id} ({row.payload.get('reason')} "
                    f"step {row.payload.get('step')}) is marked delivered at {_when(done)} but PagerDuty never got it"
                )
        for at in received:
            if not any(start <= at <= done for start, done, _ in windows.get(key, [])):
                found.append(
                    f"{incident.key}: PagerDuty got a trigger at {_when(at)} (service …{key[-6:]}) nobody sent"
                )
    return found


def _routing_key(runbook: Runbook, row: OutboxItem) -> str | None:
    found = runbook.target(row.payload.get("role", ""), row.payload.get("class"))
    return found.target.pagerduty_routing_key if found else None


def _dm_messages(run: SimulationRun) -> dict[int, list[SnapMessage]]:
    found: dict[int, list[SnapMessage]] = defaultdict(list)
    for message in run.snapshot.messages:
        if message.channel.startswith("D"):
            outbox = _outbox_id(message, POST_EVENT)
            if outbox is not None:
                found[int(outbox)].append(message)
    return found


def check_outbox(run: SimulationRun, facts: Facts) -> Check:
    check = Check("outbox", "No effect was lost, and none was delivered twice", len(facts.outbox))
    for row in facts.outbox:
        about = f"outbox {row.id} ({row.kind}" + (f" for INC-{row.incident_id}" if row.incident_id else "") + ")"
        if row.state in ("pending", "sending"):
            check.violations.append(
                f"{about} is still {row.state} at the end (next attempt {_when(row.next_attempt_at)}, "
                f"{row.attempts} attempts, last error: {row.last_error or 'none'})"
            )
        elif row.state == "dead":
            check.violations.append(f"{about} was dead-lettered at {_when(row.done_at)}: {row.last_error}")
    posts: dict[int, list[SnapMessage]] = defaultdict(list)
    for message in run.snapshot.messages:
        outbox = _outbox_id(message, POST_EVENT)
        if outbox is not None:
            posts[int(outbox)].append(message)
    for outbox_id, found in sorted(posts.items()):
        if len(found) > 1:
            check.violations.append(
                f"outbox {outbox_id} was posted {len(found)} times in #{found[0].channel}: ts "
                + ", ".join(_posted(m) for m in found)
            )
    parts: Counter[tuple[str, Any]] = Counter()
    for message in run.snapshot.messages:
        metadata = message.metadata or {}
        if metadata.get("event_type") == CHECKLIST_EVENT:
            payload = metadata.get("event_payload") or {}
            parts[(str(payload.get("checklist")), payload.get("part"))] += 1
    for (checklist, part), count in sorted(parts.items()):
        if count > 1:
            check.violations.append(f"checklist {checklist} part {part} was posted {count} times")
    for row in facts.rows("thread_post", "run_escalation", "ops_notice"):
        if row.state == "done" and not _skipped(row) and row.kind != "ops_notice" and not posts.get(row.id or 0):
            check.violations.append(
                f"outbox {row.id} ({row.kind}"
                + (f" for INC-{row.incident_id}" if row.incident_id else "")
                + f") is marked delivered at {_when(row.done_at)} but no such message is in Slack"
            )
    return check


def check_timeline(run: SimulationRun, facts: Facts) -> Check:
    check = Check("timeline", "Every state change has a timeline row (the audit trail is complete)", 0)
    for incident in facts.incidents:
        iid = incident.id or 0
        key = incident.key
        check.checked += 1

        def missing(what: str) -> None:
            check.violations.append(f"{key}: {what}")  # noqa: B023 - used at once, in this iteration

        events = facts.events(iid)
        kinds = Counter(e.kind for e in events)
        if kinds["created"] != 1:
            missing(f"{kinds['created']} 'created' rows")
        if incident.classified_at is not None and not kinds["classified"]:
            missing(f"classified at {_when(incident.classified_at)} without a 'classified' row")
        if incident.failure_class:
            classes = [e.data.get("class") for e in events if e.kind in ("classified", "reclassified")]
            if not classes or classes[-1] != incident.failure_class:
                missing(f"class {incident.failure_class} is not the last class the timeline records ({classes})")
        if incident.status == "resolved" and not kinds["resolved"]:
            missing(f"resolved at {_when(incident.resolved_at)} without a 'resolved' row")
        if incident.status == "open" and kinds["resolved"] > kinds["reopened"]:
            missing(f"open, but the timeline resolves it {kinds['resolved']} times and reopens it {kinds['reopened']}")
        if incident.assignee and not (kinds["acknowledged"] or kinds["assigned"]):
            missing(f"assigned to {incident.assignee} without an 'acknowledged' or 'assigned' row")
        preset = incident.severity_source in ("rule", "default", "class")  # set as it opened, by the playbook
        if incident.severity != facts.playbook(incident.playbook).policy.default_severity and not preset:
            severities = [e.data.get("severity") for e in events if e.kind == "severity"]
            if not severities or severities[-1] != incident.severity:
                missing(f"severity {incident.severity} without a matching 'severity' row")
        if kinds["escalated"] != incident.escalation_level:
            missing(f"escalation level {incident.escalation_level} but {kinds['escalated']} 'escalated' rows")
        if incident.bead_state == "filed":
            filed = [e for e in events if e.kind == "bead_filed" and e.data.get("bead") == incident.bead_id]
            if not filed:
                missing(f"bead {incident.bead_id} filed without a 'bead_filed' row")
        # the resolving milestone is the playbook's own (seed 002's is "closed"): its row is 'resolved'
        if incident.milestone and incident.milestone != facts.playbook(incident.playbook).policy.resolving.key:
            milestones = [e.data.get("milestone") for e in events if e.kind == "milestone"]
            if not milestones or milestones[-1] != incident.milestone:
                missing(f"milestone {incident.milestone} without a matching 'milestone' row")
    return check


def check_every_failure_handled(run: SimulationRun, facts: Facts) -> Check:
    check = Check(
        "every_failure_handled",
        "Every failure ended in a filed bead, an escalation the policy defines, or a resolution",
        0,
    )
    for incident in facts.incidents:
        check.checked += 1
        kinds = {e.kind for e in facts.events(incident.id or 0)}
        # an alert's escalation is the page to its failure mode's owner (its runbook says so)
        ends = {"bead_filed", "escalated", "resolved"} | ({"paged"} if incident.repository == "alertmanager" else set())
        if facts.playbook(incident.playbook).policy.classify_within is None and is_posted(incident.card_ts):
            continue  # no timed rule (seeds 002, 003): its card in its channel is all the policy promises
        if not (ends & kinds):
            check.violations.append(
                f"{incident.key} ({incident.scenario_id or 'no scenarioId'} / "
                f"{incident.invariant_id or 'no invariantId'}, opened {_when(incident.created_at)}) "
                "has no bead, no escalation and no resolution"
            )
    posts = {int(i) for m in run.snapshot.messages if (i := _outbox_id(m, POST_EVENT)) is not None}
    for stored in facts.runs:
        if not stored.multi_prefix:
            continue
        check.checked += 1
        rows = [r for r in facts.rows("run_escalation") if r.dedup_key == f"run-escalation:{stored.id}"]
        if not rows or rows[0].state != "done":
            check.violations.append(
                f"run {stored.run_id} failed across {', '.join(stored.scenario_prefixes)} but was not escalated"
            )
        elif rows[0].id not in posts:
            check.violations.append(f"run {stored.run_id}'s escalation (outbox {rows[0].id}) is not in Slack")
    return check


def check_beads(run: SimulationRun, facts: Facts) -> Check:
    check = Check("one_bead", "One bead per incident, and every bead the bot recorded exists in its tracker", 0)
    by_fingerprint: dict[str, list[str]] = defaultdict(list)
    for bead in run.snapshot.beads:
        metadata = bead.get("metadata") or {}
        fingerprint = metadata.get("ci_fingerprint") if isinstance(metadata, dict) else None
        if fingerprint:
            by_fingerprint[str(fingerprint)].append(str(bead.get("id")))
    for issue in run.snapshot.github_issues:
        body = str(issue.get("body") or "")
        marker = "<!-- triagebot-fingerprint: "
        if marker in body:
            by_fingerprint[body.split(marker, 1)[1].split(" ", 1)[0]].append(f"gh-{issue['number']}")
    tracked = {str(b.get("id")) for b in run.snapshot.beads} | {f"gh-{i['number']}" for i in run.snapshot.github_issues}
    # A failure that comes back after its incident was resolved opens a new incident with the same
    # fingerprint (no flake policy to reopen it): the earlier incident's bead is that one's, not a lost one.
    known = {i.bead_id for i in facts.incidents if i.bead_id}
    having = Counter(i.fingerprint for i in facts.incidents if i.bead_id)
    for incident in facts.incidents:
        check.checked += 1
        beads = by_fingerprint.get(incident.fingerprint, [])
        if len(beads) > max(1, having[incident.fingerprint]):
            check.violations.append(f"{incident.key} has {len(beads)} beads: {', '.join(beads)}")
        if incident.bead_id and incident.bead_id not in tracked:
            check.violations.append(f"{incident.key} records bead {incident.bead_id}, which the tracker does not have")
        if incident.bead_state == "pending":
            check.violations.append(f"{incident.key}'s bead is still pending at the end")
        if incident.bead_state == "failed":
            check.violations.append(f"{incident.key}'s bead filing failed and was never filed")
        lost = [b for b in beads if b not in known]
        if lost and not incident.bead_id:
            check.violations.append(f"{incident.key} has bead {lost[0]} in the tracker but does not know it")
    return check


CHECKS = (
    check_occurrences,
    check_one_card,
    check_escalations,
    check_outbox,
    check_timeline,
    check_every_failure_handled,
    check_beads,
)


def check_all(run: SimulationRun, facts: Facts | None = None) -> list[Check]:
    """Every check; reads the database afresh unless ``facts`` are given."""
    if facts is None:
        engine = make_engine(run.database_url)
        try:
            playbooks = load_playbooks(run.runbook_dir)
            facts = Facts.load(engine, playbooks.default, list(playbooks))
        finally:
            engine.dispose()
    checks = [check(run, facts) for check in CHECKS] + check_outside(run, facts.runbook, facts.playbooks)
    # a promise the run never meant to test is left out, unless it was broken all the same
    skip = not_applicable(run, facts.playbooks)
    checks = [c for c in checks if c.key not in skip or c.violations]
    for check in checks:
        if check.checked == 0 and not check.violations:
            check.violations.append("examined no cases: a promise checked against nothing is not kept")
    return checks
