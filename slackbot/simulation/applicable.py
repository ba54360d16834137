"""Which promises a run was meant to put to the test, decided from what it planned to send.

"A check that examined nothing is a failure" holds whenever the run was meant to send such cases:
a run of seed 001's stories that pages nobody about its SEV-1 has broken a promise. A team that
adopts one playbook alone (no timed rule, no alert rule, no CI at all) was never meant to send
those cases, and a check of them can only examine nothing. Whether a promise applies is read from
the plan alone: the playbooks' YAML, the CI schedule and its stories, the alerts Alertmanager is
scheduled to fire, whether people answer. Never from what the bot did: a bot that pages nobody
must not make the paging promises disappear.

A promise that does not apply is left out of the checks, unless it found a violation anyway (a
page nobody's plan called for is still wrong); the report names it and says why in one line.
"""

from __future__ import annotations

from collections.abc import Sequence

from slackbot.config import Playbook as Runbook
from slackbot.config.policy import EscalationLevel, SeverityRule
from slackbot.config.targets import Role
from slackbot.simulation.faults import GITHUB_OUTAGE
from slackbot.simulation.records import SimulationRun
from slackbot.simulation.traffic import SEV1


def _routing_keys(book: Runbook, roles: Sequence[Role], classes: Sequence[str | None]) -> bool:
    return any(t.target.pagerduty_routing_key for c in classes for t in book.targets(list(roles), c))


def _levels(book: Runbook) -> list[EscalationLevel]:
    return list(book.policy.escalation.levels) if book.policy.escalation else []


def _rule(book: Runbook, severity: str | None) -> SeverityRule:
    return book.severity_rule(severity or book.policy.default_severity)


def not_applicable(run: SimulationRun, playbooks: Sequence[Runbook]) -> dict[str, str]:
    """Check key -> why the run was never meant to send it a case (empty: every promise applies)."""
    traffic, books = run.traffic, {p.name: p for p in playbooks}
    default = traffic.runbook.name
    ci = [books[n] for n in dict.fromkeys(r.playbook or default for r in traffic.planned) if n in books]
    alerts = [a for a in (run.alerts.planned if run.alerts else ()) if a.status == "firing" and a.playbook in books]
    stories = [(s, books.get(s.playbook or default)) for s in traffic.stories]
    timed = [b for b in ci if b.policy.classify_within is not None and b.policy.escalation is not None]
    sev1 = [b for s, b in stories if b is not None and s.kind == SEV1 and "SEV-1" in b.policy.severities]
    sev1_pages = [b for b in sev1 if b.policy.severities["SEV-1"].pages]
    opening_pages = [b for b in ci if _rule(b, None).pages]
    contract = [
        b
        for s, b in stories
        if b is not None
        and b.missing_ids_class
        and b.policy.id_contract != "none"
        and any(not (r.get("scenarioId") and r.get("invariantId")) for r in s.results)
    ]
    responders = run.config.responders
    why: dict[str, str] = {}

    no_ci = "no CI run was scheduled (every failure is an Alertmanager alert)"
    if not ci:
        why["occurrences"] = why["entry_points"] = no_ci
        why["milestones_from_policy"] = no_ci + "; alerts follow their runbooks instead"
    if not timed:
        why["timed_rule"] = "no playbook with CI traffic has a timed rule (classify_within and escalation)"
    if not alerts:
        why["alert_pages"] = "no Alertmanager alert was scheduled to fire (no playbook has alert rules)"
    if not sev1_pages:
        why["severity_pages"] = "no SEV-1 story was planned in a playbook whose SEV-1 pages anyone"
    if not any(b.policy.multi_prefix_threshold and b.run_escalation_class for b in ci):
        why["run_escalations"] = "no playbook with CI traffic has a multi_prefix_threshold with a class to escalate to"
    if not (timed or sev1_pages or opening_pages or alerts):
        why["escalations"] = (
            "nothing planned pages anyone (no timed rule, no paging SEV-1 story, no paging default severity, no alert)"
        )
    if not (responders or alerts or contract):
        why["no_late_pages"] = (
            "nobody was meant to classify an incident (nobody answering, no alert rule, no id contract story)"
        )
    pd = (
        any(_routing_keys(b, list(level.notify), [None, *b.classes]) for b in timed for level in _levels(b))
        or any(_routing_keys(b, b.policy.severities["SEV-1"].pages, [None, *b.classes]) for b in sev1_pages)
        or any(
            _routing_keys(books[a.playbook], ["owner", *_rule(books[a.playbook], a.severity).pages], [a.failure_class])
            for a in alerts
        )
    )
    if not pd:
        why["pagerduty_services"] = "no page planned goes to a PagerDuty service routing.yml names"
    beads = (
        bool(contract)
        or any(b.policy.severities["SEV-1"].file_bead for b in sev1)
        or any(_rule(b, None).file_bead for b in ci)
        or any(_rule(books[a.playbook], a.severity).file_bead for a in alerts)
        or (responders and any(r.files_bead or r.bead_before_resolve for b in ci for r in b.classes.values()))
    )
    if not beads:
        why["beads_from_policy"] = (
            "no bead was planned (no id contract story, no SEV-1 or alert that files one, nobody classifying "
            "into a class that files one)"
        )
    outages = run.faults.by_kind(GITHUB_OUTAGE)
    if outages and not any("run" in f.params for f in outages):
        why["github_outage"] = "GitHub's outage was armed, and no failed run came through the webhook to meet it"
    return why


def one_line(why: dict[str, str]) -> str:
    """The report's line on the promises that did not apply."""
    return "Promises that did not apply: " + "; ".join(f"{key}: {reason}" for key, reason in sorted(why.items())) + "."
