"""The link page, reports, credits and maintenance pages, over real HTTP on loopback, on
the embedded PostgreSQL, with samples stored through the collector and a fake clock.

Each test asserts what a person looking at the page would notice: the colour and figures
of a day, the availability and budget the SLA engine computes, the running outage and
its countdown, the lists, the charts' lines and gaps, and that a customer never sees
anything of another customer.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape

import pytest

from collector import Database, upsert_maintenance
from kernel.domain import MaintenanceWindow, Outcome, Sample
from notify.evaluator import _breach_event
from notify.messages import render
from portal import reload_config
from portal.formatting import duration_text, ratio_availability_text
from sla.ledger import apply, approve, list_rows, refresh_ledger
from sla.monthly import monthly_report
from sla.report import contract_windows
from tests.helpers import cell, element, element_by_id, elements, section, table_row, words
from tests.portal_kit import (
    CONFIG_TEXT,
    NOW,
    PortalKit,
    minutes,
    portal_config,
    running_portal,
    samples,
)

NBSP = "\u00a0"


@pytest.fixture
async def kit(database: Database) -> AsyncIterator[PortalKit]:
    async with running_portal(database) as portal:
        yield portal


@pytest.fixture
async def empty(database: Database) -> AsyncIterator[PortalKit]:
    async with running_portal(database, history=None) as portal:
        yield portal


def day(html: str, label: str) -> tuple[str, str]:
    """(tone, figures) of the wide bar's cell whose title starts with `label`."""
    wide = html.split('id="days-wide"')[1].split("</svg>")[0]
    found = re.search(
        r'<g class="day day-(\w+)" tabindex="0"><title>(' + re.escape(label) + r"[^<]*)</title>",
        wide,
    )
    assert found, f"no day {label!r} in the bar"
    return found.group(1), unescape(found.group(2))


def sla_card(html: str, contract_id: str, window: str) -> str:
    """The card of `window` (its label, such as 2026-W47) in the contract's section."""
    cards = elements(section(html, f"Contract {contract_id}"), "article", "sla-card")
    (card,) = [c for c in cards if f'<span class="muted">{window}</span>' in c]
    return card


def shown(html: str, tag: str, css_class: str) -> str:
    """What a reader sees of the first `tag` element carrying `css_class` in `html`."""
    return words(element(html, tag, css_class)).strip()


def up_samples(link_id: str, start: datetime, end: datetime, **fields: object) -> list[Sample]:
    return samples(link_id, minutes(start, end), rtt_ms=10.0, loss_pct=0.0, **fields)


def down_samples(link_id: str, start: datetime, end: datetime) -> list[Sample]:
    return samples(link_id, minutes(start, end), Outcome.DOWN, loss_pct=100.0, error="no reply")


def history(
    link_id: str, start: datetime, end: datetime, *outages: tuple[datetime, timedelta]
) -> list[Sample]:
    """A sample a minute over [start, end): up, but down during each (start, length)."""
    out = []
    for sample in up_samples(link_id, start, end):
        if any(at <= sample.observed_at < at + length for at, length in outages):
            sample = Sample(link_id, "icmp", sample.observed_at, Outcome.DOWN, loss_pct=100.0,
                            error="no reply")  # fmt: skip
        out.append(sample)
    return out


# --- the 90-day bar -------------------------------------------------------------------------


async def test_a_dst_day_with_an_hour_down_is_red_with_its_exact_figures(
    empty: PortalKit,
) -> None:
    # Berlin leaves summer time on Sunday 25 October 2026: that local day is 25 hours,
    # 2026-10-24 22:00 UTC to 2026-10-25 23:00 UTC.
    start, end = datetime(2026, 10, 24, 22, tzinfo=UTC), datetime(2026, 10, 25, 23, tzinfo=UTC)
    outage = datetime(2026, 10, 25, 10, tzinfo=UTC)
    await empty.store(
        up_samples("acme-fra-1", start, outage)
        + down_samples("acme-fra-1", outage, outage + timedelta(hours=1))
        + up_samples("acme-fra-1", outage + timedelta(hours=1), end)
    )
    await empty.sign_in("alice")
    html = await empty.page("/links/acme-fra-1")

    tone, figures = day(html, "Sun 25 Oct 2026")
    assert tone == "major"  # over 30 minutes down: red
    # 24 of 25 hours available: 96 %, not the 95.83 % a 24-hour day would give.
    assert f"96.000{NBSP}% available" in figures
    assert f"down 1{NBSP}h · unknown none · maintenance none" in figures
    assert day(html, "Sat 24 Oct 2026") == (
        "none",
        "Sat 24 Oct 2026; no data: monitoring had not begun",
    )
    # After the samples stop, the days are known to be unmeasured: grey, not "no data".
    tone, figures = day(html, "Sun 01 Nov 2026")
    assert tone == "unknown"
    assert "nothing measured" in figures
    assert f"unknown 1{NBSP}d" in figures
    # Every cell can be reached from the keyboard and shows its figures when it is.
    narrow = html.split('id="days-narrow"')[1].split("</svg>")[0]
    assert narrow.count('tabindex="0"') == 90
    assert f"down 1{NBSP}h · unknown none" in unescape(narrow)


