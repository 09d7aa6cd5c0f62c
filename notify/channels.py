"""Sending one message over one channel: a signed webhook POST or an SMTP e-mail.

`send` either returns (the receiver accepted it) or raises `DeliveryError`, saying whether
trying again can help. Nothing here retries, stores or decides what to send: that is the
dispatcher's. Secrets (webhook keys, SMTP passwords) never appear in an error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

import aiohttp
import aiosmtplib

from kernel import __version__
from kernel.config import AnyChannel, EmailChannel, WebhookChannel
from kernel.domain import Event
from notify.messages import Message

SIGNATURE_HEADER = "Linkwatch-Signature"
EVENT_ID_HEADER = "Linkwatch-Event-Id"
# Answers that mean "this request will never be taken": retrying cannot help.
_PERMANENT = {400, 401, 403, 404, 405, 410, 411, 413, 414, 415, 422}


class DeliveryError(Exception):
    """The receiver did not take the message; `permanent`: trying again cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value: ``t=<unix time>,v1=<hex HMAC-SHA256>`` over
    ``<unix time>.<body>``, so a receiver can refuse both forgeries and old replays."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, tolerance_s: int = 300) -> bool:
    """What a receiver does with the header (also used by the tests and `notify test`)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)


async def send(
    channel: AnyChannel,
    event: Event,
    message: Message,
    *,
    session: aiohttp.ClientSession,
    to: Sequence[str] | None = None,
) -> None:
    if isinstance(channel, WebhookChannel):
        await _post(channel, event, message, session)
    else:
        await _mail(channel, event, message, to or channel.to)


async def _post(
    channel: WebhookChannel, event: Event, message: Message, session: aiohttp.ClientSession
) -> None:
    body = json.dumps(message.webhook_body(event), sort_keys=True).encode()
    headers = {
        **channel.headers,
        "Content-Type": "application/json",
        "User-Agent": f"Linkwatch/{__version__}",
        EVENT_ID_HEADER: event.id,
        SIGNATURE_HEADER: signature(channel.secret, int(time.time()), body),
    }
    timeout = aiohttp.ClientTimeout(total=channel.timeout.total_seconds())
    try:
        async with session.post(
            channel.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        ) as response:
            if 200 <= response.status < 300:
                return
            reason = (await response.text(errors="replace"))[:200].strip()
            raise DeliveryError(
                f"HTTP {response.status}{': ' + reason if reason else ''}",
                permanent=response.status in _PERMANENT,
            )
    except TimeoutError:
        raise DeliveryError(f"no answer within {channel.timeout.total_seconds():g} s") from None
    except aiohttp.ClientError as exc:
        raise DeliveryError(_client_error(exc)) from None


def _client_error(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect: {exc.os_error.strerror or exc.os_error}"
    return str(exc) or type(exc).__name__


def email_message(
    channel: EmailChannel, event: Event, message: Message, to: Sequence[str]
) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = channel.sender
    mail["To"] = ", ".join(to)
    mail["Date"] = format_datetime(datetime.now(UTC))
    # The same event always has the same Message-ID: mail systems and people can see a
    # message sent twice (after a lost acknowledgement) as one.
    digest = hashlib.sha256(event.id.encode()).hexdigest()[:32]
    mail["Message-ID"] = f"<{digest}@linkwatch.{channel.sender.rsplit('@', 1)[1]}>"
    mail["X-Linkwatch-Event-Id"] = event.id
    mail.set_content(message.text)
    mail.add_alternative(message.html, subtype="html")
    if message.calendar is not None:
        # Mail clients and providers' maintenance parsers read the attached event.
        window = str(event.payload.get("maintenance_id", "maintenance"))
        mail.add_attachment(
            message.calendar,
            subtype="calendar",
            filename=f"{window}.ics",
            params={"method": "PUBLISH"},
        )
    return mail


async def _mail(channel: EmailChannel, event: Event, message: Message, to: Sequence[str]) -> None:
    smtp = channel.smtp
    context = None
    if smtp.security != "none":
        try:
            context = ssl.create_default_context(cafile=smtp.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise DeliveryError(f"cannot read smtp.ca_file {smtp.ca_file}: {exc}") from None
    try:
        await aiosmtplib.send(
            email_message(channel, event, message, to),
            sender=channel.sender,
            recipients=list(to),
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username,
            password=smtp.password,
            use_tls=smtp.security == "tls",
            start_tls=smtp.security == "starttls",
            tls_context=context,
            timeout=smtp.timeout.total_seconds(),
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refused = ", ".join(r.recipient for r in exc.recipients)
        raise DeliveryError(f"the mail server refused {refused}", permanent=True) from None
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"SMTP login refused: {exc.code} {exc.message}") from None
    except aiosmtplib.SMTPResponseException as exc:
        raise DeliveryError(
            f"SMTP {exc.code} {exc.message}", permanent=500 <= exc.code < 600
        ) from None
    except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP to {smtp.host}:{smtp.port}: {exc}") from None
