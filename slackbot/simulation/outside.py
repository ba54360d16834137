"""The promises checked from the outside: what must have happened, from the playbook's YAML and the
traffic actually sent, against what the fakes recorded.

Nothing here reads the bot's database. When an escalation was due comes from ``classify_within``,
``escalation.levels`` and ``repeat_every`` in policy.yml and from the moment CI's report reached the
bot; whom it must reach comes from routing.yml; whether it fired comes from the DMs in the Slack
emulator and the events the fake PagerDuty received; which beads must exist comes from the contract,
the severities that file one and the classes that do, and is compared with bd's listing and the
fake GitHub's issues. The simulated people say when they classified, resolved or marked a severity
(they did it through Slack, so that is traffic too).

A bot that sets its own deadline wrong (three times ``classify_within``, say) cannot pass by
agreeing with itself: its pages arrive at the wrong time, to the wrong people, or not at all, and a
check says which incident, which level, when it was due and what arrived instead. A check that
examined nothing fails (``check_all`` adds that violation): "0 checked, PASS" proves nothing.
"""

from __future__ import annotations

import html
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from slackbot.config import Playbook as Runbook
from slackbot.config.targets import Role
from slackbot.outbox.slack_deliveries import CARD_EVENT
from slackbot.simulation.alerts import AlertSend
from slackbot.simulation.doors import DOORS, FETCHING_DOORS, SLACK_DOORS, door_taken
from slackbot.simulation.faults import GITHUB_OUTAGE
from slackbot.simulation.records import Check, SimulationRun, SnapMessage
from slackbot.simulation.runbook_checks import check_runbooks_end_to_end, failed_step_keys
from slackbot.simulation.traffic import SentFailure
from slackbot.slack.card import SUGGESTION_BLOCK

# How long a page may take to reach its person after it came due: the DM lane is paced at one post
# a second, a 429 burst makes it wait out Retry-After, a crash costs a 60 s lease. Generous next to
# that, and a quarter of the 20-minute rule, so a deadline that moved is still caught.
ARRIVAL = timedelta(minutes=5)


def _when(value: datetime | None) -> str:
    return value.strftime("%a %d %b %H:%M:%S") if value else "never"


def _at(message: SnapMessage) -> datetime:
    return datetime.fromtimestamp(message.at, UTC)


def label_of(runbook: Runbook, failure: SentFailure) -> str:
    """How the card and the pages name a failure (``domain.ids.identity``, written out again so a
    bug there shows here)."""
    if failure.scenario_id or failure.invariant_id:
        return f"{failure.scenario_id or 'no scenarioId'} / {failure.invariant_id or 'no invariantId'}"
    if runbook.policy.id_contract != "none":
        return "no scenarioId / no invariantId"
    return failure.test_identity


def breaks_contract(runbook: Runbook, failure: SentFailure) -> bool:
    """policy.yml's ``id_contract``, read here rather than through the playbook's own method, so a
    bug in the bot's contract check cannot move the expectation with it."""
    contract = runbook.policy.id_contract
    if contract == "both":
        return not (failure.scenario_id and failure.invariant_id)
    return contract == "scenario" and not failure.scenario_id


def _symptom(message: str) -> str:
    line = next((part.strip() for part in message.splitlines() if part.strip()), "")
    return line[:30]


@dataclass
class Failure:
    """One distinct failure as CI sent it (grouped the way the playbook's id contract says)."""

    label: str
    symptom: str
    contract: bool
    test_file: str
    kind: str
    scenario_id: str | None
    invariant_id: str | None
    sent: list[datetime] = field(default_factory=list)
    alert: AlertSend | None = None  # an Alertmanager alert (its playbook's rule presets class and severity)
    playbook: Runbook | None = None  # whose failure it is: every expectation comes from this one's YAML
    channel: str = ""  # where routing.yml sends its card (its suite's channel, else the playbook's default)
    # sends whose report GitHub refused to hand out (its outage): the bot only had it once a retry got
    # it, at the time the fake GitHub handed the report out (send -> that time)
    delayed: dict[datetime, datetime] = field(default_factory=dict)

    @property
    def book(self) -> Runbook:
        assert self.playbook is not None
        return self.playbook


@dataclass
class Card:
    key: str
    message: SnapMessage
    failure: Failure | None
    opened: datetime | None  # when CI's report that opened it reached the bot


@dataclass
class PeopleSaid:
    classified: dict[str, datetime] = field(default_factory=dict)  # first classification
    # Every (re)classification and severity with its place in what people did: a responder acts
    # several times at one virtual instant (ack, SEV-1, classify), and a SEV-1 marked before the
    # classification pages the owner of the class the incident had then.
    classes: dict[str, list[tuple[datetime, int, str]]] = field(default_factory=dict)  # (at, place, class)
    resolved: dict[str, list[datetime]] = field(default_factory=dict)
    severities: list[tuple[datetime, str, str, int]] = field(default_factory=list)  # (at, incident, severity, place)


