"""Two real clustered Alertmanagers (the version CI installs from Debian) pointed at the running bot,
alerts fired and resolved with the real ``amtool``: what a responder sees in Slack, what PagerDuty
and bd were sent, and that the HA pair's twin notifications make one incident.

The Alertmanagers start once for the module; each test uses its own alertname, so its own group,
incident and card. Alertmanager's timers are cut to fractions of a second and the pair's
``peer-timeout`` to nothing, so both instances send a new group's first notification (the HA
twins a real pair sends when gossip is slow) and the bot must de-duplicate them; later flushes run
on each instance's own timer, and the second may find the first's already gossiped. Each webhook
passes through a recorder, so a test sees which instance sent what and what the bot answered.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from slackbot.db.models import Incident
from slackbot.serving import serve
from tests.integrations.conftest import ALERTMANAGER_TOKEN, CiBot, running_ci_bot
from tests.slack.conftest import wait_for

ALERTS = "C0ALERTS"  # the operations playbook's `alerts` suite channel
DEADLINE = 20.0
GRAPH = "http://prometheus.example.com:9090/graph?g0.expr=up"


def _tool(*names: str) -> str:
    """Debian installs the server as ``prometheus-alertmanager``; upstream's tarball as ``alertmanager``."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError(
        f"none of {names} is installed (.ci/run installs prometheus-alertmanager); a missing tool fails"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Instance:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


