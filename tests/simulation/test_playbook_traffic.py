"""Traffic from every playbook: the shipped runbooks' contract-drift (seed 002) and library-incidents
(seed 003) playbooks get CI failures of their own classes, and the outside checks judge each failure
by its own playbook's YAML (channel, severities and whom they page), not the default's."""

from __future__ import annotations

from pathlib import Path

import pytest

from slackbot.config import Playbook, load_playbooks
from slackbot.simulation import SimulationConfig, SimulationResult, simulate
from slackbot.simulation.outside import World
from slackbot.simulation.records import START
from slackbot.simulation.report import report_markdown
from slackbot.simulation.traffic import Traffic
from tests.conftest import RUNBOOKS

# Seed 3 starts the library's WAL corruption on day 0, so the one-day run has it too.
SEED = 3


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    return simulate(SimulationConfig(days=2, seed=SEED, workdir=tmp_path_factory.mktemp("playbooks")))


def test_every_playbook_sends_stories_of_its_own_classes_and_seed_001_is_unchanged() -> None:
    playbooks = load_playbooks(RUNBOOKS)
    alone = Traffic(playbooks.default, days=14, seed=7, start=START)
    together = Traffic(playbooks.default, days=14, seed=7, start=START, playbooks=list(playbooks))
    seed_001 = [(s.key, s.truth.value, s.results) for s in alone.stories]
    assert [(s.key, s.truth.value, s.results) for s in together.stories if not s.playbook] == seed_001
    truths: dict[str, set[str]] = {}
    for story in together.stories:
        truths.setdefault(story.playbook or playbooks.default.name, set()).add(story.truth.value)
    for name in ("contract-drift", "library-incidents"):
        assert truths[name] == set(playbooks.get(name).classes)  # a story per class, truth in its words
    assert "operations" not in truths  # Alertmanager's (alerts.py)
    # one playbook's story does not move when another playbook is added or left out
    library_only = Traffic(
        playbooks.default, days=14, seed=7, start=START, playbooks=[playbooks.get("library-incidents")]
    )
    library = [(s.key, s.days, s.persistent_from, s.only_runs) for s in together.stories]
    assert [x for x in library if x[0].startswith("library-incidents:")] == [
        (s.key, s.days, s.persistent_from, s.only_runs) for s in library_only.stories if s.playbook
    ]


def test_a_runbooks_dir_without_seed_001s_playbook_is_simulated_from_what_it_has(tmp_path: Path) -> None:
    playbooks = load_playbooks(RUNBOOKS)
    library = playbooks.get("library-incidents")
    traffic = Traffic(library, days=3, seed=1, start=START, playbooks=[library])
    runs = traffic.due(START.replace(year=START.year + 1))
    assert runs and {r.report["run"]["repository"] for r in runs} == {"acme/cbdd"}
    assert {r.report["run"]["suite"] for r in runs} == {"library-ci"}
    failing = {f.test_identity for r in runs for f in r.failures}
    assert "CBDD.Tests.Storage.RecoveryTests::Recover_ReplaysCommittedTransactions_AfterUncleanShutdown" in failing
    assert all(f.scenario_id is None and f.invariant_id is None for r in runs for f in r.failures)


def _world(result: SimulationResult) -> World:
    playbooks = load_playbooks(RUNBOOKS)
    return World.of(result.run, playbooks.default, list(playbooks))


def test_each_playbooks_cards_land_in_its_channel_and_its_sev1_pages_its_own_people(
    two_days: SimulationResult,
) -> None:
    broken = {c.key: c.violations for c in two_days.checks if not c.passed}
    assert broken == {}
    world = _world(two_days)
    playbooks = load_playbooks(RUNBOOKS)
    channels: dict[str, set[str]] = {}
    for card in world.cards.values():
        assert card.failure is not None
        channels.setdefault(card.failure.book.name, set()).add(card.message.channel)
    assert channels.pop("integration-triage") <= {"C0NIGHTLY", "C0SMOKE"}
    assert channels == {
        "contract-drift": {playbooks.get("contract-drift").routing.suites["contract-drift"].channel},
        "library-incidents": {playbooks.get("library-incidents").routing.suites["library-ci"].channel},
        "operations": {playbooks.get("operations").routing.suites["alerts"].channel},
    }
    # every check says how many cases of each playbook it examined; each playbook was examined
    examined = {c.key: c.per_playbook for c in two_days.checks if c.outside}
    everyone = {"integration-triage", *channels}
    assert set(examined["cards_from_traffic"]) == everyone
    assert examined["playbooks_examined"] == dict.fromkeys(everyone, 1)
    text = report_markdown(two_days, two_days.figures)
    row = next(line for line in text.splitlines() if line.startswith("| Every distinct failure CI sent"))
    assert all(f"{name} {examined['cards_from_traffic'][name]}" in row for name in everyone), row
    # the library's SEV-1 (seed 003: escalate to the release maintainer) paged the people its
    # routing.yml names, not seed 001's
    library: Playbook = playbooks.get("library-incidents")
    # the passer-by marked each playbook's SEV-1-grade failure: seed 001's tenant leak and the WAL
    marked = [world.cards[d.incident] for d in two_days.run.people.done if d.what.startswith("marked it SEV-1")]
    assert sorted(c.failure.book.name for c in marked if c.failure) == ["integration-triage", "library-incidents"]
    card = next(c for c in marked if c.failure and c.failure.book.name == "library-incidents")
    maintainer = library.routing.release_maintainer
    storage_owner = library.classes["storage_recovery"].owner.oncall_user
    assert maintainer is not None
    paged = {user for _, user, reason in world.dms[card.key] if reason == "severity"}
    assert paged == {maintainer.user, storage_owner}
    assert examined["severity_pages"]["library-incidents"] == 2


def test_a_bug_on_a_non_default_playbooks_path_fails_the_simulation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Playbook.channel_for_suite

    def misrouted(self: Playbook, suite: str | None) -> str:  # planted: the library's cards go astray
        return self.workspace.default_channel if self.name == "library-incidents" else original(self, suite)

    monkeypatch.setattr(Playbook, "channel_for_suite", misrouted)
    result = simulate(SimulationConfig(days=1, seed=SEED, workdir=tmp_path))
    broken = {c.key: c.violations for c in result.checks if not c.passed}
    assert "cards_from_traffic" in broken
    assert any(
        "library-incidents playbook" in v and "went to C0TRIAGE, routing.yml sends it to C0LIBRARY" in v
        for v in broken["cards_from_traffic"]
    )