@dataclass
class World:
    """The expectation side (traffic and YAML) and the observation side (the fakes), joined by the
    card each failure got."""

    runbook: Runbook
    failures: list[Failure]
    cards: dict[str, Card]
    dms: dict[str, list[tuple[datetime, str, str]]]  # incident -> (at, user, reason)
    people: PeopleSaid
    end: datetime
    playbooks: list[Runbook] = field(default_factory=list)
    shown: dict[int, str] = field(default_factory=dict)  # failure -> the suggestion its card shows

    @classmethod
    def of(cls, run: SimulationRun, runbook: Runbook, playbooks: Sequence[Runbook] = ()) -> World:
        failures: dict[tuple[object, ...], Failure] = {}
        books = {p.name: p for p in playbooks}
        refused = {(repo, run_id) for repo, run_id, _ in run.snapshot.github_refused}
        for sent in run.traffic.sent:
            # the playbook the traffic was written for, by its match rules and suites: its YAML alone
            # says what must happen to the run's failures
            book = books.get(sent.playbook) or runbook
            for failure in sent.failures:
                contract = breaks_contract(book, failure)
                both = failure.scenario_id and failure.invariant_id
                identity = (
                    (book.name, "ids", failure.scenario_id, failure.invariant_id)
                    if both
                    else (book.name, "test", failure.test_identity)
                )
                found = failures.get(identity)
                if found is None:
                    found = failures[identity] = Failure(
                        label_of(book, failure),
                        _symptom(failure.message),
                        contract,
                        failure.test_file,
                        failure.kind,
                        failure.scenario_id,
                        failure.invariant_id,
                        playbook=book,
                        channel=_channel(book, sent.suite),
                    )
                found.sent.append(sent.at)
                where = (str(sent.report["run"]["repository"]), sent.run_id)
                if where in refused and where in run.snapshot.github_fetched_at:
                    found.delayed[sent.at] = run.snapshot.github_fetched_at[where]
        for alert in run.alerts.firing() if run.alerts else []:
            book = books.get(alert.playbook) or runbook
            failures[("alert", alert.alertname)] = Failure(
                alert.alertname,
                alert.summary[:30],
                False,
                "",
                "alert",
                alert.alertname,
                None,
                [alert.at],
                alert,
                playbook=book,
                channel=_channel(book, "alerts"),
            )
        cards: dict[str, Card] = {}
        for message in run.snapshot.top_level():
            metadata = message.metadata or {}
            if metadata.get("event_type") != CARD_EVENT:
                continue
            head, _, label = message.header.partition(" · ")
            incident = head.split(" ")[-1]
            text = html.unescape(message.text)
            matching = [f for f in failures.values() if f.label == label.strip() and f.symptom in text]
            match = matching[0] if matching else None
            opened = max((t for t in match.sent if t <= _at(message)), default=None) if match else None
            if match is not None and opened in match.delayed:
                # its report reached the bot when a retry downloaded it: the timed rule counts from
                # then (the card's post may come later still, behind a paced or rate-limited lane)
                opened = match.delayed[opened]
            cards[incident] = Card(incident, message, match, opened)
        dms: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
        for message in run.snapshot.messages:
            if not message.channel.startswith("D") or "You are paged for *" not in message.text:
                continue
            incident = message.text.split("You are paged for *", 1)[1].split("*", 1)[0]
            reason = message.text.split("Reason: ", 1)[1].split(".", 1)[0] if "Reason: " in message.text else ""
            dms[incident].append((_at(message), message.channel[1:], reason))
        people = PeopleSaid()
        for place, done in enumerate(run.people.done):
            if "nothing was changed" in done.answer:
                continue  # refused (not a responder): it promised nothing
            if done.what.startswith(("classified it ", "reclassified it ")):
                people.classified.setdefault(done.incident, done.at)
                people.classes.setdefault(done.incident, []).append((done.at, place, done.what.split()[2]))
            elif done.what.startswith("resolved it") and not ("bead" in done.answer and "resolved" not in done.answer):
                people.resolved.setdefault(done.incident, []).append(done.at)
            elif done.what.startswith("marked it ") and " is now " in done.answer:  # refused when resolved
                people.severities.append((done.at, done.incident, done.what.split()[2], place))
        shown = {
            id(card.failure): block.removeprefix(SUGGESTION_BLOCK)
            for card in cards.values()
            if card.failure is not None
            for block in card.message.block_ids
            if block.startswith(SUGGESTION_BLOCK)
        }
        # A card people classified shows no suggestion in its last version: the one it offered
        # when they first acted on it is whose people owned it until then.
        for done in run.people.done:
            card = cards.get(done.incident)
            if done.shown and card is not None and card.failure is not None:
                shown.setdefault(id(card.failure), done.shown)
        return cls(runbook, list(failures.values()), cards, dms, people, run.drained_at, list(playbooks), shown)

    def suggested(self, failure: Failure) -> str | None:
        """The class whose people own an unclassified failure: the suggestion its card shows in
        Slack (the bot weighs signals the YAML alone cannot predict), else the test file's scope
        glob in routing.yml, else the likely class the taxonomy gives its scenario or invariant prefix."""
        shown = self.shown.get(id(failure))
        if shown:
            return shown
        book = failure.book
        owner = book.owner_for_path(failure.test_file)
        if owner:
            return owner[0]
        for identifier, entries in (
            (failure.scenario_id, book.taxonomy.scenarios),
            (failure.invariant_id, book.taxonomy.invariants),
        ):
            prefix = identifier.split("-", 1)[0] if identifier and "-" in identifier else None
            entry = next((e for e in entries if prefix and e.prefix == prefix), None)
            if entry is not None and entry.likely_class is not None:
                return entry.likely_class
        return None

    def owning(self, key: str, failure: Failure, at: datetime, place: int | None = None) -> str | None:
        """The class whose people a page at ``at`` goes to: the last one chosen by then (before
        ``place`` in what people did, when given), else the suggestion."""
        chosen = [
            c
            for when, chosen_at, c in self.people.classes.get(key, [])
            if when < at or (when == at and (place is None or chosen_at < place))
        ]
        return chosen[-1] if chosen else self.suggested(failure)

    def pagerduty_keys(self, book: Runbook, roles: list[Role], failure_class: str | None) -> set[str]:
        return {
            t.target.pagerduty_routing_key for t in book.targets(roles, failure_class) if t.target.pagerduty_routing_key
        }

    def users(self, book: Runbook, roles: list[Role], failure_class: str | None) -> set[str]:  # who gets the DM
        return {t.dm_user for t in book.targets(roles, failure_class) if t.dm_user}

    def stop(self, key: str) -> datetime:
        """Until when an unclassified incident keeps escalating: people classified or resolved it,
        or the run ended."""
        moments = [self.end, *self.people.resolved.get(key, [])]
        if key in self.people.classified:
            moments.append(self.people.classified[key])
        return min(moments)


