"""``/triage``: parse, ack at once, call a service, answer.

Reads answer ephemerally; changes answer in the channel (and post in the incident thread via the
outbox), as Slack users expect from incident bots.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from slackbot.core import Core
from slackbot.db.engine import session_scope
from slackbot.services.incidents import Actor, IncidentError
from slackbot.services.queries import QueryError, get_incident, list_incidents, parse_incident_key
from slackbot.services.stats import StatsService, stats_text
from slackbot.slack import replies

_USER = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$|^@?([UW][A-Z0-9]{2,})$")

Reply = tuple[str, bool]  # (text, visible in channel)


class UsageError(ValueError):
    pass


def _need(args: list[str], count: int, usage: str) -> None:
    if len(args) < count:
        raise UsageError(f"usage: `/triage {usage}`")


def register(app: AsyncApp, core: Core) -> None:
    triage_command = TriageCommand(core)

    @app.command("/triage")
    async def triage(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()  # nothing before this: Slack gives us 3 seconds
        text, in_channel = await triage_command.dispatch(body.get("text", ""), body.get("user_id", ""))
        await respond(text=text, response_type="in_channel" if in_channel else "ephemeral")


class TriageCommand:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.routes: dict[str, Callable[[list[str], str], Awaitable[Reply]]] = {
            "help": self.help,
            "list": self.list_,
            "show": self.show,
            "ack": self.ack,
            "classify": self.classify,
            "severity": self.severity,
            "assign": self.assign,
            "escalate": self.escalate,
            "bead": self.bead,
            "status": self.status,
            "resolve": self.resolve,
            "timeline": self.timeline,
            "runbook": self.runbook,
            "owners": self.owners,
            "postmortem": self.postmortem,
            "stats": self.stats,
        }

    async def dispatch(self, text: str, user_id: str) -> Reply:
        try:
            words = shlex.split(text.strip())
        except ValueError:
            words = text.strip().split()
        if not words:
            return replies.USAGE, False
        name, args = words[0].lower(), words[1:]
        handler = self.routes.get(name)
        if handler is None:
            return f"Unknown subcommand `{replies.escape(name)}`.\n{replies.USAGE}", False
        try:
            return await handler(args, user_id)
        except UsageError as exc:
            return str(exc), False
        except (IncidentError, QueryError) as exc:
            return f"⚠️ {replies.escape(str(exc))}", False

    # -- reads ------------------------------------------------------------------------------------

    async def help(self, args: list[str], user_id: str) -> Reply:
        return replies.USAGE, False

    async def list_(self, args: list[str], user_id: str) -> Reply:
        which = args[0].lower() if args else "open"
        if which not in ("open", "mine", "overdue"):
            raise UsageError("usage: `/triage list [open|mine|overdue]`")

        def work() -> str:
            with session_scope(self.core.engine) as session:
                if which == "mine":
                    rows = list_incidents(session, status="open", assignee=user_id)
                    title = "Open incidents assigned to you"
                elif which == "overdue":
                    rows = list_incidents(session, overdue_at=self.core.clock.now())
                    title = "Overdue for classification"
                else:
                    rows = list_incidents(session, status="open")
                    title = "Open incidents"
                return replies.incident_list(title, rows, self.core.runbook)

        return await asyncio.to_thread(work), False

    async def show(self, args: list[str], user_id: str) -> Reply:
        _need(args, 1, "show ID")
        incident_id = parse_incident_key(args[0])

        def work() -> str:
            view = self.core.card_view(incident_id)
            return replies.incident_detail(
                view.incident, self.core.runbook, [(p.description, p.at) for p in view.pending]
            )

        return await asyncio.to_thread(work), False

    async def timeline(self, args: list[str], user_id: str) -> Reply:
        _need(args, 1, "timeline ID")

        def work() -> str:
            with session_scope(self.core.engine) as session:
                incident = get_incident(session, args[0])
                return replies.timeline_text(incident, self.core.timeline(session, incident.id or 0))

        return await asyncio.to_thread(work), False

    async def runbook(self, args: list[str], user_id: str) -> Reply:
        return replies.runbook_text(self.core.runbook, args[0] if args else None), False

    async def owners(self, args: list[str], user_id: str) -> Reply:
        return replies.owners_text(self.core.runbook, args[0] if args else None), False

    # -- changes ----------------------------------------------------------------------------------

    async def _change(self, actor_id: str, operation: str, key: str, **kwargs: Any) -> Reply:
        if not await self.core.responders.allowed(actor_id):
            return (
                f"⛔ Only responders ({self.core.responders.describe()}) can change incidents. "
                "Ask one of them, or a lead to add you to the group.",
                False,
            )
        incident_id = parse_incident_key(key)
        outcome = await self.core.after_ack.run(  # in order with the clicks before it
            asyncio.to_thread,
            self.core.incidents.run,
            self.core.engine,
            operation,
            incident_id,
            Actor(actor_id, "command"),
            **kwargs,
        )
        if outcome.changed:
            self.core.notify_committed()
        # Outcome messages are built by the services from ids and labels we control (they may
        # hold real mentions); user-typed text only reaches replies through escaped errors.
        if not outcome.changed:
            return outcome.message, False
        return f"<@{actor_id}>: {outcome.message}", True

    async def ack(self, args: list[str], user_id: str) -> Reply:
        _need(args, 1, "ack ID")
        return await self._change(user_id, "acknowledge", args[0])

    async def classify(self, args: list[str], user_id: str) -> Reply:
        _need(args, 2, "classify ID CLASS")
        return await self._change(user_id, "classify", args[0], failure_class=args[1])

    async def severity(self, args: list[str], user_id: str) -> Reply:
        _need(args, 2, "severity ID SEV-n")
        return await self._change(user_id, "set_severity", args[0], severity=args[1])

    async def assign(self, args: list[str], user_id: str) -> Reply:
        _need(args, 2, "assign ID @user")
        match = _USER.match(args[1])
        if not match:
            raise UsageError("usage: `/triage assign ID @user` (mention the person so Slack sends their id)")
        return await self._change(user_id, "assign", args[0], user_id=match.group(1) or match.group(2))

    async def escalate(self, args: list[str], user_id: str) -> Reply:
        _need(args, 1, "escalate ID [reason]")
        return await self._change(user_id, "escalate", args[0], reason=" ".join(args[1:]))

    async def status(self, args: list[str], user_id: str) -> Reply:
        _need(args, 2, "status ID MILESTONE [note]")
        return await self._change(user_id, "set_milestone", args[0], milestone=args[1], note=" ".join(args[2:]))

    async def resolve(self, args: list[str], user_id: str) -> Reply:
        _need(args, 1, "resolve ID root cause…")
        return await self._change(user_id, "resolve", args[0], note=" ".join(args[1:]))

    async def bead(self, args: list[str], user_id: str) -> Reply:
        _need(args, 1, "bead ID")
        return await self._change(user_id, "request_bead", args[0])

    async def postmortem(self, args: list[str], user_id: str) -> Reply:
        """Uploads the postmortem into the thread (a draft while the incident is open)."""
        _need(args, 1, "postmortem ID")
        if not await self.core.responders.allowed(user_id):
            return f"⛔ Only responders ({self.core.responders.describe()}) can post postmortems.", False
        incident_id = parse_incident_key(args[0])

        def work() -> str:
            with session_scope(self.core.engine) as session:
                return self.core.postmortems.request(session, incident_id, Actor(user_id, "command")).message

        message = await asyncio.to_thread(work)
        self.core.notify_committed()
        return f"📝 {message}.", False

    async def stats(self, args: list[str], user_id: str) -> Reply:
        service = StatsService(self.core.runbook, self.core.clock)
        windows = await asyncio.to_thread(service.report, self.core.engine)
        return stats_text(windows, self.core.runbook.policy.classify_within), False