async def test_a_short_outage_is_amber_and_announced_maintenance_blue(empty: PortalKit) -> None:
    day1 = datetime(2026, 11, 10, 0, tzinfo=UTC)  # 01:00 CET: inside 10 November in Berlin
    outage = (day1 + timedelta(hours=8), timedelta(minutes=10))
    await empty.store(history("acme-fra-1", day1 - timedelta(hours=1), NOW, outage))
    work = datetime(2026, 11, 12, 2, tzinfo=UTC)
    await upsert_maintenance(
        empty.db,
        [
            MaintenanceWindow(
                "mw-early",
                work,
                work + timedelta(hours=2),
                work - timedelta(days=5),
                "Fibre splice",
                link_ids=("acme-fra-1",),
            ),
            MaintenanceWindow(
                "mw-late",
                work + timedelta(days=1),
                work + timedelta(days=1, hours=2),
                work + timedelta(hours=20),
                "Late notice",
                customer_ids=("acme",),
            ),
        ],
        source="config",
    )
    await empty.sign_in("alice")
    html = await empty.page("/links/acme-fra-1")
    tone, figures = day(html, "Tue 10 Nov 2026")
    assert tone == "minor"
    assert f"down 10{NBSP}min" in figures
    assert f"99.305{NBSP}% available" in figures  # 1430 of 1440 min, 3 decimals, truncated
    tone, figures = day(html, "Thu 12 Nov 2026")
    assert tone == "maintenance"
    assert f"maintenance 2{NBSP}h" in figures
    # Announced only 6 hours ahead: not excluded, so the day is simply green.
    assert day(html, "Fri 13 Nov 2026")[0] == "up"
    assert day(html, "Wed 18 Nov 2026 (today so far)")[0] == "up"


# --- contract windows and budgets ---------------------------------------------------------------


async def test_this_weeks_availability_and_budget_are_the_sla_engines(kit: PortalKit) -> None:
    outage = (NOW - timedelta(hours=5), timedelta(minutes=20))
    await kit.store(
        history("acme-fra-1", NOW - timedelta(hours=6), NOW - timedelta(hours=3), outage)
    )
    engine = await contract_windows(
        kit.db, kit.config, "2026-W47", NOW, contract_ids=["acme-fra-gold"]
    )
    (item,) = engine
    await kit.sign_in("alice")
    html = await kit.page("/links/acme-fra-1")
    week = sla_card(html, "acme-fra-gold", "2026-W47")
    assert shown(week, "span", "tag") == "Contractual"
    assert shown(week, "span", "sla-availability") == ratio_availability_text(
        item.result.availability, item.terms.availability_decimals
    )
    assert shown(week, "span", "sla-target") == f"target 99.5{NBSP}%"
    left, budget = item.result.budget_remaining_us, item.result.budget_us
    assert f"{duration_text(left)} left of {duration_text(budget)}" in shown(
        week, "div", "budget-line"
    )
    assert f"Downtime so far 20{NBSP}min" in shown(week, "dl", "sla-facts")
    month = sla_card(html, "acme-fra-gold", "2026-11")
    assert shown(month, "span", "tag") == "For information"
    assert "measured per week" in shown(month, "p", "sla-note")
    assert "budget runs out" not in words(html)  # a countdown is for staff


async def test_staff_see_a_running_outage_with_its_budget_countdown(kit: PortalKit) -> None:
    engine = await contract_windows(
        kit.db, kit.config, "2026-11", NOW, contract_ids=["acme-ber-silver"]
    )
    remaining = engine[0].result.budget_remaining_us
    await kit.sign_in("olga")
    html = await kit.page("/links/acme-ber-2")
    assert shown(html, "div", "outage") == f"Down for 25{NBSP}min since 2026-11-18 11:35 UTC"
    runs_out = NOW + timedelta(microseconds=int(remaining))
    assert (
        f"budget runs out in 2{NBSP}h 36{NBSP}min at this rate ({runs_out:%Y-%m-%d %H:%M} UTC)"
        in shown(sla_card(html, "acme-ber-silver", "2026-11"), "p", "countdown")
    )
    fragment = await kit.page("/partial/links/acme-ber-2")
    assert "budget runs out in" in shown(
        sla_card(fragment, "acme-ber-silver", "2026-11"), "p", "countdown"
    )
    await kit.sign_out()
    await kit.sign_in("alice")
    customer = await kit.page("/links/acme-ber-2")
    assert shown(customer, "div", "outage") == f"Down for 25{NBSP}min since 2026-11-18 12:35 CET"
    assert "budget runs out" not in words(customer)