def check_cards_per_failure(run: SimulationRun, world: World) -> Check:
    check = Check(
        "cards_from_traffic",
        "Every distinct failure CI sent got its own card (grouped by its ids), in its playbook's channel",
        0,
    )
    by_failure: dict[int, list[Card]] = defaultdict(list)
    for card in world.cards.values():
        if card.failure is None:
            check.violations.append(
                f"{card.key}'s card ({card.message.header!r}, ts {card.message.ts}) matches no failure CI sent"
            )
        else:
            by_failure[id(card.failure)].append(card)
    for failure in world.failures:
        check.examined(failure.book.name)
        cards = by_failure.get(id(failure), [])
        for card in cards:
            if card.message.channel != failure.channel:
                check.violations.append(
                    f"{card.key} ({failure.label}) is a failure of the {failure.book.name} playbook; its card "
                    f"went to {card.message.channel}, routing.yml sends it to {failure.channel}"
                )
        resolved = sum(len(world.people.resolved.get(c.key, [])) for c in cards)
        if not cards:
            check.violations.append(
                f"{failure.label} ({failure.symptom}…), sent {len(failure.sent)} times from {_when(failure.sent[0])}, "
                "has no card"
            )
        elif len(cards) > 1 + resolved:
            check.violations.append(
                f"{failure.label} has {len(cards)} cards ({', '.join(c.key for c in cards)}) but was resolved "
                f"{resolved} times"
            )
    return check


def _levels(world: World, card: Card) -> list[tuple[int, datetime, set[str]]]:
    """(level, due, people to page) for the timed rule, from policy.yml and routing.yml alone."""
    if card.opened is None or card.failure is None:
        return []
    book = card.failure.book
    policy = book.policy
    if policy.classify_within is None or policy.escalation is None:
        return []  # this playbook has no timed rule
    if card.failure.contract and book.missing_ids_class:
        return []  # classified by the contract check the moment it opened: no timer
    if card.failure.alert is not None:
        return []  # its playbook's alert rule presets the class: no timer
    escalation = policy.escalation
    owning = world.suggested(card.failure)
    found = []
    for step in range(len(escalation.levels) + escalation.max_repeats):
        due = card.opened + policy.classify_within + step * escalation.repeat_every
        level = escalation.levels[min(step, len(escalation.levels) - 1)]
        found.append((step + 1, due, world.users(book, list(level.notify), owning)))
    return found


def check_timed_rule(run: SimulationRun, world: World) -> Check:
    check = Check(
        "timed_rule",
        "Every incident nobody classified in time paged the people routing.yml names, at each level, when due",
        0,
    )
    for card in world.cards.values():
        pages = [(at, user) for at, user, reason in world.dms.get(card.key, []) if reason == "unclassified"]
        stop = world.stop(card.key)
        claimed: set[int] = set()
        levels = _levels(world, card)
        book = card.failure.book.name if card.failure else world.runbook.name
        within = card.failure.book.policy.classify_within if card.failure else None
        if levels:
            check.examined(book)  # a card under the timed rule: no page may come before its level is due
        for level, due, users in levels:
            if due >= stop:
                continue
            optional = due > stop - ARRIVAL  # classified (or the run ended) moments after it came due
            for user in sorted(users):
                check.examined(book)
                match = next(
                    (
                        i
                        for i, (at, who) in enumerate(pages)
                        if i not in claimed and who == user and due <= at <= due + ARRIVAL
                    ),
                    None,
                )
                if match is not None:
                    claimed.add(match)
                elif not optional:
                    got = [_when(at) for at, who in pages if who == user]
                    check.violations.append(
                        f"{card.key} ({card.failure.label if card.failure else '?'}, opened {_when(card.opened)}): "
                        f"level {level} was due at {_when(due)} ({within} after it "
                        f"opened), but <@{user}> got no page by {_when(due + ARRIVAL)}; their pages for it: "
                        f"{', '.join(got) or 'none'}"
                    )
        for index, (at, user) in enumerate(pages):
            if index not in claimed and at <= stop:
                due_times = [due for _, due, users in levels if user in users]
                check.violations.append(
                    f"{card.key}: <@{user}> was paged at {_when(at)} as unclassified, but no level was due for them "
                    f"then (due: {', '.join(_when(d) for d in due_times) or 'never'})"
                )
    return check


