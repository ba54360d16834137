"""Is this deployment ready for a real workspace? ``triagebot serve``'s Slack check at start and
``triagebot doctor``'s checks, each problem one line that says how to fix it.

``check`` proves the playbooks are valid; a valid playbook can still name the example workspace's
ids, a channel the bot was never invited to or a token missing a scope. Those only show at 3 a.m.
(a card that never appears, a page that never goes out), so they are checked here against Slack
itself.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot.clients.bd import SUPPORTED_BD, BdTracker, check_bd_version
from slackbot.clients.tracker import TrackerError
from slackbot.settings import Settings, secret

PLACEHOLDER_HOST = "triagebot.example.com"
# The example workspace's ids read like words (U0ALICE, S0LEADS, C0NIGHTLY); Slack's own ids carry
# digits after their first two characters (U024BE7LH), so letters only after "X0" is a placeholder.
PLACEHOLDER_ID = re.compile(r"^[UWCGSB]0[A-Z_]+$")
# The shipped playbooks' PagerDuty keys: well-formed, so only their being the example's gives them away.
EXAMPLE_PAGERDUTY_KEYS = frozenset(
    {
        "cdfef67d827e3725a97b442d5673948b",
        "7600cc51e9576d2acf48217cebb25cb8",
        "289605aa73480500c388010973584b51",
        "d607514ab8777bb7a995fa2a4d55a0e2",
        "24f5f7da78cec43a45769a14f28afef6",
    }
)
PAGERDUTY_KEY = re.compile(r"^[A-Za-z0-9]{32}$")

# Which YAML keys hold which kind of Slack id in runbooks/ (``responders`` is a list of groups).
ID_KEYS = {
    "channel": "channel",
    "default_channel": "channel",
    "ops_channel": "channel",
    "slack_channel": "channel",
    "usergroup": "usergroup",
    "responders": "usergroup",
    "user": "user",
    "oncall_user": "user",
    "bot_id": "bot",
}
FIXES = {
    "channel": "put the channel's id (channel name → About → Channel ID)",
    "usergroup": "put the user group's id (S…, from `usergroups.list` or the group's page)",
    "user": "put the person's member id (their profile → ⋮ → Copy member ID)",
    "bot": "put the notifier's bot id (B…, the bot_id of one of its messages)",
}


class SlackAuthError(Exception):
    """The bot token is missing or Slack refused it; the message is the one line to print."""


@dataclass(frozen=True)
class SlackAuth:
    team: str
    team_id: str
    bot_user: str
    bot_user_id: str
    scopes: frozenset[str]

    def summary(self) -> str:
        return f"ok: {self.team} ({self.team_id}) as @{self.bot_user} ({self.bot_user_id})"


def slack_auth(token: str | None, api_url: str) -> SlackAuth:
    """``auth.test`` with the bot token: who we are in which workspace, and the token's scopes
    (Slack sends them in the ``x-oauth-scopes`` header of every Web API answer)."""
    if not token:
        raise SlackAuthError(
            "SLACK_BOT_TOKEN is not set: set it to the app's Bot User OAuth Token (xoxb-…, app settings → "
            "OAuth & Permissions), or run `triagebot serve --no-slack` for ingest only"
        )
    client = WebClient(token=token, base_url=api_url, timeout=15)
    try:
        answer = client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown error") if exc.response is not None else "unknown error"
        raise SlackAuthError(
            f"Slack rejected SLACK_BOT_TOKEN (auth.test: {error}): copy the Bot User OAuth Token (xoxb-…) again "
            "from the app's OAuth & Permissions page (reinstall the app if it was revoked), or run with --no-slack"
        ) from None
    except Exception as exc:  # connection refused, DNS, TLS, timeout: all mean "cannot check the token"
        raise SlackAuthError(
            f"could not reach Slack at {api_url} to check SLACK_BOT_TOKEN ({type(exc).__name__}: {exc}); "
            "check SLACK_API_URL and the network, or run with --no-slack"
        ) from None
    headers = {k.lower(): v for k, v in (answer.headers or {}).items()}
    raw = headers.get("x-oauth-scopes", "")
    scopes = frozenset(s.strip() for s in (raw if isinstance(raw, str) else ",".join(raw)).split(",") if s.strip())
    return SlackAuth(
        team=str(answer.get("team", "")),
        team_id=str(answer.get("team_id", "")),
        bot_user=str(answer.get("user", "")),
        bot_user_id=str(answer.get("user_id", "")),
        scopes=scopes,
    )


# -- reading the configuration --------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """A scalar of a YAML file and where it is, for ``file:line`` in each problem."""

    file: str
    line: int
    key: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def _scalars(path: Path, label: str) -> Iterator[Value]:
    """Every scalar value with its key (list items take their list's key); comments are not values."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return  # `triagebot check` names unreadable files; nothing to look at here

    def walk(node: yaml.Node | None, key: str) -> Iterator[Value]:
        if isinstance(node, yaml.ScalarNode):
            yield Value(label, node.start_mark.line + 1, key, str(node.value))
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                yield from walk(item, key)
        elif isinstance(node, yaml.MappingNode):
            for name, item in node.value:
                yield from walk(item, str(getattr(name, "value", key)))

    yield from walk(root, "")


def config_values(runbooks_dir: Path, manifest: Path) -> list[Value]:
    files = sorted(runbooks_dir.rglob("*.yml")) + sorted(runbooks_dir.rglob("*.yaml"))
    values = [v for f in files for v in _scalars(f, str(f.relative_to(runbooks_dir.parent)))]
    return values + list(_scalars(manifest, manifest.name))


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.problems.append(line)


def slack_ids(values: list[Value]) -> dict[str, dict[str, list[Value]]]:
    """kind (channel, usergroup, user, bot) -> id -> where it is used."""
    found: dict[str, dict[str, list[Value]]] = {}
    for value in values:
        kind = ID_KEYS.get(value.key)
        if kind and re.fullmatch(r"[UWCGSB][A-Z0-9_]{2,}", value.text):
            found.setdefault(kind, {}).setdefault(value.text, []).append(value)
    return found


def _used(places: list[Value]) -> str:
    places = list(dict.fromkeys(places))  # a YAML alias repeats its anchor's node: one place
    more = f" (and {len(places) - 1} more place(s))" if len(places) > 1 else ""
    return f"{places[0].where}{more}"


def check_placeholders(values: list[Value], ids: dict[str, dict[str, list[Value]]], findings: Findings) -> None:
    for value in values:
        if PLACEHOLDER_HOST in value.text:
            findings.add(
                f"{value.where}: {value.key} is the placeholder {value.text}: run "
                "`triagebot manifest --url https://<your host> --out manifest.yml` and update the app from it"
            )
    for kind, found in ids.items():
        for slack_id, places in sorted(found.items()):
            if PLACEHOLDER_ID.match(slack_id):
                findings.add(f"{_used(places)}: {slack_id} is a placeholder {kind} id: {FIXES[kind]}")
    keys: dict[str, list[Value]] = {}
    for value in values:
        if value.key == "pagerduty_routing_key":
            keys.setdefault(value.text, []).append(value)
    for key, places in keys.items():
        shown = f"{key[:4]}…{key[-4:]}" if len(key) > 8 else key
        if key in EXAMPLE_PAGERDUTY_KEYS:
            findings.add(
                f"{_used(places)}: pagerduty_routing_key {shown} is the example workspace's placeholder: put the "
                "Events API v2 integration key of your service (PagerDuty → Service → Integrations)"
            )
        elif not PAGERDUTY_KEY.match(key):
            findings.add(
                f"{_used(places)}: pagerduty_routing_key {shown} is not a PagerDuty key (32 letters and digits, "
                f"this one has {len(key)} characters): copy the Events API v2 integration key again"
            )


def check_slack(
    auth: SlackAuth, client: WebClient, manifest_scopes: list[str], ids: dict[str, dict[str, list[Value]]]
) -> Iterator[str]:
    """What the token can do and whether the workspace has what the playbooks name."""
    for scope in manifest_scopes:
        if scope not in auth.scopes:
            yield (
                f"slack: the bot token lacks the scope {scope} that manifest.yml asks for: update the app from "
                "manifest.yml (or add it under OAuth & Permissions) and reinstall the app to the workspace"
            )
    real = {kind: {i: p for i, p in found.items() if not PLACEHOLDER_ID.match(i)} for kind, found in ids.items()}
    for channel_id, places in sorted(real.get("channel", {}).items()):
        try:
            channel = client.conversations_info(channel=channel_id)["channel"]
        except SlackApiError as exc:
            error = exc.response.get("error", "")
            yield (
                f"{_used(places)}: channel {channel_id} cannot be read ({error}): check the id, or invite "
                "the bot if the channel is private (/invite @triagebot)"
            )
            continue
        name = channel.get("name", channel_id)
        if channel.get("is_archived"):
            yield f"{_used(places)}: channel #{name} ({channel_id}) is archived: unarchive it or route elsewhere"
        elif not channel.get("is_member"):
            yield f"{_used(places)}: the bot is not in #{name} ({channel_id}): run `/invite @triagebot` in #{name}"
    groups = real.get("usergroup", {})
    if groups:
        known: set[str] | None
        try:
            listed: list[dict[str, str]] = client.usergroups_list(include_disabled=True).get("usergroups", [])
            known = {str(g.get("id")) for g in listed}
        except SlackApiError as exc:
            known = None
            yield f"slack: usergroups.list failed ({exc.response.get('error', '')}): the bot needs usergroups:read"
        for group_id, places in sorted(groups.items()):
            if known is not None and group_id not in known:
                yield f"{_used(places)}: user group {group_id} does not exist in {auth.team}: {FIXES['usergroup']}"
    for user_id, places in sorted(real.get("user", {}).items()):
        try:
            user = client.users_info(user=user_id)["user"]
        except SlackApiError as exc:
            yield f"{_used(places)}: user {user_id} not found ({exc.response.get('error', '')}): {FIXES['user']}"
            continue
        if user.get("deleted"):
            yield f"{_used(places)}: user {user_id} ({user.get('name', '')}) is deactivated: route to someone else"


def check_bd(settings: Settings) -> str | None:
    try:
        version = asyncio.run(BdTracker(settings.bd_bin, settings.beads_dir).version())
    except TrackerError as exc:
        return (
            f"bd: `{settings.bd_bin} version --json` failed ({exc.message}): install bd {SUPPORTED_BD} "
            "(docs/deploy.md) or set TRIAGE_BD_BIN to its path"
        )
    warning = check_bd_version(version)
    return f"bd: {warning}: install a supported bd" if warning else None


def doctor(settings: Settings, manifest: Path) -> Findings:
    findings = Findings()
    values = config_values(settings.runbooks_dir, manifest)
    ids = slack_ids(values)
    check_placeholders(values, ids, findings)
    if not secret(settings.ingest_secret):
        findings.add(
            "TRIAGE_INGEST_SECRET is not set: CI cannot send reports; set it on the bot and as a CI secret "
            "(e.g. `openssl rand -hex 32`)"
        )
    if not (secret(settings.slack_signing_secret) or secret(settings.slack_app_token)):
        findings.add(
            "neither SLACK_SIGNING_SECRET (HTTP mode) nor SLACK_APP_TOKEN (Socket Mode) is set: copy the "
            "Signing Secret from the app's Basic Information page"
        )
    bd_problem = check_bd(settings)
    if bd_problem:
        findings.add(bd_problem)
    try:
        auth = slack_auth(secret(settings.slack_bot_token), settings.slack_api_url)
    except SlackAuthError as exc:
        findings.add(f"slack: {exc}")
        return findings
    findings.notes.append(f"slack: {auth.summary()}")
    client = WebClient(token=secret(settings.slack_bot_token), base_url=settings.slack_api_url, timeout=15)
    scopes = [v.text for v in values if v.file == manifest.name and v.key == "bot"]
    findings.problems.extend(check_slack(auth, client, scopes, ids))
    return findings