async def test_an_exhausted_budget_says_since_when(kit: PortalKit) -> None:
    # Target 99.5 % of a week: about 50 minutes allowed. Two hours down this Monday.
    monday = datetime(2026, 11, 16, 6, tzinfo=UTC)
    await kit.store(up_samples("acme-fra-1", monday - timedelta(minutes=5), monday))
    await kit.store(down_samples("acme-fra-1", monday, monday + timedelta(hours=2)))
    await kit.store(up_samples("acme-fra-1", monday + timedelta(hours=2), NOW))
    await kit.sign_in("olga")
    week = sla_card(await kit.page("/links/acme-fra-1"), "acme-fra-gold", "2026-W47")
    assert shown(week, "p", "sla-verdict") == "Below the target so far"
    assert "exceeded by" in shown(week, "div", "budget-line")
    countdown = shown(week, "p", "countdown")
    assert re.fullmatch(
        r"Budget exhausted 2\xa0d \d+\xa0h ago \(2026-11-16 06:\d\d UTC\)", countdown
    ), countdown


# --- incidents and maintenance ------------------------------------------------------------------


def incidents_table(html: str) -> str:
    return element(section(html, "incidents-heading"), "table", "incidents")


async def test_incidents_list_start_end_and_duration_in_the_viewers_zone(kit: PortalKit) -> None:
    start = datetime(2026, 11, 2, 9, 15, tzinfo=UTC)
    await kit.store(up_samples("acme-ber-2", start - timedelta(minutes=5), start))
    await kit.store(down_samples("acme-ber-2", start, start + timedelta(minutes=42)))
    await kit.store(
        up_samples("acme-ber-2", start + timedelta(minutes=42), start + timedelta(hours=1))
    )
    await kit.sign_in("alice")
    incidents = incidents_table(await kit.page("/links/acme-ber-2"))
    ongoing = words(table_row(incidents, 'datetime="2026-11-18T11:35:00+00:00"')).strip()
    assert ongoing == f"2026-11-18 12:35 CET Ongoing 25{NBSP}min so far icmp: no reply (5/5 lost)"
    ended = words(table_row(incidents, 'datetime="2026-11-02T09:15:00+00:00"')).strip()
    assert ended == f"2026-11-02 10:15 CET 2026-11-02 10:57 CET 42{NBSP}min icmp: no reply"
    started = re.findall(r'<td data-label="Started"><time datetime="([^"]+)"', incidents)
    assert started == ["2026-11-18T11:35:00+00:00", "2026-11-02T09:15:00+00:00"]  # newest first
    await kit.sign_out()
    await kit.sign_in("olga")
    incidents = incidents_table(await kit.page("/links/acme-ber-2"))
    ended = words(table_row(incidents, 'datetime="2026-11-02T09:15:00+00:00"'))
    assert "2026-11-02 09:15 UTC 2026-11-02 09:57 UTC" in ended


# acme-ber-2 under a second contract that takes maintenance announced an hour ahead
TWO_CONTRACTS = CONFIG_TEXT.replace(
    "  - {id: globex-nyc-platinum",
    "  - {id: acme-ber-express, customer: acme, links: [acme-ber-2], target: 99.9, "
    "window: month, maintenance_notice: 1h}\n  - {id: globex-nyc-platinum",
)


def excluded_note(incidents: str, start: str) -> str | None:
    """The exclusion note of the outage row starting at `start` (UTC ISO), if any."""
    notes = elements(table_row(incidents, f'datetime="{start}"'), "p", "excluded-note")
    return words(notes[0]).strip() if notes else None