class Recorder:
    """Between each Alertmanager and the bot: passes every webhook on unchanged and notes which
    instance sent which group and status, and what the bot answered (opened, duplicate, …)."""

    def __init__(self, bot_url: str) -> None:
        self.bot_url = bot_url
        self.seen: list[tuple[int, str, str, str]] = []
        self.lock = threading.Lock()

    async def forward(self, request: Request) -> Response:
        body = await request.body()
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(
                self.bot_url + "/webhooks/alertmanager",
                content=body,
                headers={k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")},
            )
        sent = json.loads(body)
        status = answer.json().get("status", "") if answer.status_code == 200 else str(answer.status_code)
        with self.lock:
            self.seen.append((int(request.path_params["n"]), sent["groupKey"], sent["status"], status))
        return Response(answer.content, status_code=answer.status_code, media_type="application/json")

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/am/{n:int}", self.forward, methods=["POST"])])


@dataclass
class Cluster:
    instances: list[Instance]
    amtool: str
    recorder: Recorder

    def fire(
        self,
        alertname: str,
        *,
        labels: dict[str, str],
        annotations: dict[str, str] | None = None,
        start: datetime | None,
        end: datetime | None = None,
    ) -> None:
        """``amtool alert add`` to every instance, as Prometheus sends each alert to each of the
        pair, with the same start (Prometheus's ``activeAt``). An end in the past resolves it."""
        args = [f"alertname={alertname}", *(f"{k}={v}" for k, v in labels.items())]
        args += [f"--annotation={k}={v}" for k, v in (annotations or {}).items()]
        args.append("--generator-url=" + GRAPH)
        if start is not None:  # else each instance starts the alert when it receives it
            args.append(f"--start={_rfc3339(start)}")
        if end is not None:
            args.append(f"--end={_rfc3339(end)}")
        # At once to both, so both flush the new group together and each sends it: the twins.
        runs = [
            subprocess.Popen(
                [self.amtool, "alert", "add", *args, f"--alertmanager.url={instance.url}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for instance in self.instances
        ]
        for run in runs:
            output, _ = run.communicate(timeout=10)
            assert run.returncode == 0, output

    def fire_many(self, alertname: str, alerts: list[dict[str, str]], annotations: dict[str, str]) -> None:
        """Several alerts of one group, to both instances at once (one ``amtool`` per alert and
        instance), so the group's first notification carries them all."""
        start = f"--start={_rfc3339(now())}"
        runs = [
            subprocess.Popen(
                [
                    self.amtool,
                    "alert",
                    "add",
                    f"alertname={alertname}",
                    *(f"{k}={v}" for k, v in labels.items()),
                    *(f"--annotation={k}={v}" for k, v in annotations.items()),
                    start,
                    f"--alertmanager.url={instance.url}",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for labels in alerts
            for instance in self.instances
        ]
        for run in runs:
            output, _ = run.communicate(timeout=10)
            assert run.returncode == 0, output

    def resolve(self, alertname: str, *, labels: dict[str, str], start: datetime) -> None:
        self.fire(alertname, labels=labels, start=start, end=datetime.now(UTC) - timedelta(seconds=1))

    def notifications(self, alertname: str) -> list[tuple[int, str, str]]:
        """(instance, status sent, what the bot answered) for each notification of this group."""
        group = f'{{}}:{{alertname="{alertname}"}}'
        return [(n, sent, answer) for n, key, sent, answer in self.recorder.seen if key == group]


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _config(path: Path, webhook: str) -> Path:
    config = {
        "global": {"resolve_timeout": "1m"},
        "route": {
            "receiver": "triagebot",
            "group_by": ["alertname"],
            "group_wait": "200ms",
            "group_interval": "500ms",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "triagebot",
                "webhook_configs": [
                    {
                        "url": webhook,
                        "send_resolved": True,
                        "http_config": {"authorization": {"type": "Bearer", "credentials": ALERTMANAGER_TOKEN}},
                    }
                ],
            }
        ],
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def _settled(instance: Instance) -> bool:
    """Up, and its cluster settled with both peers: until then its notifications wait for the
    gossip to settle, each instance for its own time, and the pair would not send twins."""
    if instance.process.poll() is not None:
        raise AssertionError(f"alertmanager exited: {instance.log.read_text()[-2000:]}")
    try:
        cluster = httpx.get(instance.url + "/api/v2/status", timeout=1).json()["cluster"]
    except (httpx.HTTPError, ValueError, KeyError):
        return False
    return cluster.get("status") == "ready" and len(cluster.get("peers") or []) == 2


@pytest.fixture(scope="module")
def am_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CiBot, Cluster]]:
    server = _tool("alertmanager", "prometheus-alertmanager")
    amtool = _tool("amtool")
    root = tmp_path_factory.mktemp("alertmanager")
    with running_ci_bot(root) as bot:
        recorder = Recorder(bot.url)
        stack = contextlib.ExitStack()
        proxy = stack.enter_context(serve(recorder.app()))
        web = [_free_port(), _free_port()]
        gossip = [_free_port(), _free_port()]
        instances: list[Instance] = []
        try:
            for n in range(2):
                storage = root / f"am{n}"
                storage.mkdir()
                log = root / f"am{n}.log"
                config = _config(root / f"alertmanager{n}.yml", f"{proxy}/am/{n}")
                url = f"http://127.0.0.1:{web[n]}"
                command = [
                    server,
                    f"--config.file={config}",
                    f"--storage.path={storage}",
                    f"--web.listen-address=127.0.0.1:{web[n]}",
                    f"--web.external-url={url}",
                    f"--cluster.listen-address=127.0.0.1:{gossip[n]}",
                    f"--cluster.peer=127.0.0.1:{gossip[1 - n]}",
                    "--cluster.gossip-interval=50ms",
                    "--cluster.pushpull-interval=1s",
                    "--cluster.settle-timeout=2s",
                    # Both send: the twin notifications the bot must de-duplicate.
                    "--cluster.peer-timeout=1ms",
                ]
                with log.open("wb") as out:
                    process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
                instances.append(Instance(url, process, log))
            for instance in instances:
                wait_for(lambda i=instance: _settled(i), timeout=DEADLINE, what=f"alertmanager at {instance.url}")
            yield bot, Cluster(instances, amtool, recorder)
        finally:
            # One at a time: the first leaves the cluster at once, while two leaving together
            # each wait out memberlist's 10 s leave timeout for the other.
            for instance in instances:
                instance.process.terminate()
                try:
                    instance.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    instance.process.kill()
                    instance.process.wait()
            stack.close()


def incident_for(bot: CiBot, alertname: str) -> Incident:
    def find() -> Incident | None:
        with Session(bot.core.engine) as session:
            return session.exec(select(Incident).where(Incident.scenario_id == alertname)).first()

    found: Incident = wait_for(find, timeout=DEADLINE, what=f"an incident for {alertname}")
    return found


def thread_with(bot: CiBot, key: str, text: str) -> str:
    found: str = wait_for(
        lambda: next((m.text for m in bot.thread(key, ALERTS) if text in m.text), None),
        timeout=DEADLINE,
        what=f"a post with {text!r} in {key}'s thread",
    )
    return found


def now() -> datetime:
    """A start a little in the past, as Prometheus reports an alert that held for its ``for:``
    (and so a resolution, which ends it a second ago, always ends after it started)."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)


OPS = "U0SAM"  # ops on call in the operations playbook
RUNBOOK_URL = "https://runbooks.example.com/contest-lock"
DASHBOARD_URL = "https://grafana.example.com/d/contests"
# What only a CI failure's card has; an alert's card must show none of it.
CI_ONLY = ("nvariant", "gh run download", "Download artifacts", "Reproduce locally", "ontract violation", "scenarioId")


def card_of(bot: CiBot, key: str) -> str:
    return json.dumps(bot.card(key, ALERTS).blocks, ensure_ascii=False)


def cards_named(bot: CiBot, alertname: str) -> int:
    return sum(1 for m in bot.cards(ALERTS) if m.blocks[0]["text"]["text"].endswith(f"· {alertname}"))


def triggers(bot: CiBot, alertname: str) -> list[dict[str, object]]:
    return [e for e in bot.pagerduty.triggers() if e["payload"]["component"] == alertname]


def answers(cluster: Cluster, alertname: str, status: str, *, instances: int = 2) -> list[str]:
    """What the bot answered for this group's notifications of ``status``, once that many
    instances have sent one. Both send a new group (they flush it together, see ``fire``);
    later flushes run on each instance's own timer, so the second may find the first's
    notification already gossiped and send nothing."""

    def sent() -> list[str] | None:
        seen = [(n, answer) for n, sent, answer in cluster.notifications(alertname) if sent == status]
        return [answer for _, answer in seen] if len({n for n, _ in seen}) >= instances else None

    found: list[str] = wait_for(
        sent, timeout=DEADLINE, what=f"{instances} Alertmanager(s) sending {alertname} {status}"
    )
    return found


def test_an_ha_pair_firing_a_known_alert_opens_one_alert_card(am_bot: tuple[CiBot, Cluster]) -> None:
    bot, cluster = am_bot
    labels = {"severity": "warning", "contest": "c-42", "instance": "<db-1>&co"}
    annotations = {
        "summary": "Contest c-42 did not lock",
        "value": "3",
        "runbook_url": RUNBOOK_URL,
        "dashboard_url": DASHBOARD_URL,
    }
    cluster.fire("ContestLockFailed", labels=labels, annotations=annotations, start=now())
    incident = incident_for(bot, "ContestLockFailed")
    # Both instances sent the group; the bot opened one incident and knew the twin for what it was.
    assert sorted(answers(cluster, "ContestLockFailed", "firing")) == ["duplicate", "opened"]

    card = card_of(bot, incident.key)
    blocks = bot.card(incident.key, ALERTS).blocks
    assert blocks[0]["text"]["text"] == f"🔥 {incident.key} · ContestLockFailed"
    assert "*ContestLockFailed* — Contest c-42 did not lock" in card and "*Value:* `3`" in card
    assert "`instance=&lt;db-1&gt;&amp;co`" in card and "`severity=warning`" in card  # labels, escaped
    assert "*Severity:* Warning" in card and "*Failure mode:* Contest lock failed" in card
    assert "1. Detect: Alert ContestLockFailed fired" in card and "Verify: " in card  # the runbook's steps
    assert f"<{DASHBOARD_URL}|📊 Dashboard>" in card and f"<{RUNBOOK_URL}|📖 Runbook>" in card
    assert not [word for word in CI_ONLY if word in card]
    silence = re.search(r"<([^|>]+)\|🔕 Silence>", card)
    assert silence and silence[1].startswith(tuple(f"{i.url}/#/silences/new?filter=" for i in cluster.instances))

    note = thread_with(bot, incident.key, "fired")
    assert f"<{RUNBOOK_URL}|runbook>" in note and "*Detection:* contest_status_transitions_failed" in note
    thread_with(bot, incident.key, "Runbook checklist")
    paged = thread_with(bot, incident.key, "Paging")
    assert paged.startswith("📟 Alert firing: Contest c-42 did not lock.") and "escalated" not in paged
    wait_for(lambda: triggers(bot, "ContestLockFailed"), timeout=DEADLINE, what="the page")
    [page] = triggers(bot, "ContestLockFailed")
    assert page["payload"]["severity"] == "warning"  # type: ignore[index]
    assert cards_named(bot, "ContestLockFailed") == 1
    assert sum("fired" in m.text for m in bot.thread(incident.key, ALERTS)) == 1

    # The silence link is one Alertmanager takes: its matchers, as amtool adds them, mute this alert.
    matchers = re.findall(r'\w+="(?:[^"\\]|\\.)*"', urllib.parse.unquote(silence[1].split("filter=", 1)[1]))
    assert len(matchers) == 4
    first = cluster.instances[0].url
    added = subprocess.run(
        [
            cluster.amtool,
            "silence",
            "add",
            "--author=test",
            "--comment=card link",
            *matchers,
            f"--alertmanager.url={first}",
        ],
        capture_output=True,
        timeout=10,
    )
    assert added.returncode == 0, added.stderr

    def muted() -> bool:
        found = httpx.get(f"{first}/api/v2/alerts", params={"filter": 'alertname="ContestLockFailed"'}, timeout=5)
        return [a["status"]["state"] for a in found.json()] == ["suppressed"]

    wait_for(muted, timeout=DEADLINE, what="the alert silenced by the card's matchers")


def test_a_sev1_alert_without_runbook_url_gets_its_steps_a_bead_and_pages_ops_and_engineering(
    am_bot: tuple[CiBot, Cluster],
) -> None:
    bot, cluster = am_bot
    cluster.fire(
        "SettlementFailed",
        labels={"severity": "critical", "contest": "c-7"},
        annotations={
            "summary": "Settlement of contest c-7 failed",
            "description": "settlement_status = FAILED after 3 retries",
        },
        start=now(),
    )
    incident = incident_for(bot, "SettlementFailed")
    assert sorted(answers(cluster, "SettlementFailed", "firing")) == ["duplicate", "opened"]
    note = thread_with(bot, incident.key, "fired")
    assert "*Detection:* settlement_status = FAILED" in note and "|runbook>" not in note
    thread_with(bot, incident.key, "Runbook checklist")
    paged = thread_with(bot, incident.key, "Paging")
    assert "<!subteam^S0OPSTEAM>" in paged and "<!subteam^S0ENGINEERING>" in paged

    # Critical is the operations playbook's SEV-1: it files the incident record at once.
    bead = wait_for(lambda: incident_for(bot, "SettlementFailed").bead_id, timeout=DEADLINE, what="the bead")
    wait_for(lambda: f"*Bead:* `{bead}`" in card_of(bot, incident.key), timeout=DEADLINE, what="the bead on the card")
    card = card_of(bot, incident.key)
    assert "*Severity:* Critical" in card and "*Description:* settlement_status = FAILED after 3 retries" in card
    assert "📖 Runbook" not in card and not [word for word in CI_ONLY if word in card]
    wait_for(lambda: triggers(bot, "SettlementFailed"), timeout=DEADLINE, what="the page")
    pages = triggers(bot, "SettlementFailed")
    assert {p["payload"]["severity"] for p in pages} == {"critical"}  # type: ignore[index]
    assert all("nvariant" not in p["payload"]["summary"] for p in pages)  # type: ignore[index]
    assert [link["text"] for link in pages[0]["links"]][:1] == ["Alertmanager"]  # type: ignore[index]


def test_an_unknown_alert_gets_an_alert_card_and_a_no_runbook_note(am_bot: tuple[CiBot, Cluster]) -> None:
    bot, cluster = am_bot
    cluster.fire(
        "DiskAlmostFull",
        labels={"severity": "warning", "mountpoint": "/var/lib/postgresql"},
        annotations={"summary": "Disk 93% full"},
        start=now(),
    )
    incident = incident_for(bot, "DiskAlmostFull")
    note = thread_with(bot, incident.key, "No runbook")
    assert "*No runbook for DiskAlmostFull* in the Operational runbooks playbook" in note
    card = card_of(bot, incident.key)
    assert "📘 *No runbook* for `DiskAlmostFull`" in card and "*Failure mode:* unclassified" in card
    assert "`mountpoint=/var/lib/postgresql`" in card and "🔕 Silence" in card
    assert not [word for word in CI_ONLY if word in card]
    wait_for(lambda: triggers(bot, "DiskAlmostFull"), timeout=DEADLINE, what="a page for the unknown alert")
    assert cards_named(bot, "DiskAlmostFull") == 1


def test_resolution_redraws_the_card_and_documenting_closes_it(am_bot: tuple[CiBot, Cluster]) -> None:
    bot, cluster = am_bot
    labels = {"severity": "warning", "slo": "checkout"}
    start = now()
    cluster.fire("ErrorBudgetLow", labels=labels, annotations={"summary": "Error budget at 7%"}, start=start)
    incident = incident_for(bot, "ErrorBudgetLow")
    bot.card(incident.key, ALERTS)
    answers(cluster, "ErrorBudgetLow", "firing")

    cluster.resolve("ErrorBudgetLow", labels=labels, start=start)
    resolved = wait_for(
        lambda: "kept_open" in (found := answers(cluster, "ErrorBudgetLow", "resolved", instances=1)) and found,
        timeout=DEADLINE,
        what="the resolution handled",
    )
    assert sorted(resolved) in (["kept_open"], ["duplicate", "kept_open"])
    # The alert cleared: the card says so at once; seed 004 still wants the incident documented.
    wait_for(lambda: "🟢 *Alert resolved* by Alertmanager" in card_of(bot, incident.key), timeout=DEADLINE)
    assert bot.card(incident.key, ALERTS).blocks[0]["text"]["text"].startswith("🟢")
    thread_with(bot, incident.key, "Alertmanager resolved the alert, but")

    answer = bot.triage(
        f'status {incident.key} resolved what_we_changed="raised the checkout error budget alert" deploy rollback',
        user=OPS,
        channel=ALERTS,
    )
    assert f"{incident.key} resolved" in answer
    wait_for(
        lambda: bot.card(incident.key, ALERTS).blocks[0]["text"]["text"].startswith("✅"),
        timeout=DEADLINE,
        what="the card redrawn resolved",
    )
    card = card_of(bot, incident.key)
    assert '"actions"' not in card and "🟢 *Alert resolved*" in card
    wait_for(
        lambda: [e for e in bot.pagerduty.events if e["event_action"] == "resolve" and e["dedup_key"] == incident.key],
        timeout=DEADLINE,
        what="the page resolved",
    )


def test_twins_whose_start_times_differ_are_one_alert(am_bot: tuple[CiBot, Cluster]) -> None:
    """``amtool alert add`` without ``--start`` (and a pair of Prometheus replicas) gives each
    Alertmanager its own start time for the same alert: the twins differ by milliseconds."""
    bot, cluster = am_bot
    cluster.fire("DatabaseConnectionFailure", labels={"severity": "warning", "pool": "primary"}, start=None)
    incident = incident_for(bot, "DatabaseConnectionFailure")
    assert sorted(answers(cluster, "DatabaseConnectionFailure", "firing")) == ["opened", "unchanged"]
    thread_with(bot, incident.key, "fired")
    assert not [m.text for m in bot.thread(incident.key, ALERTS) if "more firing" in m.text]
    assert incident_for(bot, "DatabaseConnectionFailure").occurrence_count == 1


def test_a_group_of_alerts_is_one_card_with_its_common_labels(am_bot: tuple[CiBot, Cluster]) -> None:
    bot, cluster = am_bot
    common = {"severity": "warning", "job": "api"}
    instances = [{**common, "instance": "api-1"}, {**common, "instance": "api-2"}]
    # The description carries the value, as most rules write it ({{ $value }}): no `value` annotation.
    cluster.fire_many("AuthServiceUnavailable", instances, {"description": "auth error rate 7.5% over 5m"})
    incident = incident_for(bot, "AuthServiceUnavailable")
    wait_for(
        lambda: "*Firing (2):*" in card_of(bot, incident.key) or None,
        timeout=DEADLINE,
        what="both alerts on the card",
    )
    card = card_of(bot, incident.key)
    assert "*Firing (2):* `instance=api-1`, `instance=api-2`" in card  # each alert by what sets it apart
    assert "*AuthServiceUnavailable* — auth error rate 7.5% over 5m" in card  # no summary: the description
    silence = re.search(r"<([^|>]+)\|🔕 Silence>", card)
    # Silencing from the card silences the group: its matchers are the labels every alert shares.
    assert silence and urllib.parse.unquote(silence[1]).endswith(
        'filter={alertname="AuthServiceUnavailable",job="api",severity="warning"}'
    )
    assert cards_named(bot, "AuthServiceUnavailable") == 1
    assert incident_for(bot, "AuthServiceUnavailable").occurrence_count == 2
