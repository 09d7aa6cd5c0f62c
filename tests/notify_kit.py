"""Local receivers for notification tests: an aiohttp webhook receiver and an aiosmtpd
SMTP server, both on 127.0.0.1 and a free port, and a config to point Linkwatch at them."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller

from notify.channels import EVENT_ID_HEADER, SIGNATURE_HEADER, verify
from tests.helpers import free_port

SECRET = "a-webhook-secret-of-some-length"


@dataclass
class Delivery:
    path: str
    event_id: str
    body: dict[str, Any]
    signed: bool  # the signature verifies with SECRET


@dataclass
class WebhookReceiver:
    """Records every request; answers `fail_status` to the first `fail_next` of them, and
    holds the next `hang_next` requests unanswered (as a receiver that died would)."""

    url: str = ""
    accepted: list[Delivery] = field(default_factory=list)  # answered 2xx
    refused: int = 0
    fail_next: int = 0
    fail_status: int = 503
    hang_next: int = 0
    hung: int = 0

    def ids(self, path: str | None = None) -> list[str]:
        return [d.event_id for d in self.accepted if path is None or d.path == path]

    def unique(self, path: str | None = None) -> set[str]:
        """What a receiver that de-duplicates by event id keeps."""
        return set(self.ids(path))

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if self.hang_next > 0:
            self.hang_next -= 1
            self.hung += 1
            await asyncio.sleep(3600)
        if self.fail_next > 0:
            self.fail_next -= 1
            self.refused += 1
            return web.Response(status=self.fail_status, text="receiver unavailable")
        self.accepted.append(
            Delivery(
                path=request.path,
                event_id=request.headers[EVENT_ID_HEADER],
                body=json.loads(raw),
                signed=verify(SECRET, request.headers.get(SIGNATURE_HEADER, ""), raw),
            )
        )
        return web.Response(status=204)


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    app = web.Application()
    app.router.add_post("/{name}", receiver._handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.url = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        await runner.cleanup()


class _Collect:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self._sink.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


@dataclass
class SmtpSink:
    port: int = 0
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)


@asynccontextmanager
async def smtp_server(**controller: Any) -> AsyncIterator[SmtpSink]:
    """An SMTP server on a free port; `controller` passes TLS and auth options on."""
    sink = SmtpSink(port=free_port())
    server = Controller(_Collect(sink), hostname="127.0.0.1", port=sink.port, **controller)
    await asyncio.to_thread(server.start)
    try:
        yield sink
    finally:
        await asyncio.to_thread(server.stop)


def notifications_yaml(receiver_url: str, *, smtp_port: int | None = None, extra: str = "") -> str:
    """A notifications section: ops, acme and zeta each with a webhook route of their own."""
    mail = ""
    if smtp_port is not None:
        mail = f"""
    - id: noc-mail
      kind: email
      sender: linkwatch@isp.example
      to: [noc@isp.example]
      smtp: {{host: 127.0.0.1, port: {smtp_port}, security: none}}"""
    routes = "\n    - {id: noc-mail, channel: noc-mail}" if smtp_port is not None else ""
    return f"""
notifications:
  hold_down: 0s
  retry_backoff: 100ms
  channels:
    - {{id: ops, kind: webhook, url: "{receiver_url}/ops", secret: {SECRET}, timeout: 2s}}
    - {{id: acme, kind: webhook, url: "{receiver_url}/acme", secret: {SECRET}, timeout: 2s}}
    - {{id: zeta, kind: webhook, url: "{receiver_url}/zeta", secret: {SECRET}, timeout: 2s}}{mail}
  routes:
    - {{id: ops, channel: ops}}
    - {{id: acme, channel: acme, customer: acme}}
    - {{id: zeta, channel: zeta, customer: zeta}}{routes}
{extra}"""