async def test_outages_in_excluded_maintenance_are_tagged_with_how_much_and_under_what(
    database: Database,
) -> None:
    hour = timedelta(hours=1)
    days = [datetime(2026, 11, d, 9, tzinfo=UTC) for d in (2, 5, 9, 12)]
    outages = [
        (days[0] + timedelta(minutes=15), timedelta(minutes=42)),  # inside the window
        (days[1] + timedelta(minutes=25), timedelta(minutes=70)),  # 35 min of it inside
        (days[2] + timedelta(minutes=15), timedelta(minutes=30)),  # 4 h notice: one contract
        (days[3] + timedelta(minutes=15), timedelta(minutes=30)),  # announced after it began
    ]
    windows = [
        MaintenanceWindow("mw-splice", days[0], days[0] + hour, days[0] - timedelta(days=13),
                          "Fibre splice", link_ids=("acme-ber-2",)),
        MaintenanceWindow("mw-core", days[1] + hour, days[1] + 2 * hour,
                          days[1] - timedelta(days=11), "Core upgrade", customer_ids=("acme",)),
        MaintenanceWindow("mw-patch", days[2], days[2] + hour, days[2] - 4 * hour,
                          "Emergency patch", link_ids=("acme-ber-2",)),
        MaintenanceWindow("mw-fix", days[3], days[3] + hour, days[3] + timedelta(minutes=30),
                          "Unplanned fix"),
    ]  # fmt: skip
    config = portal_config(TWO_CONTRACTS)
    async with running_portal(database, config, history=None) as kit:
        await kit.store(history("acme-ber-2", days[0] - hour, days[3] + 2 * hour, *outages))
        await upsert_maintenance(kit.db, windows, source="config")
        await kit.sign_in("alice")
        incidents = incidents_table(await kit.page("/links/acme-ber-2"))
        assert excluded_note(incidents, "2026-11-02T09:15:00+00:00") == (
            "Excluded: planned maintenance “Fibre splice”, "
            "2026-11-02 10:00 CET to 2026-11-02 11:00 CET"
        )
        assert excluded_note(incidents, "2026-11-05T09:25:00+00:00") == (
            f"35{NBSP}min of 1{NBSP}h 10{NBSP}min excluded: planned maintenance "
            "“Core upgrade”, 2026-11-05 11:00 CET to 2026-11-05 12:00 CET"
        )
        assert excluded_note(incidents, "2026-11-09T09:15:00+00:00") == (
            "Counts in full under contract acme-ber-silver; excluded under contract "
            "acme-ber-express: planned maintenance “Emergency patch”, "
            "2026-11-09 10:00 CET to 2026-11-09 11:00 CET"
        )
        assert excluded_note(incidents, "2026-11-12T09:15:00+00:00") is None
        await kit.sign_out()
        await kit.sign_in("olga")  # staff read it in their own zone
        incidents = incidents_table(await kit.page("/links/acme-ber-2"))
        assert excluded_note(incidents, "2026-11-02T09:15:00+00:00") == (
            "Excluded: planned maintenance “Fibre splice”, "
            "2026-11-02 09:00 UTC to 2026-11-02 10:00 UTC"
        )
        # The monthly report lists the part that counts, and says what was excluded.
        report = words(await monthly_report(kit.db, config, "acme", "2026-11", NOW))
        assert f"35{NBSP}min of it was excluded: planned maintenance “Core upgrade”" in report
        assert "of it was excluded: planned maintenance “Emergency patch”" not in report


async def test_a_redundant_pair_excludes_only_work_on_both_of_its_links(
    database: Database,
) -> None:
    """Work on one link of a pair excludes nothing for the pair (the other link could
    carry the service): its monthly report must not say that any of the outage was."""
    start = datetime(2026, 11, 5, 9, 25, tzinfo=UTC)
    work = MaintenanceWindow("mw-ber", datetime(2026, 11, 5, 10, tzinfo=UTC),
                             datetime(2026, 11, 5, 11, tzinfo=UTC),
                             datetime(2026, 10, 25, tzinfo=UTC), "Berlin line card",
                             link_ids=("acme-ber-2",))  # fmt: skip
    config = portal_config(
        CONFIG_TEXT.replace(
            "  - {id: globex-nyc-platinum",
            "  - {id: acme-pair, customer: acme, links: [acme-fra-1, acme-ber-2], "
            "group: redundant, target: 99.9, window: month}\n  - {id: globex-nyc-platinum",
        )
    )
    async with running_portal(database, config, history=None) as kit:
        hour = timedelta(hours=1)
        await kit.store(history("acme-ber-2", start - hour, start + 3 * hour,
                                (start, timedelta(minutes=70))))  # fmt: skip
        await kit.store(history("acme-fra-1", start - hour, start + 3 * hour,
                                (start, timedelta(minutes=40))))  # fmt: skip
        await upsert_maintenance(kit.db, [work], source="config")
        report = await monthly_report(kit.db, config, "acme", "2026-11", NOW)
    alone = words(element_by_id(report, "section", "contract-acme-ber-silver"))
    assert f"35{NBSP}min of it was excluded: planned maintenance “Berlin line card”" in alone
    pair = words(element_by_id(report, "section", "contract-acme-pair"))
    assert "the outage ran from" in pair  # Berlin's outage outlasted the pair's
    assert "of it was excluded" not in pair


def mw_titles(html: str) -> list[str]:
    """The titles of the maintenance windows listed in `html`, in the order shown."""
    return re.findall(r'<strong class="mw-title">([^<]*)</strong>', html)


def mw_item(html: str, title: str) -> str:
    """The one maintenance list item of `html` titled `title`."""
    (item,) = [i for i in elements(html, "li", "mw") if f'class="mw-title">{title}<' in i]
    return item


