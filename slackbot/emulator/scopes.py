"""Which bot scopes each Slack Web API method and event needs: data, each entry with its source.

One table for two readers, so they cannot drift apart:

* the emulator (``api.WebApi``) refuses a call its token's scopes do not cover, with Slack's
  ``missing_scope`` (or ``not_in_channel``, see ``unjoined_public``);
* ``tests/slack/test_scopes.py`` collects every method the bot's code calls and every event it
  subscribes to, looks each one up here and checks that ``manifest.yml`` asks for exactly the
  scopes that follow, none missing and none extra.

Sources. Slack's machine-readable spec, slackapi/slack-api-specs @ bc08db49625630e3585bf2f1322128ea04f2a7f3
``web-api/slack_web_openapi_v2.json`` (a copy and its provenance: /work/shared/fixtures/external/SOURCES.md),
gives each method's scopes but is frozen in October 2020: it names classic workspace-app scopes
(``chat:write:bot``, ``files:write:user``, which are ``chat:write`` and ``files:write`` for a bot
token) and lacks the newer upload methods. The per-method and per-event pages of Slack's
documentation (the ``source`` of each entry) are the authority; a test checks every entry the spec
knows against the spec, after that one renaming.

Conversation kinds. The history and info methods need the scope of the conversation's kind:
``conversations.history`` on a public channel needs ``channels:history``, on a DM ``im:history``
(the spec lists all four kinds as alternatives). Those entries name an ``action`` instead of
scopes; ``KINDS_THE_BOT_READS`` says on which kinds of conversation the bot calls them, and why.
``chat.postMessage`` into a public channel the bot is not a member of needs ``chat:write.public``
besides ``chat:write``: without it Slack answers ``not_in_channel``.
"""

from __future__ import annotations

from dataclasses import dataclass

DOCS = "https://docs.slack.dev/reference"
OPENAPI = "slackapi/slack-api-specs@bc08db49625630e3585bf2f1322128ea04f2a7f3:web-api/slack_web_openapi_v2.json"


@dataclass(frozen=True)
class MethodScopes:
    """``any_of``: a token with one of these may call the method (empty: no scope needed).
    ``action``: instead of ``any_of``, the scope is ``<kind>:<action>`` of the conversation called on.
    ``unjoined_public``: also needed to post into a public channel the bot has not joined.
    ``classic``: what the 2020 spec names instead, where the granular scope is not just the
    classic one without its ``:bot`` suffix."""

    source: str
    any_of: tuple[str, ...] = ()
    action: str | None = None
    unjoined_public: str | None = None
    classic: tuple[str, ...] = ()


def _doc(method: str) -> str:
    return f"{DOCS}/methods/{method}"


# Every method the emulator serves (the bot calls a subset; the test says which).
METHODS: dict[str, MethodScopes] = {
    "api.test": MethodScopes(_doc("api.test")),
    "auth.test": MethodScopes(_doc("auth.test")),
    "chat.postMessage": MethodScopes(
        _doc("chat.postMessage"), ("chat:write",), unjoined_public="chat:write.public"
    ),  # chat:write.public: f"{DOCS}/scopes/chat:write.public"
    "chat.update": MethodScopes(_doc("chat.update"), ("chat:write",)),
    "chat.delete": MethodScopes(_doc("chat.delete"), ("chat:write",)),
    "chat.postEphemeral": MethodScopes(_doc("chat.postEphemeral"), ("chat:write",)),
    "chat.getPermalink": MethodScopes(_doc("chat.getPermalink")),
    # A DM with one user (what the bot opens to page someone) is im:write; a group DM mpim:write.
    "conversations.open": MethodScopes(_doc("conversations.open"), ("im:write", "mpim:write")),
    "conversations.join": MethodScopes(_doc("conversations.join"), ("channels:join",), classic=("channels:write",)),
    "conversations.history": MethodScopes(_doc("conversations.history"), action="history"),
    "conversations.replies": MethodScopes(_doc("conversations.replies"), action="history"),
    "conversations.info": MethodScopes(_doc("conversations.info"), action="read"),
    "users.info": MethodScopes(_doc("users.info"), ("users:read",)),
    "users.list": MethodScopes(_doc("users.list"), ("users:read",)),
    "users.lookupByEmail": MethodScopes(_doc("users.lookupByEmail"), ("users:read.email",)),
    "usergroups.list": MethodScopes(_doc("usergroups.list"), ("usergroups:read",)),
    "usergroups.users.list": MethodScopes(_doc("usergroups.users.list"), ("usergroups:read",)),
    "views.open": MethodScopes(_doc("views.open")),
    "views.push": MethodScopes(_doc("views.push")),
    "views.update": MethodScopes(_doc("views.update")),
    "views.publish": MethodScopes(_doc("views.publish")),
    "reactions.add": MethodScopes(_doc("reactions.add"), ("reactions:write",)),
    "reactions.remove": MethodScopes(_doc("reactions.remove"), ("reactions:write",)),
    "files.upload": MethodScopes(_doc("files.upload"), ("files:write",)),
    # Not in the 2020 spec; the scope pages list them under files:write.
    "files.getUploadURLExternal": MethodScopes(_doc("files.getUploadURLExternal"), ("files:write",)),
    "files.completeUploadExternal": MethodScopes(_doc("files.completeUploadExternal"), ("files:write",)),
    "files.info": MethodScopes(_doc("files.info"), ("files:read",)),
}

# Event subscriptions (settings.event_subscriptions.bot_events) -> the scope each needs.
EVENTS: dict[str, tuple[tuple[str, ...], str]] = {
    "app_home_opened": ((), f"{DOCS}/events/app_home_opened"),  # needs a bot user, no scope
    "app_mention": (("app_mentions:read",), f"{DOCS}/events/app_mention"),
    "message.channels": (("channels:history",), f"{DOCS}/events/message.channels"),
    "message.groups": (("groups:history",), f"{DOCS}/events/message.groups"),
    "message.im": (("im:history",), f"{DOCS}/events/message.im"),
    "message.mpim": (("mpim:history",), f"{DOCS}/events/message.mpim"),
    "reaction_added": (("reactions:read",), f"{DOCS}/events/reaction_added"),
}

# App features that need a scope of their own.
FEATURES: dict[str, tuple[tuple[str, ...], str]] = {
    "slash_commands": (("commands",), f"{DOCS}/scopes/commands"),
}

# The kinds of conversation the bot calls the per-kind methods on. Cards, threads and checklists
# live in the public channels routing.yml names; pages are DMs the bot opened, read back to find a
# page a crashed worker already sent; ``triagebot doctor`` reads the routing channels' info.
# Private channels (``groups``) are not supported for cards: they would need groups:history and
# groups:read, which the manifest does not ask for.
KINDS_THE_BOT_READS: dict[str, tuple[str, ...]] = {
    "conversations.history": ("channels", "im"),
    "conversations.replies": ("channels",),
    "conversations.info": ("channels",),
}


def conversation_kind(*, is_im: bool, is_mpim: bool, is_private: bool) -> str:
    return "im" if is_im else "mpim" if is_mpim else "groups" if is_private else "channels"
