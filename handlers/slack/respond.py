"""``respond()`` over the bot's pooled HTTP session instead of a new connection per answer.

Bolt's ``AsyncRespond`` builds an ``AsyncWebhookClient`` without a session, so every answer to a
response URL opens (and closes) its own aiohttp session and TCP connection. That work runs on the
event loop that also acks the next requests: measured with ``bench/ack_latency.py`` it was a third
of the loop's time under load and pushed the bot's p99 ack latency well past bare Bolt's. When the
Web API client has a shared session (the app's lifespan opens one), answers reuse its pooled,
kept-alive connections; without one, this is exactly Bolt's own ``respond()``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltRequest, AsyncRespond
from slack_bolt.context.respond.internals import _build_message
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.response import BoltResponse
from slack_sdk.webhook import WebhookResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient


class PooledRespond(AsyncRespond):
    """Bolt's ``respond()`` with the same arguments, sent over a shared aiohttp session."""

    def __init__(self, *, response_url: str | None, client: Any) -> None:
        super().__init__(response_url=response_url, proxy=client.proxy, ssl=client.ssl)
        self.client = client

    async def __call__(
        self,
        text: str | dict[str, Any] = "",
        blocks: Sequence[Any] | None = None,
        attachments: Sequence[Any] | None = None,
        response_type: str | None = None,
        replace_original: bool | None = None,
        delete_original: bool | None = None,
        unfurl_links: bool | None = None,
        unfurl_media: bool | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> WebhookResponse:
        session = getattr(self.client, "session", None)
        if self.response_url is None or session is None or session.closed:
            return await super().__call__(
                text,
                blocks=blocks,
                attachments=attachments,
                response_type=response_type,
                replace_original=replace_original,
                delete_original=delete_original,
                unfurl_links=unfurl_links,
                unfurl_media=unfurl_media,
                thread_ts=thread_ts,
                metadata=metadata,
            )
        webhook = AsyncWebhookClient(url=self.response_url, session=session, proxy=self.proxy, ssl=self.ssl)
        if isinstance(text, dict):
            return await webhook.send_dict(_build_message(**text))
        message = _build_message(
            text=text,
            blocks=blocks,
            attachments=attachments,
            response_type=response_type,
            replace_original=replace_original,
            delete_original=delete_original,
            unfurl_links=unfurl_links,
            unfurl_media=unfurl_media,
            thread_ts=thread_ts,
            metadata=metadata,
        )
        return await webhook.send_dict(message)


class UsePooledRespond(AsyncMiddleware):
    """Puts ``PooledRespond`` in the context of every request that has a response URL.

    A middleware class rather than a decorated function: Bolt builds every injectable argument
    for a function middleware on each request, a cost paid before any ``ack()``; here only an
    object is built (no I/O).
    """

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        context = req.context
        # Bolt may already have built its own respond() for the context; ours replaces it.
        if context.response_url is not None and not isinstance(context.get("respond"), PooledRespond):
            context["respond"] = PooledRespond(response_url=context.response_url, client=context.client)
        return await next()


def register(app: AsyncApp) -> None:
    app.use(UsePooledRespond())