async def test_maintenance_upcoming_and_past_with_whether_it_is_excluded(kit: PortalKit) -> None:
    hour = timedelta(hours=1)
    windows = [
        MaintenanceWindow("mw-done", NOW - timedelta(days=3), NOW - timedelta(days=3) + 2 * hour,
                          NOW - timedelta(days=10), "Router swap", link_ids=("acme-fra-1",)),
        MaintenanceWindow("mw-soon", NOW + timedelta(days=2), NOW + timedelta(days=2) + 3 * hour,
                          NOW + timedelta(days=2) - 4 * hour, "Core upgrade",
                          customer_ids=("acme",)),
        MaintenanceWindow("mw-all", NOW + timedelta(days=9), NOW + timedelta(days=9) + hour,
                          NOW - timedelta(days=1), "Network-wide change"),
        MaintenanceWindow("mw-rewire", NOW + timedelta(days=1), NOW + timedelta(days=1) + hour,
                          NOW - timedelta(days=9), "Boston rewiring",
                          link_ids=("globex-bos-2", "acme-ber-2")),
    ]  # fmt: skip
    await upsert_maintenance(kit.db, windows, source="config")
    await kit.sign_in("alice")
    html = await kit.page("/links/acme-fra-1")
    upcoming, past = section(html, "maintenance-heading").split(">Past 90 days</h3>")
    assert ">Upcoming</h3>" in upcoming
    assert mw_titles(upcoming) == ["Core upgrade", "Network-wide change"]  # soonest first
    assert shown(mw_item(upcoming, "Core upgrade"), "p", "mw-verdict").startswith(
        "Counts as normal time: announced only 4 h ahead; the contract requires 3 d"
    )
    assert shown(mw_item(upcoming, "Network-wide change"), "p", "mw-verdict").startswith(
        "Excluded from availability: announced 10 d ahead"
    )
    assert mw_titles(past) == ["Router swap"]
    assert shown(mw_item(past, "Router swap"), "p", "mw-verdict").startswith(
        "Excluded from availability: announced 7 d ahead (notice required: 3 d)"
    )
    assert "Boston" not in html  # it does not concern acme-fra-1

    listing = await kit.page("/maintenance")
    assert "globex" not in listing.lower()
    rewiring = mw_item(listing, "Boston rewiring")  # it does concern acme-ber-2 ...
    assert shown(rewiring, "p", "mw-links") == "Covers: acme-ber-2"  # ... and only that link
    assert shown(mw_item(listing, "Core upgrade"), "p", "mw-links") == "Covers: all your links"
    await kit.sign_out()
    await kit.sign_in("gus")
    assert "Router swap" not in await kit.page("/maintenance")


# --- charts ----------------------------------------------------------------------------------


def chart(html: str, chart_id: str) -> str:
    return element_by_id(html, "figure", f"chart-{chart_id}")


def legend(figure: str) -> dict[str, str]:
    """Each line's label in a chart's legend, with the summary shown after it."""
    return {
        words(item.split('<span class="muted">')[0]).strip(): shown(item, "span", "muted")
        for item in elements(figure, "span", "legend-item")
    }


async def test_charts_draw_stored_samples_with_a_gap_where_there_are_none(
    empty: PortalKit,
) -> None:
    await empty.store(up_samples("acme-fra-1", NOW - timedelta(hours=4), NOW - timedelta(hours=3)))
    await empty.store(up_samples("acme-fra-1", NOW - timedelta(hours=2), NOW))
    await empty.sign_in("alice")
    html = await empty.page("/links/acme-fra-1?range=24h")
    rtt = chart(html, "rtt-icmp")
    assert element(rtt, "g", "series-a").count("<polyline") == 2  # one before the gap, one after
    assert shown(rtt, "span", "chart-title") == "Round-trip time · icmp (icmp), last 24 hours"
    assert legend(rtt)["mean"].startswith(f"average 10{NBSP}ms")
    assert shown(chart(html, "loss-icmp"), "span", "chart-title").startswith("Packet loss")
    assert 'aria-current="page">24h<' in element(html, "nav", "ranges")
    week = await empty.page("/links/acme-fra-1")  # 7 days of hourly rollups by default
    assert chart(week, "rtt-icmp").count("<polyline") >= 2
    assert "jitter" not in week.lower()  # jitter and traffic are for staff


async def test_staff_see_jitter_and_interface_traffic(database: Database) -> None:
    from tests.portal_kit import CONFIG_TEXT, portal_config

    text = CONFIG_TEXT.replace(
        "      - {id: icmp, kind: icmp, host: 127.0.0.1, interval: 60s}",
        "      - {id: icmp, kind: icmp, host: 127.0.0.1, interval: 60s}\n"
        "      - {id: port, kind: snmp, host: '127.0.0.1:16100', community: public,"
        " interval: 60s, availability: false, interface: {index: 2}}",
    )
    async with running_portal(database, portal_config(text), history=None) as kit:
        times = minutes(NOW - timedelta(hours=2), NOW)
        await kit.store(samples("acme-fra-1", times, rtt_ms=10.0, loss_pct=0.0, jitter_ms=1.5))
        await kit.store(samples("acme-fra-1", times, probe_id="port",
                                metrics={"in_bps": 2.5e6, "out_bps": 1.0e6}))  # fmt: skip
        await kit.sign_in("olga")
        html = await kit.page("/links/acme-fra-1?range=24h")
        assert legend(chart(html, "jitter-icmp"))["jitter"].startswith(f"average 1.5{NBSP}ms")
        traffic = legend(chart(html, "traffic-port"))
        assert traffic["in"].startswith(f"average 2.5{NBSP}Mbit/s")
        assert traffic["out"].startswith(f"average 1{NBSP}Mbit/s")
        await kit.sign_out()
        await kit.sign_in("alice")
        assert "traffic" not in (await kit.page("/links/acme-fra-1?range=24h")).lower()


