"""Filling the local Slack emulator with the workspace the playbooks describe (the demo, the
simulation and the benchmarks all start from it)."""

from __future__ import annotations

from slackbot.config import Playbooks
from slackbot.config.targets import Target
from slackbot.emulator.server import SlackEmulator


def seed_workspace(emulator: SlackEmulator, playbooks: Playbooks) -> None:
    """Create every user, group and channel the playbooks name, so the demo workspace matches the
    routing tables. Group membership: the people the routing tables pair with each group, and
    every on-call person in the responder groups."""
    workspace = playbooks.workspace
    channels = {workspace.default_channel: "integration-triage", workspace.ops_channel: "triagebot-ops"}
    members: dict[str, set[str]] = {}
    users: set[str] = set()
    maintainers: set[str] = set()

    def visit(target: Target | None) -> None:
        if target is None:
            return
        person = target.dm_user
        if person:
            users.add(person)
        if target.usergroup:
            members.setdefault(target.usergroup, set())
            if person:
                members[target.usergroup].add(person)
        if target.channel:
            channels.setdefault(target.channel, (target.handle or target.channel).lstrip("@#"))

    for playbook in playbooks:
        routing = playbook.routing
        if routing.default_channel:
            channels.setdefault(routing.default_channel, playbook.name)
        for suite, route in routing.suites.items():
            channels.setdefault(route.channel, f"{playbook.name}-{suite}")
        for class_route in routing.classes.values():
            for target in (
                class_route.owner,
                class_route.secondary_owner,
                class_route.fallback,
                class_route.escalation,
            ):
                visit(target)
        for target in (routing.release_maintainer, routing.unrouted):
            visit(target)
        if routing.release_maintainer and routing.release_maintainer.user:
            maintainers.add(routing.release_maintainer.user)
    for group in workspace.responders:
        if not members.get(group):  # a responder group nobody routes to: the on-call people
            members[group] = users - maintainers
    for user in sorted(users):
        emulator.add_user(user, user.removeprefix("U0").lower())
    for channel_id, name in channels.items():
        emulator.add_channel(channel_id, name)
    for group_id, people in members.items():
        emulator.add_usergroup(group_id, group_id.removeprefix("S0").lower(), sorted(people))
