"""Exactly once with real processes: three ``triagebot serve`` replicas on one real PostgreSQL.

The test process runs PostgreSQL (from the Debian package), the Slack emulator and a local
PagerDuty endpoint; the replicas are separate OS processes started the way an operator starts
them. 500 failures are ingested with a short ``classify_within``, so all 500 escalation timers
come due within a second or two of each other and the replicas race for them. Then we count what
the people on the receiving end would count: PagerDuty triggers, DMs, cards, thread posts.

The second test kills replicas with ``kill -9`` in the middle of delivering: one while it posts
cards (every timer still pending), another while it sends pages in the escalation burst. The
survivors must fire every timer once and take over the dead replicas' deliveries when their
leases expire, without posting anything twice.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.client import send_report
from slackbot.config import load_playbooks
from slackbot.db.engine import make_engine
from slackbot.db.migrate import upgrade
from slackbot.db.models import Incident, OutboxItem, TimelineEvent, Timer
from slackbot.emulator import SlackEmulator
from slackbot.emulator.seeding import seed_workspace
from slackbot.serving import free_port
from tests.conftest import RUNBOOKS
from tests.factories import report, result
from tests.fakes.pagerduty import FakePagerDuty, running_pagerduty
from tests.pgserver import PostgresServer

TRIAGEBOT = str(Path(sys.executable).parent / "triagebot")
SECRET = "replica-test-ingest-secret"
ESCALATION_KEY = "e5ca1a7e0000000000000000000000aa"  # a PagerDuty routing key for @triage-leads
ONCALL = "U0GRACE"  # @triage-leads' person: every escalation DM goes to her
INCIDENTS = 500
SUITES = [f"load{n}" for n in range(10)]  # ten channels, so deliveries are not one queue
KEY = re.compile(r"\*(INC-\d+)\*")


def runbooks_copy(target: Path, *, classify_within: str) -> Path:
    """The repo's runbooks with a short 20-minute rule, one escalation level that does not repeat,
    a PagerDuty routing key on every escalation target, and ten load-test suites/channels."""
    shutil.copytree(RUNBOOKS, target)
    playbook = target / "integration-triage"  # the default playbook, whose failures these are
    policy_file, routing_file = playbook / "policy.yml", playbook / "routing.yml"
    policy = yaml.safe_load(policy_file.read_text())
    policy["classify_within"] = classify_within
    policy["escalation"] = {
        "levels": [{"notify": ["escalation"], "note": "Not classified in time."}],
        "repeat_every": "10m",
        "max_repeats": 0,
    }
    policy_file.write_text(yaml.safe_dump(policy, sort_keys=False, allow_unicode=True))
    routing = yaml.safe_load(routing_file.read_text())
    for route in routing["classes"].values():
        route["escalation"]["pagerduty_routing_key"] = ESCALATION_KEY
    for n, suite in enumerate(SUITES):
        routing["suites"][suite] = {"channel": f"C0LOAD{n}", "description": f"load test suite {n}"}
    routing_file.write_text(yaml.safe_dump(routing, sort_keys=False, allow_unicode=True))
    load_playbooks(target)  # the copy must be a valid runbook, or every replica refuses to start
    return target


@dataclass
class Replica:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    worker: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


@dataclass
class Cluster:
    engine: Engine
    emulator: SlackEmulator
    pagerduty: FakePagerDuty
    replicas: list[Replica] = field(default_factory=list)

    def logs(self) -> str:
        return "\n".join(f"--- {r.name} ---\n{r.tail()}" for r in self.replicas)


def start_replica(name: str, env: dict[str, str], tmp_path: Path) -> Replica:
    port = free_port()
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [TRIAGEBOT, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Replica(name, port, process, log)


def wait_ready(replica: Replica, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if replica.process.poll() is not None:
            raise AssertionError(f"{replica.name} exited with {replica.process.returncode}:\n{replica.tail()}")
        try:
            answer = httpx.get(replica.url + "/readyz", timeout=2)
            if answer.status_code == 200:
                replica.worker = str(answer.json()["worker"])
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{replica.name} never became ready:\n{replica.tail()}")
        time.sleep(0.1)


def stop(replica: Replica) -> None:
    if replica.process.poll() is None:
        replica.process.send_signal(signal.SIGTERM)
        try:
            replica.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            replica.process.kill()
            replica.process.wait(timeout=10)


@pytest.fixture
def cluster_factory(postgres: PostgresServer, tmp_path: Path) -> Iterator[Any]:
    """Builds the cluster for a test; whatever happens, every replica process is gone afterwards."""
    with ExitStack() as stack:
        made: list[Cluster] = []

        def make(*, classify_within: str, lease_seconds: float = 60.0, replicas: int = 3) -> Cluster:
            url = postgres.create_database(f"replicas_{len(made)}_{os.getpid()}_{int(time.time() * 1000) % 10**8}")
            engine = make_engine(url)
            upgrade(engine)  # once, before the replicas start (each would otherwise race to migrate)
            stack.callback(engine.dispose)
            runbooks = runbooks_copy(tmp_path / "runbooks", classify_within=classify_within)
            emulator = stack.enter_context(SlackEmulator(rate_limit_per_channel=0))
            seed_workspace(emulator, load_playbooks(runbooks))
            pagerduty = stack.enter_context(running_pagerduty())
            env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TRIAGE_", "PAGERDUTY_"))}
            env |= {
                "TRIAGE_DATABASE_URL": url,
                "TRIAGE_RUNBOOKS_DIR": str(runbooks),
                "TRIAGE_INGEST_SECRET": SECRET,
                "SLACK_BOT_TOKEN": emulator.bot_token,
                "SLACK_SIGNING_SECRET": emulator.signing_secret,
                "SLACK_API_URL": emulator.base_url,
                "PAGERDUTY_EVENTS_URL": pagerduty.url,
                "TRIAGE_LANE_RATE": "50",  # the emulator does not rate-limit; Slack would at ~1/s
                "TRIAGE_OUTBOX_LEASE_SECONDS": str(lease_seconds),
                "TRIAGE_BD_BIN": str(Path(sys.executable).parent / "triagebot-fake-bd"),
            }
            cluster = Cluster(engine, emulator, pagerduty)
            made.append(cluster)
            for n in range(replicas):
                replica = start_replica(f"replica-{n}", env, tmp_path)
                cluster.replicas.append(replica)
                stack.callback(stop, replica)
            for replica in cluster.replicas:
                wait_ready(replica)
            return cluster

        yield make


def failure_reports(total: int = INCIDENTS) -> list[dict[str, Any]]:
    """``total`` distinct failures in reports of 50, one suite (channel) each. One scenario
    prefix per run, so no run counts as a multi-prefix (harness) escalation."""
    per_report = 50
    return [
        report(
            *[
                result(f"BID-{i:03d}", "TENANT-001", message=f"score mismatch in window {i}")
                for i in range(start + 1, min(total, start + per_report) + 1)
            ],
            run_id=str(8000 + n),
            suite=SUITES[n % len(SUITES)],
        )
        for n, start in enumerate(range(0, total, per_report))
    ]


def send_failures(cluster: Cluster, reports: list[dict[str, Any]]) -> None:
    """Send the reports concurrently, spread over the live replicas (CI jobs do not take turns)."""
    alive = [r for r in cluster.replicas if r.process.poll() is None]

    def send(n: int, body: dict[str, Any]) -> None:
        answer = send_report(json.dumps(body).encode(), alive[n % len(alive)].url, SECRET)
        assert len(answer["incidents"]) == len(body["results"])

    with ThreadPoolExecutor(max_workers=len(alive)) as pool:
        list(pool.map(send, range(len(reports)), reports))


def scalar(engine: Engine, query: Any) -> int:
    with Session(engine) as session:
        return int(session.exec(query).one())


def settled(cluster: Cluster) -> bool:
    engine = cluster.engine
    escalated = scalar(engine, select(func.count()).select_from(TimelineEvent).where(TimelineEvent.kind == "escalated"))
    busy = scalar(
        engine, select(func.count()).select_from(OutboxItem).where(col(OutboxItem.state).in_(["pending", "sending"]))
    )
    return escalated >= INCIDENTS and busy == 0


def wait_settled(cluster: Cluster, timeout: float = 120.0) -> None:  # a liveness bound, generous for a loaded CI
    deadline = time.monotonic() + timeout
    while not settled(cluster):
        if time.monotonic() > deadline:
            with Session(cluster.engine) as session:
                states = Counter(session.exec(select(OutboxItem.state)).all())
                timers = Counter(session.exec(select(Timer.state)).all())
                stuck = session.exec(
                    select(OutboxItem).where(col(OutboxItem.state).in_(["pending", "sending"])).limit(5)
                ).all()
            detail = "\n".join(f"{o.id} {o.kind} {o.state} {o.claimed_by} {o.last_error}" for o in stuck)
            raise AssertionError(f"not settled: outbox {states}, timers {timers}\n{detail}\n{cluster.logs()}")
        time.sleep(0.25)


def event_payload(call_body: dict[str, Any]) -> dict[str, Any]:
    """The message metadata the bot attached to a post (which incident's card, which outbox row)."""
    raw = call_body.get("metadata") or {}
    metadata = json.loads(raw) if isinstance(raw, str) else dict(raw)
    return dict(metadata.get("event_payload") or {})


def assert_everything_happened_exactly_once(
    cluster: Cluster, *, resent_to_pagerduty: frozenset[str] = frozenset()
) -> None:
    """``resent_to_pagerduty``: incidents whose trigger a killed replica may have sent just before
    it died. PagerDuty cannot be asked what it got, so the survivor sends again; the same dedup_key
    makes PagerDuty fold both into one incident, so these may show two triggers, never more."""
    engine, emulator = cluster.engine, cluster.emulator
    with Session(engine) as session:
        incidents = session.exec(select(Incident).order_by(col(Incident.id))).all()
        timers = session.exec(select(Timer).where(Timer.kind == "classify")).all()
        escalated = Counter(
            e.incident_id for e in session.exec(select(TimelineEvent).where(TimelineEvent.kind == "escalated"))
        )
        outbox = session.exec(select(OutboxItem)).all()
    keys = {f"INC-{i.id}" for i in incidents}
    assert len(incidents) == INCIDENTS and all(i.escalation_level == 1 for i in incidents)
    # Every timer fired, once: one claim each, one "escalated" row each.
    assert len(timers) == INCIDENTS and {t.state for t in timers} == {"fired"}
    assert escalated == Counter({i.id: 1 for i in incidents})
    # Every effect was delivered; none was given up.
    assert Counter(o.state for o in outbox) == {"done": len(outbox)}
    assert Counter(o.kind for o in outbox if o.kind in ("dm", "pagerduty")) == {"dm": INCIDENTS, "pagerduty": INCIDENTS}

    # PagerDuty: exactly one trigger per incident, deduplicated on its key.
    triggers = Counter(t["dedup_key"] for t in cluster.pagerduty.triggers())
    assert set(triggers) == keys
    assert {k: n for k, n in triggers.items() if n > 1 and k not in resent_to_pagerduty} == {}
    assert max(triggers.values()) <= 2
    assert {t["routing_key"] for t in cluster.pagerduty.triggers()} == {ESCALATION_KEY}
    # The on-call person got exactly one DM per incident.
    dms = emulator.messages(emulator.dm_channel_id(ONCALL))
    assert Counter(m for d in dms for m in KEY.findall(d.text)) == Counter(dict.fromkeys(keys, 1))
    # Each incident has exactly one card (top-level message) in its channel.
    channels = {i.channel for i in incidents}
    cards = [m for c in channels for m in emulator.messages(c) if m.blocks and m.blocks[0].get("type") == "header"]
    card_keys = Counter(m.blocks[0]["text"]["text"].split(" ")[1] for m in cards)
    assert card_keys == Counter(dict.fromkeys(keys, 1))
    # Slack saw each card posted once and each thread post (outbox row) posted once.
    posts = [c for c in emulator.calls("chat.postMessage") if c.response and c.response.get("ok")]
    card_posts = Counter(event_payload(c.body).get("incident") for c in posts if not c.body.get("thread_ts"))
    thread_posts = Counter(event_payload(c.body).get("outbox") for c in posts if c.body.get("thread_ts"))
    card_posts.pop(None, None)  # the DMs
    assert card_posts == Counter({i.id: 1 for i in incidents})
    assert thread_posts and max(thread_posts.values()) == 1
    # And every thread says "escalation level 1" exactly once.
    pages: Counter[int | None] = Counter()
    for incident in incidents:
        replies = emulator.replies(incident.channel, str(incident.card_ts))
        pages[incident.id] = sum("escalation level 1" in r.text for r in replies)
    assert pages == Counter({i.id: 1 for i in incidents})


def test_three_replicas_page_every_escalation_exactly_once(cluster_factory: Any) -> None:
    cluster: Cluster = cluster_factory(classify_within="3s")
    assert len({r.worker for r in cluster.replicas}) == 3
    send_failures(cluster, failure_reports())
    wait_settled(cluster)
    assert_everything_happened_exactly_once(cluster)
    # The work really was shared: more than one replica fired timers (SKIP LOCKED splits them).
    with Session(cluster.engine) as session:
        fired_by = Counter(session.exec(select(Timer.fired_by).where(Timer.kind == "classify")).all())
    assert set(fired_by) <= {r.worker for r in cluster.replicas}
    assert len(fired_by) >= 2, fired_by


def kill_while_holding(cluster: Cluster, victim: Replica, kinds: set[str]) -> list[OutboxItem]:
    """Freeze the victim at a moment when it holds a lease on an outbox row of one of ``kinds``
    (it is mid-delivery), then kill -9 it. Returns the rows it was delivering."""
    held: list[OutboxItem] = []
    for _ in range(2000):
        os.kill(victim.process.pid, signal.SIGSTOP)
        with Session(cluster.engine) as session:
            held = list(
                session.exec(
                    select(OutboxItem).where(
                        OutboxItem.state == "sending",
                        OutboxItem.claimed_by == victim.worker,
                        col(OutboxItem.kind).in_(sorted(kinds)),
                    )
                )
            )
        if held:
            break
        os.kill(victim.process.pid, signal.SIGCONT)
        time.sleep(0.005)
    os.kill(victim.process.pid, signal.SIGKILL)
    victim.process.wait(timeout=10)
    assert held, f"{victim.name} never held a lease on {kinds} while they were delivered"
    return held


def test_replicas_killed_mid_delivery_lose_nothing_and_repeat_nothing(cluster_factory: Any) -> None:
    """One replica is killed while it posts cards (every timer still pending), a second while it
    sends pages in the escalation burst. The last one standing finishes everything."""
    cluster: Cluster = cluster_factory(classify_within="8s", lease_seconds=5)
    first, second, last = cluster.replicas
    reports = failure_reports()
    send_failures(cluster, reports[:3])  # the first 150 cards: every replica starts delivering
    cards = kill_while_holding(cluster, first, {"card"})
    fired = scalar(cluster.engine, select(func.count()).select_from(Timer).where(Timer.state == "fired"))
    assert fired == 0, "killed too late: timers had already fired"
    send_failures(cluster, reports[3:])  # the rest arrive while the cluster is one replica down

    deadline = time.monotonic() + 30
    while not scalar(cluster.engine, select(func.count()).select_from(OutboxItem).where(OutboxItem.kind == "dm")):
        assert time.monotonic() < deadline, "no escalation fired"
        time.sleep(0.05)
    pages = kill_while_holding(cluster, second, {"dm", "pagerduty"})  # in the escalation burst
    wait_settled(cluster)
    resent = frozenset(f"INC-{p.incident_id}" for p in pages if p.kind == "pagerduty")
    assert_everything_happened_exactly_once(cluster, resent_to_pagerduty=resent)
    with Session(cluster.engine) as session:
        fired_by = Counter(session.exec(select(Timer.fired_by).where(Timer.kind == "classify")).all())

        def now_held(rows: list[OutboxItem]) -> set[tuple[str, str | None]]:
            query = select(OutboxItem).where(col(OutboxItem.id).in_([int(o.id or 0) for o in rows]))
            return {(o.state, o.claimed_by) for o in session.exec(query)}

        # The first victim died before any deadline: only the others fired timers. Its deliveries
        # were finished by the others, the second's by the last replica standing.
        assert set(fired_by) <= {second.worker, last.worker}
        assert now_held(cards) <= {("done", second.worker), ("done", last.worker)}
        assert now_held(pages) == {("done", last.worker)}