def error_message(html: str) -> str:
    """What an error page says under its heading."""
    card = element(html, "section", "card")
    found = re.search(r"</h1>\s*<p>(.*?)</p>", card, flags=re.S)
    assert found, card
    return words(found.group(1)).strip()


async def test_an_unknown_range_is_a_400_that_says_what_is_allowed(kit: PortalKit) -> None:
    await kit.sign_in("alice")
    response = await kit.client.get("/links/acme-fra-1?range=1y")
    assert response.status == 400
    assert "range='1y' is not allowed; use one of 24h, 7d, 30d, 90d" in error_message(
        await response.text()
    )


# --- reports -----------------------------------------------------------------------------------


async def test_the_monthly_report_is_the_one_the_cli_prints(kit: PortalKit) -> None:
    await kit.sign_in("alice")
    listing = await kit.page("/reports")
    months = re.findall(r"<li>.*?</li>", element(listing, "ul", "months"), flags=re.S)
    assert [words(m).strip() for m in months] == [
        "November 2026 2026-11 · in progress: provisional figures Download PDF"
    ]
    assert "October 2026" not in words(listing)  # monitoring began in November
    response = await kit.client.get("/reports/monthly?month=2026-11")
    assert response.status == 200
    body = await response.text()
    # The command line's document, plus a way back to the list (a file has no portal).
    back = "/reports?customer=acme"
    assert body == await monthly_report(kit.db, kit.config, "acme", "2026-11", NOW, back_href=back)
    assert f'<a href="{back}">' in body
    assert "All reports" not in await monthly_report(kit.db, kit.config, "acme", "2026-11", NOW)
    policy = response.headers["Content-Security-Policy"]
    assert re.search(r"style-src 'sha256-[A-Za-z0-9+/=]+';", policy)
    assert "script-src" not in policy
    assert "default-src 'none'" in policy
    same = await kit.client.get("/reports/monthly?customer=acme&month=2026-11")
    assert same.status == 200


async def test_reports_begin_with_the_first_month_a_contract_was_measured(
    kit: PortalKit,
) -> None:
    # acme-fra-1 was measured for two hours in September already.
    september = datetime(2026, 9, 20, 8, 0, tzinfo=UTC)
    await kit.store(up_samples("acme-fra-1", september, september + timedelta(hours=2)))
    await kit.sign_in("alice")
    listing = words(element(await kit.page("/reports"), "ul", "months"))
    assert re.findall(r"(\w+ 2026) 2026-", listing) == [
        "November 2026",
        "October 2026",
        "September 2026",
    ]
    # Its contract begins in November: before then there is nothing to report.
    starts = "links: [acme-fra-1], effective_from: '2026-11-01T00:00:00+01:00',"
    text = CONFIG_TEXT.replace("links: [acme-fra-1],", starts)
    assert text != CONFIG_TEXT
    await reload_config(kit.client.app, portal_config(text))
    listing = words(element(await kit.page("/reports"), "ul", "months"))
    assert re.findall(r"(\w+ 2026) 2026-", listing) == ["November 2026"]


async def test_staff_choose_the_customer_of_a_report(kit: PortalKit) -> None:
    await kit.sign_in("olga")
    assert shown(await kit.page("/reports"), "p", "empty") == (
        "Choose a customer to see their reports."
    )
    months = element(await kit.page("/reports?customer=globex"), "ul", "months")
    assert 'href="/reports/monthly?customer=globex&amp;month=2026-11"' in months
    report = await kit.page("/reports/monthly?customer=globex&month=2026-10")
    assert "Customer Globex Inc (globex)" in words(element(report, "dl", "facts"))
    missing = await kit.client.get("/reports/monthly?month=2026-10")
    assert missing.status == 400


@pytest.mark.parametrize(
    ("month", "message"),
    [
        ("2026-13", "month='2026-13': month must be 01 to 12"),
        ("2026-W47", "month='2026-W47' is not a month; write it as 2026-11"),
        ("November", "month='November' is not a window"),
        ("", "month is required; write it as 2026-11"),
    ],
)
async def test_a_bad_month_is_a_400_with_a_message(
    kit: PortalKit, month: str, message: str
) -> None:
    await kit.sign_in("alice")
    response = await kit.client.get(f"/reports/monthly?month={month}")
    assert response.status == 400
    assert message in error_message(await response.text())


