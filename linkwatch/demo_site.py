"""What `linkwatch demo` sets up around the daemon so that its first page view shows
every feature: a webhook receiver on loopback for the demo's notification routes, planned
work two days ahead, and the running outage acknowledged and told as an incident, as
staff would have done by the time someone looks. Talks only to 127.0.0.1 and the demo's
own database.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlsplit

from aiohttp import web

from collector import Database
from collector.acknowledgements import AcknowledgementError, acknowledge
from collector.incident_reports import OutageRef, incident_reports, open_incident, post_update
from collector.state_reads import incidents
from kernel.config import Config
from kernel.domain import MaintenanceWindow

log = logging.getLogger(__name__)

# What every demo run shows from its first page view, whatever the random history: a link
# down now (its live probe, to a loopback port nothing listens on, keeps it down), a
# contract breached last week (a credit owed), and upcoming maintenance.
DOWN_NOW = ("globex-backup",)
BREACHED = ("acme-hq",)
STAFF = "noc"
# The ledger rows computed before the portal opens, so that credits and compliance are
# there at once; the background backfill adds the older windows.
LEDGER_AT_ONCE = timedelta(days=21)


async def start_receiver() -> tuple[web.AppRunner, int]:
    """A webhook receiver on a free loopback port, standing in for the NOC's and the
    customers' systems: it takes every message and logs one line for each."""

    async def receive(request: web.Request) -> web.Response:
        body = await request.json()
        log.info(
            "demo receiver got a message channel=%s event=%s",
            request.match_info["name"],
            body.get("kind") if isinstance(body, dict) else "?",
        )
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{name}", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    log.info("demo webhook receiver listening address=127.0.0.1:%d", port)
    return runner, int(port)


def channels_at(config: Config, port: int) -> Config:
    """The demo config's webhook channels to 127.0.0.1 without a port, pointed at the
    receiver's."""
    channels = []
    for channel in config.notifications.channels:
        url = urlsplit(channel.url) if channel.kind == "webhook" else None
        if url is not None and url.hostname == "127.0.0.1" and url.port is None:
            channel = channel.model_copy(update={"url": f"http://127.0.0.1:{port}{url.path}"})
        channels.append(channel)
    notifications = config.notifications.model_copy(update={"channels": channels})
    return config.model_copy(update={"notifications": notifications})


def upcoming_window(config: Config, now: datetime) -> MaintenanceWindow:
    """A window two days ahead, announced five days before it: excluded for every
    contract, on every customer's home page."""
    link = config.links[0]
    tz = config.customer(link.customer).tz
    day = (now.astimezone(tz) + timedelta(days=2)).date()
    starts = datetime.combine(day, time(1, 0), tzinfo=tz)
    return MaintenanceWindow(
        id=f"demo-upcoming-{link.id}-{day.isoformat()}",
        starts_at=starts.astimezone(UTC),
        ends_at=starts.astimezone(UTC) + timedelta(hours=2),
        announced_at=starts.astimezone(UTC) - timedelta(days=5),
        description="Core router software upgrade [CHG-4711]",
        link_ids=(link.id,),
    )


async def tell_the_story(db: Database, config: Config, now: datetime) -> None:
    """The running outage acknowledged by operations and told as an incident, as staff
    would have done by the time someone looks."""
    customers = {link.id: link.customer for link in config.links}
    running = [i for i in await incidents(db, DOWN_NOW, now - timedelta(hours=1), now) if i.running]
    told = await incident_reports(db, since=now - timedelta(days=1), link_ids=DOWN_NOW)
    in_incident = {(o.link_id, o.outage_start) for r in told for o in r.outages}
    for outage in running:
        with contextlib.suppress(AcknowledgementError):  # a rerun's: acknowledged already
            await acknowledge(
                db, outage.link_id, outage.starts_at, by=STAFF, at=now,
                note="Edge router port down; field engineer on the way",
                customer_id=customers[outage.link_id],
            )  # fmt: skip
        if (outage.link_id, outage.starts_at) in in_incident:
            continue
        report = await open_incident(
            db, [OutageRef(outage.link_id, outage.starts_at)], by=STAFF, at=now,
            title="Backup line down at the edge router", customers=customers,
        )  # fmt: skip
        await post_update(
            db, report.id, "The edge router's service port stopped answering. A field "
            "engineer is on the way; next update within the hour.",
            by=STAFF, at=now, customers=customers,
        )  # fmt: skip