def check_no_late_pages(run: SimulationRun, world: World) -> Check:
    check = Check("no_late_pages", "Nobody was paged about an unclassified incident after it had been classified", 0)
    for card in world.cards.values():
        classified = world.people.classified.get(card.key)
        if card.failure is not None and card.failure.contract and card.failure.book.missing_ids_class:
            classified = card.opened  # the contract check classifies it as it opens
        if card.failure is not None and card.failure.alert is not None:
            classified = card.opened  # the alert rule presets its class
        if classified is None:
            continue
        check.examined(card.failure.book.name if card.failure else world.runbook.name)
        for at, user, reason in world.dms.get(card.key, []):
            if reason == "unclassified" and at > classified + timedelta(seconds=5):
                check.violations.append(
                    f"{card.key} was classified at {_when(classified)} but <@{user}> was paged as unclassified "
                    f"at {_when(at)}"
                )
    return check


def check_pagerduty(run: SimulationRun, world: World) -> Check:
    check = Check(
        "pagerduty_services",
        "PagerDuty got triggers for exactly the services routing.yml names for the levels and severities due",
        0,
    )
    received: dict[str, dict[str, list[datetime]]] = defaultdict(lambda: defaultdict(list))
    for event in run.snapshot.pagerduty:
        if event.get("event_action") == "trigger" and event.get("_received_at"):
            at = datetime.fromisoformat(str(event["_received_at"]))
            received[str(event.get("dedup_key"))][str(event.get("routing_key"))].append(at)
    for card in world.cards.values():
        if card.failure is None:
            continue
        stop = world.stop(card.key)
        book = card.failure.book
        owning = world.suggested(card.failure)
        required: dict[str, datetime] = {}  # routing key -> when it became due
        allowed: set[str] = set()
        escalation = book.policy.escalation
        for level, due, _ in _levels(world, card):
            if due >= stop or escalation is None:
                continue
            notify = list(escalation.levels[min(level - 1, len(escalation.levels) - 1)].notify)
            for key in world.pagerduty_keys(book, notify, owning):
                allowed.add(key)
                if due <= stop - ARRIVAL:
                    required.setdefault(key, due)
        other: set[str] = set()  # services a severity or an alert pages too (at other moments)
        for at, key, severity, place in world.people.severities:
            rule = book.policy.severities.get(severity)
            if key == card.key and rule is not None:
                chosen = world.owning(key, card.failure, at, place)
                for routing_key in world.pagerduty_keys(book, list(rule.pages), chosen):
                    allowed.add(routing_key)
                    other.add(routing_key)
                    required.setdefault(routing_key, at)
        alert = card.failure.alert
        if alert is not None:
            playbook = next(p for p in world.playbooks if p.name == alert.playbook)
            rule = playbook.policy.severities.get(alert.severity or playbook.policy.default_severity)
            roles: list[Role] = ["owner", *(rule.pages if rule else [])]
            for target in playbook.targets(roles, alert.failure_class):
                if target.target.pagerduty_routing_key:
                    allowed.add(target.target.pagerduty_routing_key)
                    other.add(target.target.pagerduty_routing_key)
                    required.setdefault(target.target.pagerduty_routing_key, alert.at)
        for routing_key, due in failed_step_keys(run, world.playbooks, card.key).items():
            allowed.add(routing_key)  # a runbook step marked Failed pages the escalation (seed 004)
            other.add(routing_key)
            required.setdefault(routing_key, due)
        got = received.get(card.key, {})
        if not required and not got:
            continue
        check.examined(book.name)
        for routing_key, due in sorted(required.items()):
            if not got.get(routing_key):
                check.violations.append(
                    f"{card.key}: PagerDuty service …{routing_key[-6:]} was due a trigger from {_when(due)} "
                    "and never got one"
                )
        for routing_key, times in sorted(got.items()):
            if routing_key not in allowed:
                check.violations.append(
                    f"{card.key}: PagerDuty service …{routing_key[-6:]} got a trigger at {_when(min(times))} "
                    "that no level or severity due called for"
                )
            elif routing_key in required and routing_key not in other and min(times) < required[routing_key]:
                check.violations.append(
                    f"{card.key}: PagerDuty service …{routing_key[-6:]} was triggered at {_when(min(times))}, "
                    f"before it was due ({_when(required[routing_key])})"
                )
    return check