async def test_a_month_not_begun_is_a_404_saying_when_it_begins(kit: PortalKit) -> None:
    # A well-formed month that has no report yet is not a bad request: it is not there.
    await kit.sign_in("alice")
    response = await kit.client.get("/reports/monthly?month=2027-01")
    assert response.status == 404
    assert "month='2027-01' has not begun yet" in error_message(await response.text())


# --- credits -------------------------------------------------------------------------------------


def fra_gold(window: str) -> str:
    """The row of contract acme-fra-gold in a window's table of credits."""
    return table_row(window, '<td data-label="Contract">acme-fra-gold</td>')


async def test_credits_per_window_with_amount_and_status_in_plain_words(kit: PortalKit) -> None:
    # Last week acme-fra-1 was down two hours: below 99.5 %, a credit.
    outage = datetime(2026, 11, 10, 9, tzinfo=UTC)
    week = minutes(
        datetime(2026, 11, 9, tzinfo=UTC) - timedelta(hours=1), datetime(2026, 11, 16, tzinfo=UTC)
    )
    await kit.store([s for s in samples("acme-fra-1", week, rtt_ms=10.0, loss_pct=0.0)
                     if not outage <= s.observed_at < outage + timedelta(hours=2)])  # fmt: skip
    await kit.store(down_samples("acme-fra-1", outage, outage + timedelta(hours=2)))
    await refresh_ledger(kit.db, kit.config, ["2026-W46", "2026-W47", "2026-11"], NOW)
    rows = {
        r.window_label: r
        for r in await list_rows(kit.db, customer="acme")
        if r.contract_id == "acme-fra-gold"
    }
    assert rows["2026-W46"].status == "closed"
    await approve(kit.db, [rows["2026-W46"].id], "bill", NOW)
    await apply(kit.db, [rows["2026-W46"].id], "bill", "INV-2026-118", NOW)

    await kit.sign_in("alice")
    html = await kit.page("/credits")
    # The window as every page shows it: its start and end with their times, in the
    # customer's zone (Berlin's week, not the UTC dates it begins and ends on), kept whole.
    heading = section(html, "Window 2026-W46").split("</h2>")[0]
    span = "2026-11-09 00:00 CET to 2026-11-16 00:00 CET · total"
    assert " ".join(words(heading).split()).startswith(f"2026-W46 {span}"), words(heading)
    assert '<span class="date">2026-11-16 00:00 CET</span>' in heading
    w46 = fra_gold(section(html, "Window 2026-W46"))
    amount = f"{rows['2026-W46'].credit_amount:,}{NBSP}EUR"
    assert cell(w46, "Amount") == amount
    # 7,200 s down of 604,800 s: 98.8095 % stored, 98.809 % read (3 decimals, truncated).
    assert rows["2026-W46"].availability_pct == Decimal("98.8095")
    assert cell(w46, "Availability").startswith(f"98.809{NBSP}%")
    assert "Credited on invoice INV-2026-118" in cell(w46, "Status")
    w47 = fra_gold(section(html, "Window 2026-W47"))
    assert "Being measured: the figures change until the window ends" in cell(w47, "Status")
    assert f"Credited {amount}" in shown(html, "dl", "totals")
    link = await kit.page("/links/acme-fra-1")
    credits = section(link, "credits-heading")
    windows = re.findall(r'<td data-label="Window"><strong>([^<]+)</strong>', credits)
    assert windows.index("2026-W47") < windows.index("2026-W46")  # newest first
    w46 = table_row(credits, "<strong>2026-W46</strong>")
    assert "Credited on invoice INV-2026-118" in cell(w46, "Status")
    assert "acme-ber-silver" not in link  # another link's contract

    await kit.sign_out()
    await kit.sign_in("bill")
    response = await kit.client.get("/credits", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/billing")
    await kit.sign_out()
    await kit.sign_in("olga")
    assert shown(await kit.page("/credits"), "p", "empty") == (
        "Choose a customer to see their credits."
    )
    w46 = fra_gold(section(await kit.page("/credits?customer=acme"), "Window 2026-W46"))
    assert "INV-2026-118" in cell(w46, "Status")


# --- scope -----------------------------------------------------------------------------------


async def test_another_customers_things_are_as_missing_as_nonexistent_ones(kit: PortalKit) -> None:
    await kit.sign_in("alice")
    pairs = [
        ("/links/globex-nyc-1?range=24h", "/links/no-such-link?range=24h"),
        ("/links/globex-nyc-1?range=1y", "/links/no-such-link?range=1y"),
        ("/partial/links/globex-nyc-1", "/partial/links/no-such-link"),
        (
            "/reports/monthly?customer=globex&month=2026-11",
            "/reports/monthly?customer=nobody&month=2026-11",
        ),
        ("/reports?customer=globex", "/reports?customer=nobody"),
        ("/credits?customer=globex", "/credits?customer=nobody"),
    ]
    for other, missing in pairs:
        a, b = await kit.client.get(other), await kit.client.get(missing)
        assert a.status == b.status == 404, other
        assert await a.text() == await b.text()
        assert "globex" not in (await a.text()).lower()


async def test_a_customer_never_sees_another_customers_name_or_links(kit: PortalKit) -> None:
    await upsert_maintenance(
        kit.db,
        [MaintenanceWindow("mw-g", NOW + timedelta(days=1), NOW + timedelta(days=1, hours=1),
                           NOW - timedelta(days=5), "Work", customer_ids=("globex",))],
        source="config",
    )  # fmt: skip
    await refresh_ledger(kit.db, kit.config, ["2026-W47", "2026-11"], NOW)
    await kit.sign_in("alice")
    for path in (
        "/links/acme-fra-1", "/links/acme-ber-2?range=24h", "/links/acme-fra-1?range=90d",
        "/partial/links/acme-ber-2", "/reports", "/reports/monthly?month=2026-11",
        "/credits", "/maintenance",
    ):  # fmt: skip
        html = (await kit.page(path)).lower()
        for other in ("globex", "nyc", "bos-2", "new york", "boston"):
            assert other not in html, (path, other)


async def test_cached_figures_are_shared_but_staff_only_ones_stay_staffs(
    database: Database,
) -> None:
    from portal import PortalSettings
    from tests.portal_kit import TTL

    settings = PortalSettings(session_ttl=TTL, cache_ttl=timedelta(minutes=5))
    async with running_portal(database, settings=settings) as kit:
        await kit.sign_in("olga")
        staff = await kit.page("/links/acme-ber-2")
        month = sla_card(staff, "acme-ber-silver", "2026-11")
        assert "budget runs out in" in shown(month, "p", "countdown")
        await kit.sign_out()
        await kit.sign_in("alice")
        customer = await kit.page("/links/acme-ber-2")
        assert "budget runs out" not in customer
        # The same figures, read once: the cached week as staff saw it.
        week = shown(sla_card(staff, "acme-ber-silver", "2026-W47"), "span", "sla-availability")
        seen = sla_card(customer, "acme-ber-silver", "2026-W47")
        assert shown(seen, "span", "sla-availability") == week


@pytest.mark.parametrize(
    ("decimals", "expected"),
    [pytest.param(None, "98.809", id="default-3"), pytest.param(2, "98.80", id="contract-2")],
)
async def test_a_windows_availability_reads_the_same_everywhere(
    database: Database, decimals: int | None, expected: str
) -> None:
    """One contract window, 2 h down of 604,800 s (98.8095 % in the ledger): the link
    page, the credits page, the monthly report and the e-mail all write the same figure,
    to the contract's decimals."""
    text = CONFIG_TEXT
    if decimals is not None:
        text = text.replace(
            "id: acme-fra-gold,", f"id: acme-fra-gold, availability_decimals: {decimals},"
        )
    async with running_portal(database, portal_config(text), history=None) as kit:
        outage = datetime(2026, 11, 10, 9, tzinfo=UTC)
        week = minutes(datetime(2026, 11, 8, 23, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC))
        await kit.store([s for s in samples("acme-fra-1", week, rtt_ms=10.0, loss_pct=0.0)
                         if not outage <= s.observed_at < outage + timedelta(hours=2)])  # fmt: skip
        await kit.store(down_samples("acme-fra-1", outage, outage + timedelta(hours=2)))
        await refresh_ledger(kit.db, kit.config, ["2026-W46"], NOW)
        (row,) = [r for r in await list_rows(kit.db, window="2026-W46")
                  if r.contract_id == "acme-fra-gold"]  # fmt: skip
        assert row.availability_pct == Decimal("98.8095")  # the ledger keeps its value
        figure = f"{expected}{NBSP}%"

        await kit.sign_in("alice")
        link = await kit.page("/links/acme-fra-1")
        w46 = table_row(section(link, "credits-heading"), "<strong>2026-W46</strong>")
        assert cell(w46, "Availability").startswith(figure)
        credits = fra_gold(section(await kit.page("/credits"), "Window 2026-W46"))
        assert cell(credits, "Availability").startswith(figure)
        report = words(await kit.page("/reports/monthly?month=2026-11")).replace(NBSP, " ")
        assert f"acme-fra-gold acme-fra-1 2026-W46 {expected} % 99.5 % Target missed" in report

        event = _breach_event(row, NOW)
        message = render(event, kit.config)
        assert f"measured {figure} against the 99.5{NBSP}%" in message.text
        assert dict(message.facts)["Measured availability"] == figure
