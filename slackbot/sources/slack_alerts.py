"""Failure alerts already in Slack (a CI notifier's message, a message someone reacts to or
mentions the bot under) turned into incidents.

Three triggers, one path:

* a message from a configured **alert source** (``routing.alert_sources``: a CI notifier's bot
  id or user) in a **routed channel** (the suite channels and the default channel) that carries a
  run URL or scenario/invariant ids;
* the **triage reaction** (``routing.triage_reaction``) on any message;
* ``@triagebot triage`` in a thread (the thread's first message) or in a message of its own.

What a message says becomes a Report v1:

* ids are found with ``slackbot.sources.report.ID_PATTERN`` and kept only when their prefix is in the
  taxonomy (so ``SEV-1``, ``INC-42``, ``UTF-8`` in chatter never open incidents); a scenario id and
  the invariant id after it (or before it) make one result;
* a GitHub run URL (``…/actions/runs/<id>[/attempts/<n>]``) gives repository, run id and attempt,
  so the incident joins whatever the webhook or ``triagebot send`` opened for the same failure;
  without a URL the repository is ``slack`` and the run is the message itself;
* a message with a GitHub run URL but no ids, when ``GITHUB_TOKEN`` is set, fetches that run's
  report artifact exactly like the webhook does, and answers once it is ingested;
* a reacted or mentioned message with nothing usable still opens a card (a person asked for
  one): it is a failure without ids, which the contract check presets to harness/diagnostics;
* the suite is the one whose channel the message is in (else ``full``).

The answer goes in the thread of the source message, through the outbox (``source_reply``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy.engine import Engine
from sqlmodel import Session

from slackbot.clock import Clock
from slackbot.config import Playbooks
from slackbot.db.engine import session_scope
from slackbot.domain.effects import Event
from slackbot.incidents.effects import Effects
from slackbot.sources.github import GitHubRunService, enqueue_source_reply
from slackbot.sources.ingest import IngestResult, IngestService
from slackbot.sources.report import ID_PATTERN, Report, Result, RunInfo

GITHUB_RUN_URL = re.compile(
    r"https://github\.com/(?P<repo>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)/actions/runs/(?P<run>[0-9]+)"
    # An attempt is a small positive number; anything else (0, 10^20) is read as no attempt.
    r"(?:/attempts/(?P<attempt>[1-9][0-9]{0,8})(?![0-9]))?"
)
_SLACK_LINK = re.compile(r"<(https?://[^|>\s]+)(?:\|([^>]*))?>")
_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
MESSAGE_LIMIT = 4000
Trigger = Literal["alert_source", "reaction", "mention"]


@dataclass(frozen=True)
class SlackMessage:
    channel: str
    ts: str
    text: str
    user: str | None = None
    bot_id: str | None = None
    thread_ts: str | None = None  # set when the message is a reply in a thread

    @classmethod
    def from_api(cls, channel: str, message: dict[str, Any]) -> SlackMessage:
        """A message as events and ``conversations.history`` give it. CI notifiers often put
        the substance in attachments or blocks and only a summary in ``text``."""
        return cls(
            channel=channel,
            ts=str(message.get("ts", "")),
            text=message_text(message),
            user=message.get("user"),
            bot_id=message.get("bot_id") or (message.get("bot_profile") or {}).get("id"),
            thread_ts=message.get("thread_ts") if message.get("thread_ts") != message.get("ts") else None,
        )


def message_text(message: dict[str, Any]) -> str:
    parts: list[str] = [str(message.get("text") or "")]
    for attachment in message.get("attachments") or []:
        if isinstance(attachment, dict):
            for key in ("pretext", "title", "title_link", "text", "fallback", "footer"):
                if attachment.get(key):
                    parts.append(str(attachment[key]))
            for item in attachment.get("fields") or []:
                if isinstance(item, dict):
                    parts.append(f"{item.get('title', '')} {item.get('value', '')}")
    for block in message.get("blocks") or []:
        if not isinstance(block, dict):
            continue
        text = block.get("text")
        if isinstance(text, dict) and text.get("type") != "rich_text":
            parts.append(str(text.get("text", "")))
        for item in block.get("fields") or []:
            if isinstance(item, dict):
                parts.append(str(item.get("text", "")))
        for element in block.get("elements") or []:
            if isinstance(element, dict) and isinstance(element.get("text"), str):
                parts.append(element["text"])
    seen: list[str] = []
    for part in parts:
        if part and part not in seen:
            seen.append(part)
    return "\n".join(seen)[: MESSAGE_LIMIT * 4]


def plain(text: str) -> str:
    """Slack markup to readable text: ``<url|label>`` → ``label (url)``, entities decoded."""
    text = _SLACK_LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), text)
    text = _MENTION.sub("", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


@dataclass(frozen=True)
class RunRef:
    repository: str
    run_id: str
    attempt: int | None
    url: str


@dataclass
class ParsedAlert:
    run: RunRef | None
    pairs: list[tuple[str | None, str | None]] = field(default_factory=list)

    @property
    def actionable(self) -> bool:
        return self.run is not None or bool(self.pairs)


@dataclass
class AlertOutcome:
    action: Literal["ignored", "ingested", "fetching"]
    reason: str = ""
    result: IngestResult | None = None


class AlertService:
    def __init__(
        self,
        playbooks: Playbooks,
        clock: Clock,
        ingest: IngestService,
        github: GitHubRunService | None = None,
    ) -> None:
        """``github`` is given when a GitHub token is configured, so run URLs can be fetched."""
        self.playbooks = playbooks
        self.scenario_prefixes = {e.prefix for p in playbooks for e in p.taxonomy.scenarios}
        self.invariant_prefixes = {e.prefix for p in playbooks for e in p.taxonomy.invariants}
        self.clock = clock
        self.ingest = ingest
        self.github = github

    # -- what to listen to ------------------------------------------------------------------------

    @property
    def routed_channels(self) -> set[str]:
        return self.playbooks.routed_channels

    def is_alert_source(self, user: str | None, bot_id: str | None) -> bool:
        for source in self.playbooks.workspace.alert_sources:
            if (source.bot_id and bot_id == source.bot_id) or (source.user and user == source.user):
                return True
        return False

    def suite_of_channel(self, channel: str) -> str:
        return self.playbooks.suite_of_channel(channel)[1]

    # -- reading a message ------------------------------------------------------------------------

    def parse(self, text: str) -> ParsedAlert:
        match = GITHUB_RUN_URL.search(text)
        run = None
        if match:
            attempt = int(match["attempt"]) if match["attempt"] else None
            run = RunRef(match["repo"], match["run"], attempt, match.group(0))
        return ParsedAlert(run, self.id_pairs(text))

    def id_pairs(self, text: str) -> list[tuple[str | None, str | None]]:
        """Scenario and invariant ids in reading order; each scenario pairs with the nearest
        invariant that follows it (or precedes it, when that one is still unpaired)."""
        pairs: list[list[str | None]] = []
        for match in ID_PATTERN.finditer(text):
            ident, prefix = match.group(0), match.group(1)
            slot = 1 if prefix in self.invariant_prefixes else 0 if prefix in self.scenario_prefixes else None
            if slot is None or any(p[slot] == ident for p in pairs):
                continue
            if pairs and pairs[-1][slot] is None:
                pairs[-1][slot] = ident
            else:
                pair: list[str | None] = [None, None]
                pair[slot] = ident
                pairs.append(pair)
        return [(p[0], p[1]) for p in pairs]

    def report_for(self, message: SlackMessage, parsed: ParsedAlert) -> Report:
        text = plain(message.text)
        first_line = next((line.strip() for line in text.splitlines() if line.strip()), "(empty message)")
        when = _ts_time(message.ts)
        run = parsed.run
        info = RunInfo(
            provider="github" if run else "slack",
            repository=run.repository if run else "slack",
            run_id=run.run_id if run else f"{message.channel}-{message.ts}",
            run_attempt=(run.attempt or 1) if run else 1,
            url=run.url if run else None,
            workflow=None,
            suite=self.suite_of_channel(message.channel),
            finished_at=when,
        )
        if parsed.pairs:
            results = [
                Result(
                    status="failed",
                    scenario_id=scenario,
                    invariant_id=invariant,
                    message=text[:MESSAGE_LIMIT],
                    test_name=first_line[:500],
                )
                for scenario, invariant in parsed.pairs
            ]
        else:
            results = [Result(status="error", message=text[:MESSAGE_LIMIT], test_name=first_line[:500])]
        return Report(schema_version=1, run=info, results=results)

    # -- handling ---------------------------------------------------------------------------------

    def should_consider(self, message: SlackMessage) -> bool:
        """The cheap check for every channel message: routed channel and a configured source."""
        return message.channel in self.routed_channels and self.is_alert_source(message.user, message.bot_id)

    def handle(
        self, engine: Engine, message: SlackMessage, *, trigger: Trigger, actor: str | None = None
    ) -> AlertOutcome:
        parsed = self.parse(message.text)
        if trigger == "alert_source" and not parsed.actionable:
            return AlertOutcome("ignored", "no run URL and no scenario/invariant id in the message")
        reply_to = {"channel": message.channel, "ts": message.ts, "thread_ts": message.thread_ts or message.ts}
        if parsed.run is not None and not parsed.pairs and self.github is not None:
            github = self.github
            run = parsed.run
            with session_scope(engine) as session:
                effects = Effects(now=self.clock.now())
                effects.record(
                    Event.ALERT_RECEIVED,
                    f"Slack {trigger} asked for run {run.repository}#{run.run_id}: fetching its report",
                    source="slack",
                    actor=actor or message.user or "slack",
                    data={"channel": message.channel, "ts": message.ts, "url": run.url},
                )
                github.queue_fetch(
                    effects, repository=run.repository, run_id=run.run_id, run_attempt=run.attempt, reply_to=reply_to
                )
                effects.flush(session)
            return AlertOutcome("fetching", f"fetching the report of {run.repository}#{run.run_id}")
        report = self.report_for(message, parsed)

        def then(session: Session, result: IngestResult, effects: Effects) -> None:
            effects.record(
                Event.ALERT_RECEIVED,
                f"Slack {trigger} in channel {message.channel} opened or joined "
                + (", ".join(i.key for i in result.incidents) or "nothing"),
                source="slack",
                actor=actor or message.user or "slack",
                data={"channel": message.channel, "ts": message.ts, "trigger": trigger},
            )
            enqueue_source_reply(effects, reply_to, result)

        result = self.ingest.ingest_report(engine, report, source="slack", then=then)
        return AlertOutcome("ingested", result=result)


def _ts_time(ts: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(ts), UTC)
    except (TypeError, ValueError, OverflowError):
        return None