def check_alerts(run: SimulationRun, world: World) -> Check:
    check = Check(
        "alert_pages",
        "Every alert Alertmanager fired got a card and paged its failure mode's owner and the roles its severity names",
        0,
    )
    playbooks = {p.name: p for p in world.playbooks}
    cards = {id(c.failure): c for c in world.cards.values() if c.failure is not None}
    for failure in world.failures:
        alert = failure.alert
        if alert is None:
            continue
        check.examined(alert.playbook)
        card = cards.get(id(failure))
        if card is None:
            continue  # cards_from_traffic names it
        playbook = playbooks[alert.playbook]
        rule = playbook.policy.severities.get(alert.severity or playbook.policy.default_severity)
        roles: list[Role] = ["owner", *(rule.pages if rule else [])]
        users = {t.dm_user for t in playbook.targets(roles, alert.failure_class) if t.dm_user}
        for user in sorted(users):
            got = [at for at, who, reason in world.dms.get(card.key, []) if who == user and reason == "alert"]
            if len([at for at in got if alert.at <= at <= alert.at + ARRIVAL]) != 1:
                check.violations.append(
                    f"{card.key} ({alert.alertname}, fired {_when(alert.at)}): <@{user}> should have been paged "
                    f"once by {_when(alert.at + ARRIVAL)} ({', '.join(roles)}), "
                    f"got {', '.join(map(_when, got)) or 'nothing'}"
                )
        if card.message.channel != playbook.channel_for_suite("alerts"):
            check.violations.append(
                f"{card.key} ({alert.alertname})'s card is in {card.message.channel}, "
                f"not {playbook.channel_for_suite('alerts')}"
            )
    return check


def check_severity_pages(run: SimulationRun, world: World) -> Check:
    check = Check("severity_pages", "A severity that pages paged the roles policy.yml names for it", 0)
    for at, key, severity, place in world.people.severities:
        card = world.cards.get(key)
        if card is None or card.failure is None:
            continue
        book = card.failure.book
        rule = book.policy.severities.get(severity)
        if rule is None:
            continue
        owning = world.owning(key, card.failure, at, place)
        for user in sorted(world.users(book, list(rule.pages), owning)):
            check.examined(book.name)
            got = [t for t, who, reason in world.dms.get(key, []) if who == user and reason == "severity"]
            if not [t for t in got if at <= t <= at + ARRIVAL]:
                check.violations.append(
                    f"{key} was marked {severity} at {_when(at)}; <@{user}> should have been paged by "
                    f"{_when(at + ARRIVAL)} ({', '.join(rule.pages)}), got {', '.join(map(_when, got)) or 'nothing'}"
                )
            elif len(got) > 1:
                check.violations.append(f"{key}: <@{user}> was paged {len(got)} times for {severity}")
    return check


def check_run_escalations(run: SimulationRun, world: World) -> Check:
    check = Check(
        "run_escalations",
        "Every run failing across its playbook's multi_prefix_threshold of scenario prefixes paged its escalation",
        0,
    )
    books = {p.name: p for p in world.playbooks}
    posted: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for message in run.snapshot.messages:
        if message.channel.startswith("D") and "failed across several scenario classes" in message.text:
            run_id = message.text.split("|", 1)[-1].split(">", 1)[0].rsplit("#", 1)[-1]
            posted[(message.channel[1:], run_id)].append(_at(message))
    refused = {(repo, run_id) for repo, run_id, _ in run.snapshot.github_refused}
    for sent in run.traffic.sent:
        book = books.get(sent.playbook) or world.runbook
        threshold, target_class = book.policy.multi_prefix_threshold, book.run_escalation_class
        if target_class is None or threshold is None or len(sent.prefixes) < threshold:
            continue
        # A run whose report GitHub's outage held back reached the bot when the fake GitHub handed
        # the report out at last: the page is due from then (never = from the send, and late).
        where = (str(sent.report["run"]["repository"]), sent.run_id)
        arrived = run.snapshot.github_fetched_at.get(where, sent.at) if where in refused else sent.at
        for user in sorted(world.users(book, ["escalation"], target_class)):
            check.examined(book.name)
            got = posted.get((user, sent.run_id), [])
            if len(got) != 1 or not arrived <= got[0] <= arrived + ARRIVAL:
                held = f", its report held back by GitHub until {_when(arrived)}" if arrived != sent.at else ""
                check.violations.append(
                    f"run {sent.run_id} ({_when(sent.at)}{held}) failed across {', '.join(sorted(sent.prefixes))}: "
                    f"<@{user}> should have been paged once by {_when(arrived + ARRIVAL)}, got "
                    f"{', '.join(map(_when, got)) or 'nothing'}"
                )
    return check


