"""``/triage``: parse, ack at once, call a service, answer.

Reads answer ephemerally; changes answer in the channel (and post in the incident thread via the
outbox), as Slack users expect from incident bots.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from handlers.slack import unavailable
from handlers.slack.payloads import request_key
from slackbot.config import ChoiceError, Playbook
from slackbot.db.engine import UNAVAILABLE
from slackbot.domain.changes import (
    Acknowledge,
    Assign,
    Change,
    Classify,
    Escalate,
    IncidentError,
    RequestBead,
    RequestPostmortem,
    Resolve,
    SetFlag,
    SetMilestone,
    SetSeverity,
)
from slackbot.domain.ids import echo
from slackbot.history.store import incident_history
from slackbot.inbox import Applied, Request
from slackbot.incidents.digests import request_chart, stats_answer
from slackbot.reads.queries import QueryError, first_incidents, get_incident, parse_incident_key
from slackbot.reads.snapshot import read_session
from slackbot.runtime import Runtime
from slackbot.slack import replies
from slackbot.slack.escape import truncate

_USER = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$|^@?([UW][A-Z0-9]{2,})$")

Reply = tuple[str, bool]  # (text, visible in channel)
ERROR_LIMIT = 600
REPLY_LIMIT = 39_000  # Slack cuts messages at 40,000 characters


class UsageError(ValueError):
    pass


def _need(args: list[str], count: int, usage: str) -> None:
    if len(args) < count:
        raise UsageError(f"usage: `/triage {usage}`")


def register(app: AsyncApp, runtime: Runtime) -> None:
    triage_command = TriageCommand(runtime)

    @app.command("/triage")
    async def triage(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        # A read is acked before anything else (Slack gives us 3 seconds); a change is parsed and
        # recorded in the inbox first, then acked (an acked change is never lost, slackbot.inbox).
        request = Received(body, ack)
        if request.changes:
            await answer(request, respond)
            return
        if runtime.after_ack.busy:  # a flood of reads: refuse this one in its ack (slackbot.after_ack)
            await request.ack(replies.busy(runtime.after_ack.waiting, request.text))
            return
        await request.ack()
        # A read's query, rendering and answer are work after its ack like a change's: they wait
        # for Slack requests to pause (bounded, slackbot.after_ack), so a burst of commands is
        # acked at Bolt's own pace instead of sharing the core with their answers.
        async with runtime.after_ack.slot():
            await answer(request, respond)

    async def answer(request: Received, respond: AsyncRespond) -> None:
        try:
            text, in_channel = await triage_command.dispatch(request.text, request.user, request)
        except UNAVAILABLE as exc:
            # Told here, before the ack below: an error raised after an ack would make Bolt drop
            # the ack it has not sent yet, and Slack would wait its 3 s for nothing.
            await unavailable.tell(respond, exc)
            return
        finally:
            await request.ack()  # whatever did not ack yet (a usage error, a refusal) acks now
        await respond(text=truncate(text, REPLY_LIMIT), response_type="in_channel" if in_channel else "ephemeral")


# The subcommands that change an incident: their request is recorded before it is acked.
CHANGING = frozenset(
    {"ack", "classify", "severity", "assign", "escalate", "flag", "unflag", "bead", "status", "resolve", "postmortem"}
)
WAIT_FOR_OUTCOME = 30.0  # seconds; Slack takes replies at a response URL for 30 minutes


class Received:
    """One ``/triage`` request: its words, who sent it, its key and response URL, and its ack (once)."""

    def __init__(self, body: dict[str, Any], ack: AsyncAck) -> None:
        self.text = str(body.get("text", ""))
        self.user = str(body.get("user_id", ""))
        self.channel = str(body.get("channel_id", ""))
        self.key = request_key(body)
        url = body.get("response_url")
        self.response_url = url if isinstance(url, str) and url else None
        self.changes = self.text.strip().split(" ", 1)[0].lower() in CHANGING
        self._ack: AsyncAck | None = ack

    async def ack(self, text: str | None = None) -> None:
        if self._ack is not None:
            ack, self._ack = self._ack, None
            await (ack(text=text) if text else ack())


CURRENT: ContextVar[Received] = ContextVar("triage_request")


class TriageCommand:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.routes: dict[str, Callable[[list[str], str], Awaitable[Reply]]] = {
            "help": self.help,
            "list": self.list_,
            "show": self.show,
            "ack": self.ack,
            "classify": self.classify,
            "severity": self.severity,
            "assign": self.assign,
            "escalate": self.escalate,
            "flag": self.flag,
            "unflag": self.unflag,
            "bead": self.bead,
            "status": self.status,
            "resolve": self.resolve,
            "timeline": self.timeline,
            "runbook": self.runbook,
            "owners": self.owners,
            "postmortem": self.postmortem,
            "stats": self.stats,
        }

    async def dispatch(self, text: str, user_id: str, request: Received) -> Reply:
        CURRENT.set(request)  # this task's request: the listener's, whatever else runs beside it
        try:
            words = shlex.split(text.strip())
        except ValueError:
            words = text.strip().split()
        if not words:
            return replies.USAGE, False
        name, args = words[0].lower(), words[1:]
        handler = self.routes.get(name)
        if handler is None:
            return f"Unknown subcommand `{replies.escape(echo(name))}`.\n{replies.USAGE}", False
        try:
            return await handler(args, user_id)
        except UsageError as exc:
            return str(exc), False
        except (IncidentError, QueryError, ChoiceError) as exc:
            # Errors may quote what was typed: quoted back at a readable length, never a megabyte.
            return f"⚠️ {replies.escape(echo(str(exc), ERROR_LIMIT))}", False

    # -- reads ------------------------------------------------------------------------------------

    async def help(self, args: list[str], user_id: str) -> Reply:
        """The usage in the words of a playbook: an incident's (``help INC-7``) or a named one."""
        playbooks = self.runtime.playbooks
        playbook = playbooks.default
        if args:
            named = playbooks.named(args[0].lower())
            if named is not None:
                playbook = named
            else:
                playbook = await asyncio.to_thread(self.runtime.playbook_of, parse_incident_key(args[0]))
        return replies.usage(playbook, playbooks), False

    async def list_(self, args: list[str], user_id: str) -> Reply:
        which = args[0].lower() if args else "open"
        if which not in ("open", "mine", "overdue"):
            raise UsageError("usage: `/triage list [open|mine|overdue]`")

        def work() -> str:
            with read_session(self.runtime.engine) as session:  # a snapshot: no writer waits on a list
                lines = replies.LIST_LINES
                if which == "mine":
                    rows = first_incidents(session, lines, status="open", assignee=user_id)
                    title = "Open incidents assigned to you"
                elif which == "overdue":
                    rows = first_incidents(session, lines, overdue_at=self.runtime.clock.now())
                    title = "Overdue for classification"
                else:
                    rows = first_incidents(session, lines, status="open")
                    title = "Open incidents"
                return replies.incident_list(title, rows.incidents, self.runtime.playbooks, total=rows.total)

        return await asyncio.to_thread(work), False

    async def show(self, args: list[str], user_id: str) -> Reply:
        _need(args, 1, "show ID")
        incident_id = parse_incident_key(args[0])

        def work() -> str:
            view = self.runtime.card_view(incident_id)
            with read_session(self.runtime.engine) as session:
                found = incident_history(session, view.incident)
            history = (found[0], found[1].as_json()) if found else None
            pending = [(p.description, p.at) for p in view.pending]
            return replies.incident_detail(view.incident, view.playbook, pending, history)

        return await asyncio.to_thread(work), False

    async def timeline(self, args: list[str], user_id: str) -> Reply:
        _need(args, 1, "timeline ID")

        def work() -> str:
            with read_session(self.runtime.engine) as session:
                incident = get_incident(session, args[0])
                return replies.timeline_text(incident, self.runtime.timeline(session, incident.id or 0))

        return await asyncio.to_thread(work), False

    async def _playbook_and_topic(self, args: list[str]) -> tuple[Playbook, str | None]:
        """``[INC-7|playbook] [topic…]``: the first word picks the playbook when it names one."""
        playbooks = self.runtime.playbooks
        if args:
            named = playbooks.named(args[0].lower())
            if named is not None:
                return named, " ".join(args[1:]) or None
            if args[0].upper().startswith("INC-"):
                playbook = await asyncio.to_thread(self.runtime.playbook_of, parse_incident_key(args[0]))
                return playbook, " ".join(args[1:]) or None
        return playbooks.default, " ".join(args) or None

    async def runbook(self, args: list[str], user_id: str) -> Reply:
        playbook, topic = await self._playbook_and_topic(args)
        return replies.runbook_text(playbook, topic), False

    async def owners(self, args: list[str], user_id: str) -> Reply:
        playbook, topic = await self._playbook_and_topic(args)
        return replies.owners_text(playbook, topic), False

    # -- changes ----------------------------------------------------------------------------------

    async def _change(self, actor_id: str, key: str, change: Change, what: str = "change incidents") -> Applied:
        """Record the change, ack, and wait for what became of it (in order with the clicks and
        commands before it on the same incident). Who may act is checked when it is applied."""
        incident_id = parse_incident_key(key)
        request = CURRENT.get()
        asked = Request(request.key, incident_id, actor_id, "command", change, request.response_url, what)
        await self.runtime.inbox.record(asked, urgent=True)
        await request.ack()
        applied = await self.runtime.inbox.outcome(request.key, WAIT_FOR_OUTCOME)
        if applied is None:
            return Applied(
                request.key,
                incident_id,
                "pending",
                f"INC-{incident_id}: your change is recorded and will be made shortly.",
            )
        return applied

    async def _reply(self, actor_id: str, key: str, change: Change) -> Reply:
        applied = await self._change(actor_id, key, change)
        if applied.state == "refused":
            if applied.message.startswith("⛔"):
                return applied.message, False
            raise IncidentError(applied.message)
        # Outcome messages are built by the core from ids and labels we control (they may hold
        # real mentions); user-typed text only reaches replies through escaped errors.
        if not applied.changed:
            return applied.message, False
        return f"<@{actor_id}>: {applied.message}", True

    async def ack(self, args: list[str], user_id: str) -> Reply:
        _need(args, 1, "ack ID")
        return await self._reply(user_id, args[0], Acknowledge())

    async def classify(self, args: list[str], user_id: str) -> Reply:
        _need(args, 2, "classify ID CLASS")
        return await self._reply(user_id, args[0], Classify(" ".join(args[1:])))

    async def severity(self, args: list[str], user_id: str) -> Reply:
        _need(args, 2, "severity ID SEVERITY")
        return await self._reply(user_id, args[0], SetSeverity(" ".join(args[1:])))

    async def assign(self, args: list[str], user_id: str) -> Reply:
        _need(args, 2, "assign ID @user")
        match = _USER.match(args[1])
        if not match:
            raise UsageError("usage: `/triage assign ID @user` (mention the person so Slack sends their id)")
        return await self._reply(user_id, args[0], Assign(match.group(1) or match.group(2)))

    async def escalate(self, args: list[str], user_id: str) -> Reply:
        _need(args, 1, "escalate ID [reason]")
        return await self._reply(user_id, args[0], Escalate(" ".join(args[1:])))

    async def flag(self, args: list[str], user_id: str) -> Reply:
        _need(args, 2, "flag ID FLAG")
        return await self._reply(user_id, args[0], SetFlag(" ".join(args[1:])))

    async def unflag(self, args: list[str], user_id: str) -> Reply:
        _need(args, 2, "unflag ID FLAG")
        return await self._reply(user_id, args[0], SetFlag(" ".join(args[1:]), on=False))

    async def status(self, args: list[str], user_id: str) -> Reply:
        """``status ID MILESTONE [note]``, ``key=value`` words fill named record fields. A
        milestone of several words (``fix merged``) is matched greedily from the longest."""
        _need(args, 2, "status ID MILESTONE [note]")
        playbook = await asyncio.to_thread(self.runtime.playbook_of, parse_incident_key(args[0]))
        rest = args[1:]
        for size in range(len(rest), 0, -1):
            try:
                milestone = playbook.parse_milestone(" ".join(rest[:size]))
            except ChoiceError:
                continue
            words = rest[size:]
            break
        else:
            playbook.parse_milestone(rest[0])  # raises with the playbook's choices
            raise AssertionError("unreachable")
        fields = dict(w.split("=", 1) for w in words if "=" in w and w.split("=", 1)[0].isidentifier())
        note = " ".join(w for w in words if not ("=" in w and w.split("=", 1)[0].isidentifier()))
        return await self._reply(user_id, args[0], SetMilestone(milestone.key, note, fields))

    async def resolve(self, args: list[str], user_id: str) -> Reply:
        _need(args, 1, "resolve ID root cause…")
        return await self._reply(user_id, args[0], Resolve(" ".join(args[1:])))

    async def bead(self, args: list[str], user_id: str) -> Reply:
        _need(args, 1, "bead ID")
        return await self._reply(user_id, args[0], RequestBead())

    async def postmortem(self, args: list[str], user_id: str) -> Reply:
        """Uploads the postmortem into the thread (a draft while the incident is open)."""
        _need(args, 1, "postmortem ID")
        applied = await self._change(user_id, args[0], RequestPostmortem(), "post postmortems")
        if applied.state == "refused" and not applied.message.startswith("⛔"):
            raise IncidentError(applied.message)
        return applied.message if applied.state == "refused" else f"📝 {applied.message}.", False

    async def stats(self, args: list[str], user_id: str) -> Reply:
        runtime = self.runtime
        if not args:
            return await asyncio.to_thread(stats_answer, runtime.engine, runtime.playbooks, runtime.clock), False
        if [a.lower() for a in args] != ["chart"]:
            raise UsageError("usage: `/triage stats [chart]`")
        channel = CURRENT.get().channel
        if not channel:
            raise UsageError("`/triage stats chart` posts into the channel it is typed in; type it in a channel")
        queued = await asyncio.to_thread(request_chart, runtime.engine, runtime.clock, channel, user_id)
        if not queued:
            return "📈 The chart asked for a moment ago is already on its way to this channel.", False
        runtime.notify_committed()  # wake the outbox worker
        return "📈 Drawing the triage chart of the last 7 days; it is uploaded to this channel in a moment.", False
