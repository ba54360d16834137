"""Process configuration from the environment (DESIGN.md section 3).

Secrets are ``SecretStr`` so they never show up in logs, reprs or error messages by accident.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from slackbot.domain.effects import EffectKind

REPO_ROOT = Path(__file__).resolve().parent.parent
# A checkout reads the repository's runbooks/ and manifest.yml; an installed wheel carries the same
# files in slackbot/shipped/ (symlinks in the repository, copied into the wheel as package data).
SHIPPED = REPO_ROOT if (REPO_ROOT / "runbooks").is_dir() else Path(__file__).resolve().parent / "shipped"
DEFAULT_RUNBOOKS = SHIPPED / "runbooks"
DEFAULT_MANIFEST = SHIPPED / "manifest.yml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    database_url: str = Field(default="sqlite:///triage.db", alias="TRIAGE_DATABASE_URL")
    runbooks_dir: Path = Field(default=DEFAULT_RUNBOOKS, alias="TRIAGE_RUNBOOKS_DIR")
    ingest_secret: SecretStr | None = Field(default=None, alias="TRIAGE_INGEST_SECRET")
    api_token: SecretStr | None = Field(
        default=None,
        alias="TRIAGE_API_TOKEN",
        description="bearer token for /api/* from non-loopback clients",
    )
    bd_bin: str = Field(default="bd", alias="TRIAGE_BD_BIN")
    beads_dir: Path | None = Field(default=None, alias="BEADS_DIR")
    pagerduty_events_url: str = Field(default="https://events.pagerduty.com/v2/enqueue", alias="PAGERDUTY_EVENTS_URL")
    github_api_url: str = Field(default="https://api.github.com", alias="GITHUB_API_URL")
    github_token: SecretStr | None = Field(default=None, alias="GITHUB_TOKEN")
    github_webhook_secret: SecretStr | None = Field(default=None, alias="GITHUB_WEBHOOK_SECRET")
    github_report_artifact: str | None = Field(
        default=None,
        alias="TRIAGE_GITHUB_REPORT_ARTIFACT",
        description="glob of the artifact that holds the report; default: names containing report or junit",
    )
    alertmanager_token: SecretStr | None = Field(
        default=None,
        alias="TRIAGE_ALERTMANAGER_TOKEN",
        description="bearer token Alertmanager sends to /webhooks/alertmanager (refused when unset)",
    )
    public_url: str = Field(
        default="http://127.0.0.1:3000", alias="TRIAGE_PUBLIC_URL", description="links to this bot in pages"
    )
    max_body_bytes: int = Field(default=5 * 1024 * 1024, alias="TRIAGE_MAX_BODY_BYTES")
    timer_interval: float = Field(
        default=0.25,
        gt=0,
        alias="TRIAGE_TIMER_INTERVAL",
        description="seconds between looks for due timers (the most a timer fires late, plus the firing)",
    )
    lane_rate: float = Field(
        default=1.0,
        gt=0,
        alias="TRIAGE_LANE_RATE",
        description="posts per second per Slack channel (Slack allows about 1; raise only for a local emulator)",
    )
    coalesce_seconds: float = Field(
        default=2.0,
        ge=0,
        alias="TRIAGE_COALESCE_SECONDS",
        description=(
            "seconds a classification's thread post and checklist wait for a correction; one replaced "
            'sooner is folded into the next one\'s post ("classified X, then Y") and never posted'
        ),
    )
    after_ack_max_delay: float = Field(
        default=10.0,
        ge=0,
        alias="TRIAGE_AFTER_ACK_MAX_DELAY",
        description="seconds a click's change may wait while Slack requests keep arriving (acks go first)",
    )
    after_ack_quiet: float = Field(
        default=0.02,
        gt=0,
        alias="TRIAGE_AFTER_ACK_QUIET",
        description="seconds without Slack requests after which recorded changes are applied (acks go first)",
    )
    after_ack_backlog: int = Field(
        default=200,
        ge=1,
        alias="TRIAGE_AFTER_ACK_BACKLOG",
        description=(
            "reads (/triage list, show, stats ...) that may wait for their answer while Slack requests keep "
            "arriving; past it a read is answered at once that the bot is busy (changes are never refused)"
        ),
    )
    inbox_poll: float = Field(
        default=1.0,
        gt=0,
        alias="TRIAGE_INBOX_POLL",
        description="seconds between looks for Slack requests another replica (or a crashed process) recorded",
    )
    outbox_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        alias="TRIAGE_OUTBOX_LEASE_SECONDS",
        description="how long a claimed delivery is reserved; a crashed replica's work is taken over after it",
    )
    delivery_deadlines: dict[str, float] = Field(
        default_factory=dict,
        alias="TRIAGE_DELIVERY_DEADLINES",
        description=(
            'JSON object, effect kind -> seconds one delivery may take in all, e.g. {"github_run": 40}; '
            "kinds left out keep their defaults; never more than 3/4 of the outbox lease"
        ),
    )

    retain_occurrences_days: int | None = Field(
        default=None,
        ge=30,
        alias="TRIAGE_RETAIN_OCCURRENCES_DAYS",
        description=(
            "days a resolved incident keeps its occurrences before `triagebot archive` moves them to an "
            "archive file; unset keeps them forever. At least 30 (/triage stats reads 30 days)"
        ),
    )
    retain_timeline_days: int | None = Field(
        default=None,
        ge=30,
        alias="TRIAGE_RETAIN_TIMELINE_DAYS",
        description=(
            "days a resolved incident keeps its timeline (audit rows) before `triagebot archive` moves it, "
            "whole, to an archive file; unset keeps it forever. At least 30 (/triage stats reads 30 days)"
        ),
    )

    @field_validator("delivery_deadlines")
    @classmethod
    def _known_kinds_positive_seconds(cls, value: dict[str, float]) -> dict[str, float]:
        kinds = {kind.value for kind in EffectKind}
        for kind, seconds in value.items():
            if kind not in kinds:
                raise ValueError(f"{kind!r} is not an effect kind (one of: {', '.join(sorted(kinds))})")
            if not seconds > 0:
                raise ValueError(f"{kind}: the deadline must be a positive number of seconds")
        return value


def secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