def check_beads_from_policy(run: SimulationRun, world: World) -> Check:
    check = Check(
        "beads_from_policy",
        "Every bead the playbook calls for (contract, severity, class) is in its tracker, once",
        0,
    )
    filed: list[tuple[str, str, int | None]] = [  # (tracker, title, priority)
        ("beads", str(b.get("title") or ""), b.get("priority")) for b in run.snapshot.beads
    ] + [("github", str(i.get("title") or ""), None) for i in run.snapshot.github_issues]
    for card in world.cards.values():
        failure = card.failure
        if failure is None:
            continue
        runbook = failure.book
        why: list[tuple[str, str | None, int | None]] = []  # (reason, class whose tracker, priority)
        if failure.contract and runbook.missing_ids_class:
            why.append(("it broke the id contract", runbook.missing_ids_class, None))
        for at, key, severity, place in world.people.severities:
            rule = runbook.policy.severities.get(severity)
            if key == card.key and rule is not None and rule.file_bead:
                why.append(
                    (
                        f"it was marked {severity} at {_when(at)}",
                        world.owning(key, failure, at, place),
                        rule.bead_priority,
                    )
                )
        for _, _, chosen in world.people.classes.get(card.key, []):
            route = runbook.class_route(chosen)
            if route is not None and route.files_bead:
                why.append((f"it was classified {chosen}", chosen, None))
        for place, done in enumerate(run.people.done):
            # seed 003's triage step 3: a person asked for the incident issue, and the bot said it files one
            if done.incident == card.key and done.what == "asked for the bead" and "filing a bead" in done.answer:
                why.append(
                    (
                        f"<@{done.user}> asked for it at {_when(done.at)}",
                        world.owning(card.key, failure, done.at, place),
                        None,
                    )
                )
        playbook = runbook
        if failure.alert is not None:
            playbook = next((p for p in world.playbooks if p.name == failure.alert.playbook), runbook)
            rule = playbook.policy.severities.get(failure.alert.severity or playbook.policy.default_severity)
            if rule is not None and rule.file_bead:
                why.append((f"its alert rule says {failure.alert.severity}", failure.alert.failure_class, None))
        if not why:
            continue
        check.examined(runbook.name)
        reason, failure_class, priority = why[0]
        route = playbook.class_route(failure_class)
        tracker = route.tracker if route else "beads"
        mine = [f for f in filed if failure.symptom and failure.symptom in f[1]]
        # tests that fail with the same words (a crashed test host) are told apart by the test the title names
        mine = [f for f in mine if failure.label in f[1]] or mine
        where = [f for f in mine if f[0] == tracker]
        if len(where) != 1:
            check.violations.append(
                f"{card.key} ({failure.label}) needs a bead in {tracker} because {reason}; "
                f"{tracker} has {len(where)} (others: {len(mine) - len(where)})"
            )
        elif priority is not None and where[0][2] is not None and where[0][2] != priority and tracker == "beads":
            check.violations.append(
                f"{card.key}'s bead has priority {where[0][2]}; {reason} and policy.yml says {priority}"
            )
    return check


def _thread(run: SimulationRun, card: Card) -> list[SnapMessage]:
    return sorted(
        (m for m in run.snapshot.replies() if m.channel == card.message.channel and m.thread_ts == card.message.ts),
        key=lambda m: (m.at, m.ts),
    )


def check_milestones_from_policy(run: SimulationRun, world: World) -> Check:
    """What people said through their playbook's milestones, as its thread shows it: each milestone
    they posted with the record fields policy.yml makes it ask for; where the playbook validates by
    evidence, its ``reaches`` milestone in the thread (the bot's green runs, or a person) after its
    ``after`` one and before the resolution; a resolution with the root cause and every field the
    resolving milestone asks for."""
    check = Check(
        "milestones_from_policy",
        "Every incident people worked shows its playbook's milestones in its thread, with the record fields "
        "policy.yml asks for, validated before it was resolved (and none that nobody worked shows one)",
        0,
    )
    worked: dict[str, list[str]] = defaultdict(list)  # incident -> milestones people posted (answered)
    resolved: set[str] = set()
    for done in run.people.done:
        if done.what.startswith("posted milestone ") and done.answer.endswith(
            tuple(m.label for book in world.playbooks for m in book.milestones)
        ):
            worked[done.incident].append(done.what.removeprefix("posted milestone "))
        elif done.what.startswith("resolved it") and done.answer.endswith(" resolved"):
            resolved.add(done.incident)
    for card in world.cards.values():
        failure = card.failure
        if failure is None or failure.alert is not None:
            continue
        book = failure.book
        check.examined(book.name)
        thread = _thread(run, card)
        said = [html.unescape(m.text) for m in thread]
        if card.key not in worked and card.key not in resolved:
            # nobody said anything: its thread shows no milestone and no resolution either
            claimed = [text.split("\n", 1)[0] for text in said if text.startswith(("📍 *", "✅ *Resolved*"))]
            if claimed:
                check.violations.append(
                    f"{card.key} ({failure.label}): nobody worked it, yet its thread says {claimed[0]}"
                )
            continue

        def first(prefix: str, after: int = 0, said: list[str] = said) -> int | None:
            return next((i for i, text in enumerate(said) if i >= after and text.startswith(prefix)), None)

        for key in dict.fromkeys(worked.get(card.key, [])):
            milestone = book.milestone(key)
            if milestone is None:
                check.violations.append(
                    f"{card.key}: people posted {key}, which the {book.name} playbook does not have"
                )
                continue
            at = first(f"📍 *{milestone.label}*")
            if at is None:
                check.violations.append(
                    f"{card.key} ({failure.label}): {milestone.label} was posted, its thread does not say so"
                )
                continue
            wanted = [a for a in milestone.asks[1:] if not a.optional]
            missing = [a.label for a in wanted if f"*{a.label}:*" not in said[at]]
            if milestone.asks and ": " not in said[at].split("\n", 1)[0].split("—", 1)[-1]:
                missing.insert(0, milestone.asks[0].label)
            if missing:
                check.violations.append(
                    f"{card.key} ({failure.label}): the thread's {milestone.label} post lacks {', '.join(missing)}"
                )
        if card.key not in resolved:
            continue
        done_at = first("✅ *Resolved*")
        if done_at is None:
            check.violations.append(f"{card.key} ({failure.label}) was resolved; its thread does not say so")
            continue
        resolving = book.policy.resolving
        missing = [a.label for a in resolving.asks if a.key != "root_cause" and not a.optional]
        missing = [label for label in missing if f"*{label}:*" not in said[done_at]]
        if "*Root cause:*" not in said[done_at] or missing:
            check.violations.append(
                f"{card.key} ({failure.label}): the resolution post lacks {', '.join(['Root cause', *missing])}"
            )
        rule = book.policy.validation
        after, reaches = (book.milestone(rule.after), book.milestone(rule.reaches)) if rule else (None, None)
        if after is not None and reaches is not None:
            started = first(f"📍 *{after.label}*")
            validated = first(f"📍 *{reaches.label}*", started or 0)
            if started is None or validated is None or validated > done_at:
                check.violations.append(
                    f"{card.key} ({failure.label}) was resolved without {reaches.label} after {after.label} in its "
                    f"thread (policy.yml: validation after {rule.after if rule else ''})"
                )
    return check


