"""A link measured from several sites is down only while a quorum of them see it down.

The vote's rules as a table and as properties; then samples of three sites imported with
`linkwatch import samples` as a user would load another monitor's per-site export, and
the link states the daemon bills by: one site cut off is no outage, the target cut is one
outage from the moment the quorum was reached, sites that cannot see are unknown time.
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from collector.database import Database
from collector.embedded import EmbeddedPostgres
from collector.intervals import combine_statuses, site_vote, vote
from kernel.config import parse_config
from kernel.domain import LinkStatus, Outcome, Sample
from tests.helpers import cell, element, linkwatch, section, table_row, text_of
from tests.portal_kit import CONFIG_TEXT, portal_config, running_portal

UP_, DOWN_ = Outcome.UP, Outcome.DOWN
UP, DEGRADED, DOWN, UNKNOWN = (
    LinkStatus.UP,
    LinkStatus.DEGRADED,
    LinkStatus.DOWN,
    LinkStatus.UNKNOWN,
)


@pytest.mark.parametrize(
    ("seen", "quorum", "status"),
    [
        ([DOWN, UP, UP], 2, UP),  # one site alone cannot call it down
        ([DOWN, DOWN, UP], 2, DOWN),
        ([DOWN, DOWN, DOWN], 2, DOWN),
        ([DOWN, UNKNOWN, UNKNOWN], 2, UNKNOWN),  # fewer than the quorum measure it
        ([UP, UNKNOWN, UNKNOWN], 2, UNKNOWN),
        ([UP, UP, UNKNOWN], 2, UP),  # two healthy sites are enough to call it up
        ([DOWN, DEGRADED, UP], 2, DEGRADED),  # two see it at least degraded
        ([DEGRADED, UP, UP], 2, UP),
        ([DOWN, UP], 1, DOWN),  # quorum 1: any site suffices
    ],
)
def test_each_probe_is_what_a_quorum_of_its_sites_see(
    seen: list[LinkStatus], quorum: int, status: LinkStatus
) -> None:
    assert site_vote(seen, quorum) is status


def test_one_site_with_quorum_one_is_the_link_as_measured_from_one_place() -> None:
    for status in (UP, DEGRADED, DOWN, UNKNOWN):
        assert site_vote([status], 1) is status
    # Probes of one site: the link as it was combined before sites existed; and with
    # quorum 1 any number of sites combine the same way (derivation relies on both).
    for statuses in itertools.product(LinkStatus, repeat=3):
        for names in (("ping", "port", "web"), ("ping", "ping", "port")):
            probes = zip(names, statuses, strict=True)
            assert vote(probes, 1) is combine_statuses(statuses), (names, statuses)


# --- through the import, as the daemon derives states ----------------------------------

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
HEADER = "time,link,probe,outcome,rtt_ms,loss_pct,error"


def _config(directory: Path) -> Path:
    canary = "canaries: [{id: gw, kind: icmp, host: 127.0.0.1}]"
    path = directory / "linkwatch.yaml"
    path.write_text(
        f"data_dir: {directory}\n"
        f"site: {{id: local, {canary}}}\n"
        f"sites: [{{id: fra, {canary}}}, {{id: ams, {canary}}}]\n"
        "customers: [{id: acme, name: Acme}]\n"
        "links:\n"
        "  - id: hq\n"
        "    customer: acme\n"
        "    vantage: {sites: [local, fra, ams], quorum: 2}\n"
        "    probes: [{id: ping, kind: icmp, host: 127.0.0.1, interval: 30s, confirm: 2}]\n"
        "contracts: [{id: gold, customer: acme, links: [hq], target: 99.5, window: month}]\n"
    )
    return path


def _rows(probe: str, minutes: range, outcome: str = "up", first: int = 0) -> list[str]:
    rows = []
    for step in range(minutes.start * 2, minutes.stop * 2):
        at = (T0 + timedelta(seconds=30 * step)).isoformat().replace("+00:00", "Z")
        if outcome == "down" and step >= first * 2:
            rows.append(f"{at},hq,{probe},down,,100,no reply (5/5 lost)")
        elif outcome == "unknown" and step >= first * 2:
            rows.append(f"{at},hq,{probe},unknown,,,monitor blind: 1 of 1 canaries failing")
        else:
            rows.append(f"{at},hq,{probe},up,1.5,0,")
    return rows


def _link_states(directory: Path) -> list[tuple[str, datetime, datetime | None]]:
    with EmbeddedPostgres(directory) as server, psycopg.connect(server.url) as conn:
        return [
            (str(status), starts, ends)
            for status, starts, ends in conn.execute(
                "SELECT status, starts_at, ends_at FROM link_states ORDER BY starts_at"
            ).fetchall()
        ]


def _minute(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def test_one_site_cut_off_is_no_outage_and_a_target_cut_is_one_from_the_quorum(
    pg_data_dir: Path,
) -> None:
    config = _config(pg_data_dir)
    # 10:00-10:30. fra loses its way to the customer 10:05-10:15 (it sees the link
    # down, alone). The customer's link is cut 10:20-10:25: fra sees it from 10:20,
    # ams from 10:21 (its next runs), local never (it is blind then: unknown).
    local = [*_rows("ping", range(0, 20)), *_rows("ping", range(20, 26), "unknown")]
    local += _rows("ping", range(26, 30))
    fra = [*_rows("ping@fra", range(0, 5)), *_rows("ping@fra", range(5, 15), "down")]
    fra += [*_rows("ping@fra", range(15, 20)), *_rows("ping@fra", range(20, 25), "down")]
    fra += _rows("ping@fra", range(25, 30))
    ams = [*_rows("ping@ams", range(0, 21)), *_rows("ping@ams", range(21, 25), "down")]
    ams += _rows("ping@ams", range(25, 30))
    data = pg_data_dir / "sites.csv"
    data.write_text("\n".join([HEADER, *sorted(local + fra + ams)]) + "\n")
    result = linkwatch("import", "samples", "--config", str(config), str(data))
    assert result.returncode == 0, result.stderr
    count = len(local + fra + ams)
    assert result.stdout.strip() == (
        f"{data}: imported {count} samples, {count} new (0 already stored)"
    )

    states = _link_states(pg_data_dir)
    downs = [(s, a, b) for s, a, b in states if s == "down"]
    # fra alone saw 10:05-10:15: no outage. The cut: down from 10:21, when ams confirmed
    # it as the second site, until 10:25, when fewer than two still saw it.
    assert downs == [("down", _minute(21), _minute(25))]
    # Never down while only fra saw it; up around it.
    assert ("up", T0, _minute(21)) in states, states

    # The monthly report says how it was measured, and who saw the outage.
    report = linkwatch(
        "report", "monthly", "--config", str(config), "--customer", "acme", "--month", "2026-11"
    )
    assert report.returncode == 0, report.stderr
    text = text_of(report.stdout)
    assert (
        "Measured from 3 sites local, fra, ams; an outage counts only while at least 2 of "
        "them see the link down"
    ) in text, text
    assert "Several sites. A link measured from several sites is judged by each site" in text
    assert (
        "hq: ping seen down by fra (from 10:20:00: no reply (5/5 lost)) and ams (from "
        "10:21:00: no reply (5/5 lost)); local did not see it down"
    ) in text, text


def test_config_names_what_a_vote_needs(tmp_path: Path) -> None:
    config = parse_config(
        "sites: [{id: fra, canaries: [{id: gw, kind: icmp, host: 127.0.0.1}]}]\n"
        "customers: [{id: acme, name: Acme}]\n"
        "links:\n"
        "  - {id: hq, customer: acme, vantage: {sites: [local, fra]},"
        " probes: [{id: ping, kind: icmp, host: 127.0.0.1}]}\n"
    )
    assert [(p.id, p.measured_from) for p in config.links[0].probes] == [
        ("ping", "local"),
        ("ping@fra", "fra"),
    ]


# --- the link page ------------------------------------------------------------------------


async def test_the_link_page_says_where_the_link_is_measured_from(database: Database) -> None:
    canary = "canaries: [{id: gw, kind: icmp, host: 127.0.0.1}]"
    text = CONFIG_TEXT.replace(
        "links:\n",
        f"site: {{id: local, name: Berlin, {canary}}}\n"
        f"sites: [{{id: fra, name: Frankfurt, {canary}}}, {{id: ams, {canary}}}]\n"
        "links:\n"
        "  - id: acme-multi\n"
        "    customer: acme\n"
        "    vantage: {sites: [local, fra, ams], quorum: 2}\n"
        "    probes: [{id: ping, kind: icmp, host: 127.0.0.1}]\n",
        1,
    )
    async with running_portal(database, portal_config(text), history=None) as kit:
        now = kit.clock()
        seen = [
            Sample("acme-multi", probe, now - timedelta(seconds=30 * i), outcome)
            for probe, outcome in (("ping", UP_), ("ping@fra", DOWN_), ("ping@ams", UP_))
            for i in range(1, 6)
        ]
        await kit.store(seen)
        for user in ("alice", "olga"):  # the customer and operations alike
            await kit.sign_out()
            await kit.sign_in(user)
            page = await kit.page("/links/acme-multi")
            assert text_of(element(page, "p", "vantage")) == (
                "Measured from 3 locations (Berlin, Frankfurt, ams); down only while at "
                "least 2 of them see it down."
            )
            table = element(page, "table", "probes")
            rows = [
                (cell(row, "Probe"), cell(row, "From"), cell(row, "Status"))
                for row in re.findall(r"<tr>\s*<td.*?</tr>", table, flags=re.S)
            ]
            assert rows == [
                ("ping", "Berlin", "Up"),
                ("ping", "Frankfurt", "Down"),
                ("ping", "ams", "Up"),
            ], user
            # Frankfurt alone sees it down: the link is up.
            assert 'class="badge badge-up"' in heading_html(page), user
            incidents = section(page, "incidents-heading")
            assert text_of(element(incidents, "p", "empty")) == "No outages in the last 90 days."

        # Then Amsterdam sees it down too: an outage, and the page says who saw it.
        later = now + timedelta(minutes=3)
        kit.clock.advance(timedelta(minutes=3))
        await kit.store(
            [
                Sample("acme-multi", probe, later - timedelta(seconds=30 * i), outcome, error=e)
                for probe, outcome, e in (
                    ("ping", UP_, None),
                    ("ping@fra", DOWN_, "no reply (5/5 lost)"),
                    ("ping@ams", DOWN_, "no reply (5/5 lost)"),
                )
                for i in range(0, 5)
            ]
        )
        page = await kit.page("/links/acme-multi")
        assert 'class="badge badge-down"' in heading_html(page)
        row = table_row(section(page, "incidents-heading"), "seen down from")
        # (Frankfurt's outage began with the earlier samples, stored without an error.)
        assert cell(row, "Cause") == (
            "ping: seen down from Frankfurt, ams (no reply (5/5 lost)); not from Berlin"
        )


def heading_html(page: str) -> str:
    found = re.search(r"<h1\b[^>]*>(.*?)</h1>", page, flags=re.S)
    assert found
    return found.group(1)
