"""`linkwatch notify test`: one message over one channel, now, to see that it arrives.

It goes straight to the channel, not through the outbox: it needs no database and leaves
no trace there.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

import aiohttp

from kernel.config import Config, WebhookChannel
from kernel.domain import Event, EventKind
from kernel.errors import LinkwatchError
from notify.channels import DeliveryError, send
from notify.messages import render


async def send_test_message(
    config: Config, channel_id: str, to: Sequence[str] | None = None
) -> str:
    """Send a test message; return where it went. Raises LinkwatchError saying why not."""
    channels = {c.id: c for c in config.notifications.channels}
    if channel_id not in channels:
        known = ", ".join(sorted(channels)) or "none: add notifications.channels to the config"
        raise LinkwatchError(f"no channel {channel_id!r}; defined channels: {known}")
    channel = channels[channel_id]
    if to and isinstance(channel, WebhookChannel):
        raise LinkwatchError(f"channel {channel_id!r} is a webhook; --to is for e-mail")
    now = datetime.now(UTC)
    event = Event(
        id=f"test:{channel_id}:{now.isoformat()}:{secrets.token_hex(4)}",
        kind=EventKind.TEST,
        occurred_at=now,
        customer_id=None,
        payload={"channel": channel_id},
    )
    try:
        async with aiohttp.ClientSession() as session:
            await send(channel, event, render(event, config), session=session, to=to)
    except DeliveryError as exc:
        raise LinkwatchError(f"channel {channel_id!r}: not delivered: {exc}") from None
    if isinstance(channel, WebhookChannel):
        return f"webhook {channel.url}"
    return f"e-mail to {', '.join(to or channel.to)} via {channel.smtp.host}:{channel.smtp.port}"