def _cards_of(world: World, book: Runbook, failure: SentFailure) -> list[str]:
    wanted = (label_of(book, failure), _symptom(failure.message))
    return [k for k, c in world.cards.items() if c.failure and (c.failure.label, c.failure.symptom) == wanted]


def _downloads(run: SimulationRun) -> Counter[tuple[str, str]]:
    """How often the fake GitHub handed out each run's report artifact, by (repository, run id)."""
    return Counter((repo, run_id) for repo, run_id, _ in run.snapshot.github_downloads)


def check_github_outage(run: SimulationRun, world: World) -> Check:
    """The runs whose report GitHub refused to hand out (its outage, a 5xx or a spent rate limit)
    were fetched again once it was back, and every failure of theirs got its card."""
    check = Check(
        "github_outage",
        "Runs whose artifact download met GitHub's outage were retried and downloaded once GitHub was back, "
        "and every failure of theirs got its card",
        0,
    )
    books = {p.name: p for p in world.playbooks}
    downloads = _downloads(run)
    refused: dict[tuple[str, str], Counter[int]] = defaultdict(Counter)
    for repo, run_id, status in run.snapshot.github_refused:
        refused[(repo, run_id)][status] += 1
    met: set[str] = set()
    for sent in run.traffic.sent:
        where = (str(sent.report["run"]["repository"]), sent.run_id)
        if where not in refused:
            continue
        met.add(sent.run_id)
        book = books.get(sent.playbook) or world.runbook
        check.examined(book.name)
        statuses = ", ".join(f"{n}× HTTP {status}" for status, n in sorted(refused[where].items()))
        if not downloads[where]:
            check.violations.append(
                f"run {sent.run_id} ({_when(sent.at)}) met GitHub's outage ({statuses}) and its report artifact "
                "was never downloaded afterwards"
            )
        for failure in sent.failures:
            if not _cards_of(world, book, failure):
                check.violations.append(
                    f"run {sent.run_id} met GitHub's outage ({statuses}): {label_of(book, failure)} "
                    f"({_symptom(failure.message)}…) has no card"
                )
    unmet = 0
    for fault in run.faults.by_kind(GITHUB_OUTAGE):
        if "run" not in fault.params:
            unmet += 1  # armed, and no failed run came through the webhook before the period ended
        elif fault.params["run"] not in met:
            check.violations.append(
                f"{fault.description} from {_when(fault.at)}: run {fault.params['run']}, the webhook run it began "
                "with, never met it (GitHub refused no request about it)"
            )
    check.promise += f" ({len(met)} runs met the outage" + (f"; {unmet} outage never began" if unmet else "") + ")"
    return check


def check_entry_points(run: SimulationRun, world: World) -> Check:
    """Each door CI used delivered what came through it. A failure reached by GitHub or Slack
    must also show the bot fetched that run's artifact from GitHub, and a Slack door must have
    been answered in the source message's thread with the failure's incident."""
    check = Check(
        "entry_points",
        "Every failure has its card whatever door it came through (report, JUnit, GitHub webhook, CI notifier, "
        "reaction, mention); the GitHub and Slack doors fetched the run's artifact and answered in the thread",
        0,
    )
    books = {p.name: p for p in world.playbooks}
    downloads = _downloads(run)
    replies: dict[tuple[str, str | None], list[SnapMessage]] = defaultdict(list)
    for message in run.snapshot.replies():
        replies[(message.channel, message.thread_ts)].append(message)
    used: Counter[str] = Counter()
    examined: Counter[str] = Counter()
    for sent in run.traffic.sent:
        if not sent.failures:
            continue
        answers = run.ingest_answers.get(sent.run_id, [])
        door = door_taken(sent, answers)
        used[door] += 1
        book = books.get(sent.playbook) or world.runbook
        keys: set[str] = set()
        for failure in sent.failures:
            examined[door] += 1
            check.checked += 1
            found = _cards_of(world, book, failure)
            if not found:
                label, symptom = label_of(book, failure), _symptom(failure.message)
                check.violations.append(f"run {sent.run_id} ({door}, {_when(sent.at)}): {label} ({symptom}…): no card")
            keys.update(found)
        if door in FETCHING_DOORS and not downloads[(str(sent.report["run"]["repository"]), sent.run_id)]:
            check.violations.append(
                f"run {sent.run_id} came through the {door} door; its report artifact was never downloaded from GitHub"
            )
        if door in SLACK_DOORS and answers:
            where = (str(answers[0]["channel"]), str(answers[0]["ts"]))
            named = {k for m in replies[where] for k in re.findall(r"INC-\d+", html.unescape(m.text))}
            if not named & keys:
                check.violations.append(
                    f"run {sent.run_id} ({door}): the bot's answer in the thread of {where[0]}/{where[1]} names "
                    f"{', '.join(sorted(named)) or 'no incident'}, not its card ({', '.join(sorted(keys)) or 'none'})"
                )
    for door, runs in sorted(used.items()):
        if not examined[door]:
            check.violations.append(f"{runs} runs came through the {door} door and no failure of theirs was examined")
    per_door = ", ".join(f"{door} {examined[door]}" for door in DOORS if used[door])
    check.promise += f" (failures examined per door: {per_door or 'none'})"
    return check


