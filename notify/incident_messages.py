"""What an incident update and a grouped outage say to a person.

Pure functions of the event and the config, in the shape `notify.messages` describes
every event with: a subject, a summary, facts and the portal page to look at. An update
names only the links its event carries (a customer's own, or every link for
operations); the text is staff's, shown as written.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from kernel.config import Config, Customer, Link
from kernel.domain import Event
from kernel.formatting import local_time

Described = tuple[str, str, list[tuple[str, str]], str | None]
LINKS_LISTED = 30  # in a grouped message; beyond this, a count


def _name(config: Config, link_id: str) -> str:
    link = next((li for li in config.links if li.id == link_id), None)
    if link is None or not link.description:
        return link_id
    return f"{link.description} ({link_id})"


def _listed(names: list[str]) -> str:
    shown = names[:LINKS_LISTED]
    more = len(names) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def _ids(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def incident_update(
    event: Event, config: Config, customer: Customer | None, link: Link | None, tz: tzinfo
) -> Described:
    data = event.payload
    number = f"#{data['incident_id']}"
    title = str(data["title"])
    body = str(data["body"])
    links = _ids(data.get("link_ids"))
    names = [_name(config, i) for i in links]
    posted = local_time(datetime.fromisoformat(str(data["posted_at"])), tz)
    facts = [] if customer is None else [("Customer", customer.name)]
    facts += [("Incident", f"{number}: {title}"), ("Posted", posted)]
    if names:
        facts.append(("Links" if len(names) > 1 else "Link", _listed(names)))
    if data.get("closes"):
        facts.append(("Cause", f"{data['cause_label']}: {data['cause']}"))
        subject = f"Resolved: {title} (incident {number})"
        summary = f"Incident {number} is resolved. {body}"
    else:
        subject = f"Update: {title} (incident {number})"
        summary = body
    path = f"/links/{links[0]}" if len(links) == 1 else "/links"
    return subject, summary, facts, path


def links_down(
    event: Event, config: Config, customer: Customer | None, link: Link | None, tz: tzinfo
) -> Described:
    data = event.payload
    upstream = str(data["upstream"])
    entries = data.get("links")
    items = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    first = local_time(datetime.fromisoformat(str(data["first_down"])), tz)
    last = local_time(datetime.fromisoformat(str(data["last_down"])), tz)
    count = len(items)
    names = [
        f"{_name(config, str(e['link_id']))} since "
        f"{local_time(datetime.fromisoformat(str(e['down_since'])), tz)}"
        for e in items
    ]
    customers = sorted({str(e["customer_id"]) for e in items if e.get("customer_id")})
    facts = [
        ("Upstream", upstream),
        ("Links down", str(count)),
        ("First down", first),
        ("Last down", last),
        ("Customers", ", ".join(customers) or "none configured"),
        ("Links", _listed(names)),
    ]
    return (
        f"DOWN: {count} links behind {upstream}",
        f"{count} links behind {upstream} went down within a minute of each other, the "
        f"first at {first}: one shared failure is likely. Each customer is told of their "
        "own links.",
        facts,
        "/noc",
    )