OUTSIDE_CHECKS = (
    check_cards_per_failure,
    check_timed_rule,
    check_no_late_pages,
    check_pagerduty,
    check_alerts,
    check_severity_pages,
    check_run_escalations,
    check_beads_from_policy,
    check_milestones_from_policy,
    check_entry_points,
)


def _channel(book: Runbook, suite: str | None) -> str:
    """routing.yml's channel for a suite, read from the YAML's model rather than the playbook's
    method, so a bug in the bot's routing cannot move the expectation with it."""
    route = book.routing.suites.get(suite or "")
    return route.channel if route else (book.routing.default_channel or book.workspace.default_channel)


def check_playbooks_examined(run: SimulationRun, world: World, checks: Sequence[Check]) -> Check:
    """A playbook whose traffic went out but which no check looked at was not tested at all."""
    check = Check("playbooks_examined", "Every playbook CI or Alertmanager sent failures for was examined", 0)
    for name in sorted({f.book.name for f in world.failures}):
        check.examined(name)
        looked = {c.key: c.per_playbook.get(name, 0) for c in checks if c.per_playbook.get(name)}
        if not looked:
            sent = sum(len(f.sent) for f in world.failures if f.book.name == name)
            check.violations.append(f"the {name} playbook had {sent} failures sent, and no check examined one")
    return check


def check_github_issues_outage(run: SimulationRun, world: World) -> Check:
    """The issue GitHub filed while losing its answer, and every issue whose requests the outage
    refused, exist once GitHub was back: once each, never a second issue for a retried filing."""
    check = Check(
        "github_issues_outage",
        "Beads filed as GitHub issues while GitHub's Issues API lost answers and refused requests are in GitHub "
        "once each after it was back (a retried filing found the issue it had already filed)",
        0,
    )
    owners = {
        route.github_repository: book.name
        for book in world.playbooks
        for route in book.routing.classes.values()
        if route.tracker == "github" and route.github_repository
    }
    issues = run.snapshot.github_issues
    for repo, what, status in dict.fromkeys(run.snapshot.github_issue_refused):
        if what in ("a new issue", "the issue list"):
            continue  # a request the bot repeats: judged by the issue it was about, below or in beads_from_policy
        check.examined(owners.get(repo, world.runbook.name))
        if what.startswith("#"):
            found = [i for i in issues if i["repository"] == repo and f"#{i['number']}" == what]
        else:  # the filing whose answer was lost: GitHub has it, and a retry must not file it again
            found = [i for i in issues if i["repository"] == repo and i["title"] == what]
        if len(found) != 1:
            check.violations.append(
                f"GitHub refused a request about {what!r} in {repo} (HTTP {status}); GitHub has {len(found)} "
                "such issues afterwards, not 1"
            )
    began, refused = run.snapshot.github_issue_outages, run.snapshot.github_issue_refused
    check.promise += f" ({len(began)} outage{'s' if len(began) != 1 else ''}, {len(refused)} requests refused)"
    return check


def check_socket_mode(run: SimulationRun, world: World) -> Check:
    """Every Slack request Slack delivered over Socket Mode was acked on the socket (Slack shows
    the person an error for one that is not, and gives up on an event). What the requests did is
    judged by the other checks, whatever way they came."""
    processes = ", ".join(str(n) for n in run.socket_processes)
    check = Check(
        "socket_mode",
        f"Every Slack request delivered over Socket Mode (bot processes {processes}) was acked on the socket",
        0,
    )
    for place, (kind, carried, acked) in enumerate(run.snapshot.socket_envelopes, start=1):
        check.examined(world.runbook.name)
        if not acked:
            check.violations.append(f"envelope {place} ({kind}: {carried or '?'}) was never acked")
    return check


def check_outside(run: SimulationRun, runbook: Runbook, playbooks: Sequence[Runbook] = ()) -> list[Check]:
    world = World.of(run, runbook, playbooks or [runbook])
    checks = [check(run, world) for check in OUTSIDE_CHECKS]
    if run.faults.by_kind(GITHUB_OUTAGE):  # scheduled: a check that examined no run of it fails
        checks.append(check_github_outage(run, world))
    if run.snapshot.github_issue_outages:  # it began: the issue it met must be examined
        checks.append(check_github_issues_outage(run, world))
    if run.snapshot.socket_envelopes:  # the door carried requests: each must have been acked
        checks.append(check_socket_mode(run, world))
    checks += check_runbooks_end_to_end(run, world.playbooks)
    checks.append(check_playbooks_examined(run, world, checks))
    for check in checks:
        check.outside = True
    return checks
