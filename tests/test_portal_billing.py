"""The billing desk over real HTTP on the embedded PostgreSQL: the ledger with filters and
totals, approving and applying after a confirmation, manual adjustments, the CSV export,
the audit trail, and who may do what. Ledger rows come from `refresh_ledger` over states
derived from stored samples, as the daemon makes them."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape

import pytest
from aiohttp import ClientResponse

from collector import Database
from kernel.domain import Outcome, Sample
from sla import ledger
from sla.ledger import LedgerRow, export_fields, refresh_ledger
from tests.helpers import element, heading, table_row, text_of
from tests.portal_kit import (
    NOW,
    PortalKit,
    minutes,
    running_portal,
    samples,
)
from tests.test_portal_noc import CONFIG, STEP

LAST_WEEK = "2026-W46"  # closed: its grace ended on Wednesday 00:00 in Berlin
THIS_WEEK = "2026-W47"  # running: open
BERLIN_W46 = datetime(2026, 11, 8, 23, 0, tzinfo=UTC)
NEW_YORK_W46 = datetime(2026, 11, 9, 5, 0, tzinfo=UTC)


def history(now: datetime) -> list[Sample]:
    """acme-fra-1 down an hour last week (12.50 EUR of credit), globex-nyc-1 two hours
    (264.00 USD); both up since."""
    out: list[Sample] = []
    for link, start, hours in (("acme-fra-1", BERLIN_W46, 1), ("globex-nyc-1", NEW_YORK_W46, 2)):
        down = (start + timedelta(days=2), start + timedelta(days=2, hours=hours))
        out += samples(link, minutes(start, down[0], STEP), rtt_ms=4.0, loss_pct=0.0)
        out += samples(link, minutes(*down, STEP), Outcome.DOWN, loss_pct=100.0)
        out += samples(link, minutes(down[1], now, STEP), rtt_ms=4.0, loss_pct=0.0)
    return out


@pytest.fixture
async def kit(database: Database) -> AsyncIterator[PortalKit]:
    async with running_portal(database, CONFIG, history=history) as portal:
        await refresh_ledger(portal.db, portal.config, [LAST_WEEK, THIS_WEEK], NOW)
        yield portal


async def rows(kit: PortalKit, window: str | None = None) -> list[LedgerRow]:
    return await ledger.list_rows(kit.db, window=window)


async def row_of(kit: PortalKit, contract: str, window: str = LAST_WEEK) -> LedgerRow:
    (row,) = [r for r in await rows(kit, window) if r.contract_id == contract]
    return row


def listed_ids(html: str) -> list[int]:
    return [
        int(i) for i in re.findall(r'<td data-label="Row"><a href="/billing/ledger/(\d+)">', html)
    ]


async def post(kit: PortalKit, path: str, data: dict[str, object]) -> ClientResponse:
    return await kit.client.post(path, data=data, allow_redirects=False)


# --- who may -----------------------------------------------------------------------------


async def test_only_billing_and_admins_reach_the_desk(kit: PortalKit) -> None:
    paths = ["/billing", "/billing/audit", "/billing/export.csv", "/billing/ledger/1",
             "/billing/confirm?action=approve&id=1"]  # fmt: skip
    anonymous = await kit.client.get("/billing", allow_redirects=False)
    assert (anonymous.status, anonymous.headers["Location"]) == (303, "/login?next=/billing")
    closed = await row_of(kit, "acme-fra-gold")
    for name in ("olga", "alice"):
        token = await kit.sign_in(name)
        for path in paths:
            response = await kit.client.get(path)
            assert response.status == 404, (name, path)
            assert "acme-fra-gold" not in await response.text()
        refused = await post(kit, "/billing/approve", {"csrf_token": token, "id": closed.id})
        assert refused.status == 404
        await kit.sign_out()
    assert (await row_of(kit, "acme-fra-gold")).status == "closed"
    await kit.sign_in("ada")
    assert heading(await kit.page("/billing")).startswith("Credit ledger")


# --- the ledger ------------------------------------------------------------------------


async def test_the_ledger_shows_recent_windows_with_filters_and_totals(kit: PortalKit) -> None:
    await kit.sign_in("bill")
    html = await kit.page("/billing")
    everything = await rows(kit)
    assert sorted(listed_ids(html)) == sorted(r.id for r in everything)
    fra = await row_of(kit, "acme-fra-gold")
    line = text_of(table_row(html, f'<a href="/billing/ledger/{fra.id}">'))
    assert "acme-fra-gold Acme Corp acme-fra-1 2026-W46" in line
    assert "99.404 % target 99.5 %" in line  # 3,600 s down of 604,800 s, 3 decimals
    assert "5 % 12.50 EUR closed computed" in line

    # The row's own page: every figure as a person reads it, none raw.
    detail = await kit.page(f"/billing/ledger/{fra.id}")
    figures = element(detail, "table", "figures")
    shown = {
        text_of(label): text_of(value)
        for label, value in re.findall(
            r'<th scope="row">(.*?)</th><td class="num">(.*?)</td>', figures
        )
    }
    assert shown["Window"] == ("2026-W46 · 2026-11-09 00:00 CET to 2026-11-16 00:00 CET")
    assert shown["Window length"] == "7 d"
    assert shown["Down"] == "1 h"
    assert shown["Error budget"] == "50 min 24 s"  # 0.5 % of 604,800 s
    assert shown["Availability"] == "99.404 %"
    assert shown["Target"] == "99.5 %"
    assert shown["Result"] == "Target missed"
    assert shown["Credit amount"] == "12.50 EUR"
    assert re.fullmatch(r"2026-11-\d\d \d\d:\d\d CET", shown["Closes (end of grace)"])
    # ISO 8601 only where machines read it: in <time datetime="...">.
    outside = re.sub(r'datetime="[^"]*"', "", detail)
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", outside)
    assert not re.search(r"\d\.\d{6} s", text_of(detail))
    totals = text_of(element(html, "section", "totals"))
    assert "closed 12.50 EUR 1 row" in totals
    assert "closed 264.00 USD 1 row" in totals

    acme = await kit.page(f"/billing?window={LAST_WEEK}&customer=acme")
    assert listed_ids(acme) == [fra.id]
    assert listed_ids(await kit.page(f"/billing?window={THIS_WEEK}&status=closed")) == []
    assert len(listed_ids(await kit.page("/billing?status=open"))) == 2
    assert listed_ids(await kit.page("/billing?kind=adjustment")) == []
    empty = element(await kit.page("/billing?kind=adjustment"), "p", "empty")
    assert "No ledger rows match" in text_of(empty)
    bad = await kit.client.get("/billing?window=2026-W60")
    assert bad.status == 400
    assert "2026 has no ISO week 60" in unescape(await bad.text())
    assert (await kit.client.get("/billing?customer=nobody")).status == 404


async def test_the_csv_export_has_the_filtered_rows(kit: PortalKit) -> None:
    await kit.sign_in("bill")
    response = await kit.client.get(f"/billing/export.csv?window={LAST_WEEK}&customer=globex")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response.headers["Content-Disposition"]
    assert disposition == 'attachment; filename="linkwatch-ledger-2026-W46-globex.csv"'
    body = await response.text()
    assert body.splitlines()[0].split(",") == list(export_fields())
    (line,) = list(csv.DictReader(io.StringIO(body)))
    assert (line["contract"], line["window"], line["credit_amount"], line["currency"]) == (
        "globex-nyc-platinum",
        LAST_WEEK,
        "264.00",
        "USD",
    )
    recent = await kit.client.get("/billing/export.csv?status=open")
    assert 'filename="linkwatch-ledger-recent-open.csv"' in recent.headers["Content-Disposition"]
    assert len(list(csv.DictReader(io.StringIO(await recent.text())))) == 2


# --- approve and apply -----------------------------------------------------------------


async def test_approving_takes_a_confirmation_then_is_done_by_the_signed_in_user(
    kit: PortalKit,
) -> None:
    token = await kit.sign_in("bill")
    fra, nyc = await row_of(kit, "acme-fra-gold"), await row_of(kit, "globex-nyc-platinum")
    desk = element(await kit.page("/billing"), "form", "desk")
    assert 'action="/billing/confirm"' in desk.split(">", 1)[0]
    fra_row = table_row(desk, f'<a href="/billing/ledger/{fra.id}">')
    assert f'<input type="checkbox" name="id" value="{fra.id}"' in fra_row

    confirm = await kit.page(f"/billing/confirm?action=approve&id={fra.id}&id={nyc.id}")
    assert heading(confirm) == "Approve 2 credit rows?"
    assert text_of(element(confirm, "p", "together")) == "Together: 12.50 EUR · 264.00 USD"
    assert sorted(listed_ids(confirm)) == sorted([fra.id, nyc.id])
    assert 'action="/billing/approve"' in element(confirm, "form", "confirm-form")
    assert (await row_of(kit, "acme-fra-gold")).status == "closed"  # only a question so far

    response = await post(kit, "/billing/approve", {"csrf_token": token, "id": [fra.id, nyc.id]})
    assert response.status == 303
    location = response.headers["Location"]
    assert location == f"/billing?done=approved&id={min(fra.id, nyc.id)}&id={max(fra.id, nyc.id)}"
    result = await kit.page(location)
    done = text_of(element(result, "p", "notice"))
    assert "2 rows approved by you, crediting 12.50 EUR, 264.00 USD." in done
    for contract in ("acme-fra-gold", "globex-nyc-platinum"):
        row = await row_of(kit, contract)
        assert (row.status, row.approved_by, row.approved_at) == ("approved", "bill", NOW)
    (entry,) = [e for e in await ledger.audit_log(kit.db, [fra.id]) if e.action == "approved"]
    assert (entry.actor, entry.from_status, entry.to_status, entry.at) == (
        "bill",
        "closed",
        "approved",
        NOW,
    )
    detail = await kit.page(f"/billing/ledger/{fra.id}")
    assert f"approved #{fra.id} by bill" in text_of(element(detail, "li", "trail-approved"))


async def test_apply_without_an_invoice_is_refused_and_changes_nothing(kit: PortalKit) -> None:
    token = await kit.sign_in("bill")
    fra = await row_of(kit, "acme-fra-gold")
    await ledger.approve(kit.db, [fra.id], "bill", NOW)
    audit = await ledger.audit_log(kit.db)
    confirm = await kit.page(f"/billing/confirm?action=apply&id={fra.id}")
    assert 'name="invoice_ref"' in confirm

    response = await post(
        kit, "/billing/apply", {"csrf_token": token, "id": fra.id, "invoice_ref": "  "}
    )
    assert response.status == 400
    alert = text_of(element(await response.text(), "div", "alert"))
    assert "Enter the invoice reference the credits go on." in alert
    assert "Nothing has changed." in alert
    assert (await row_of(kit, "acme-fra-gold")).status == "approved"
    assert await ledger.audit_log(kit.db) == audit

    response = await post(
        kit, "/billing/apply", {"csrf_token": token, "id": fra.id, "invoice_ref": "INV-2026-1042"}
    )
    assert response.status == 303
    done = element(await kit.page(response.headers["Location"]), "p", "notice")
    assert "1 row applied by you to invoice INV-2026-1042" in text_of(done)
    applied = await row_of(kit, "acme-fra-gold")
    assert (applied.status, applied.applied_by, applied.invoice_ref) == (
        "applied",
        "bill",
        "INV-2026-1042",
    )


async def test_approving_an_open_row_is_refused_in_plain_words_and_changes_nothing(
    kit: PortalKit,
) -> None:
    token = await kit.sign_in("bill")
    open_row = await row_of(kit, "acme-fra-gold", THIS_WEEK)
    closed = await row_of(kit, "acme-fra-gold")
    confirm = await kit.client.get(
        f"/billing/confirm?action=approve&id={open_row.id}&id={closed.id}"
    )
    assert confirm.status == 409
    alert = text_of(element(await confirm.text(), "div", "alert"))
    assert alert.startswith("Nothing can be approved as selected:")
    assert (
        f"#{open_row.id} acme-fra-gold acme-fra-1 2026-W47 is open (its window is still "
        "running); only closed rows can be approved"
    ) in alert
    assert 'action="/billing/approve"' not in await confirm.text()

    # Straight to the POST (a stale page, say): the ledger refuses all of it.
    audit = await ledger.audit_log(kit.db)
    response = await post(
        kit, "/billing/approve", {"csrf_token": token, "id": [open_row.id, closed.id]}
    )
    assert response.status == 409
    alert = text_of(element(await response.text(), "div", "alert"))
    assert "nothing was approved:" in alert
    assert "only closed rows can be approved" in alert
    assert (await row_of(kit, "acme-fra-gold")).status == "closed"
    assert await ledger.audit_log(kit.db) == audit
    empty = await post(kit, "/billing/approve", {"csrf_token": token})
    assert empty.status == 400
    assert "Select at least one row first" in text_of(element(await empty.text(), "div", "alert"))


async def test_a_post_without_the_csrf_token_is_forbidden_and_changes_nothing(
    kit: PortalKit,
) -> None:
    token = await kit.sign_in("bill")
    fra = await row_of(kit, "acme-fra-gold")
    for data in ({"id": fra.id}, {"id": fra.id, "csrf_token": token + "x"}):
        assert (await post(kit, "/billing/approve", data)).status == 403
        adjust = await post(
            kit, f"/billing/ledger/{fra.id}/adjust", {**data, "amount": "5", "reason": "x"}
        )
        assert adjust.status == 403
    assert (await row_of(kit, "acme-fra-gold")).status == "closed"
    assert [e.action for e in await ledger.audit_log(kit.db, [fra.id])] == ["created"]


# --- adjustments -----------------------------------------------------------------------


async def test_an_adjustment_with_a_reason_becomes_a_row_awaiting_approval(kit: PortalKit) -> None:
    token = await kit.sign_in("bill")
    fra = await row_of(kit, "acme-fra-gold")
    detail = await kit.page(f"/billing/ledger/{fra.id}")
    assert "Adjust by hand" not in detail  # closed: its credit still follows the data
    await ledger.approve(kit.db, [fra.id], "bill", NOW)
    detail = await kit.page(f"/billing/ledger/{fra.id}")
    assert f'action="/billing/ledger/{fra.id}/adjust"' in element(detail, "section", "adjust")

    refusals = [
        ("5.00", " ", "Give the reason for the adjustment"),
        ("5.005", "goodwill", "EUR amounts use at most 2 decimal places."),
        ("0.00", "goodwill", "An adjustment of 0 changes nothing"),
        ("five", "goodwill", "Write the amount as a number such as 25.00"),
    ]
    for amount, reason, message in refusals:
        refused = await post(
            kit,
            f"/billing/ledger/{fra.id}/adjust",
            {"csrf_token": token, "amount": amount, "reason": reason},
        )
        assert refused.status == 400
        assert message in element(await refused.text(), "div", "alert")
    assert len(await rows(kit, LAST_WEEK)) == 2

    response = await post(
        kit,
        f"/billing/ledger/{fra.id}/adjust",
        {"csrf_token": token, "amount": "-2.50", "reason": "the cut was announced late"},
    )
    assert response.status == 303
    (made,) = [r for r in await rows(kit, LAST_WEEK) if r.kind == "adjustment"]
    assert response.headers["Location"] == f"/billing/ledger/{made.id}?done=adjusted"
    assert (made.parent_id, made.status, made.amount, made.created_by, made.reason) == (
        fra.id,
        "closed",
        Decimal("-2.50"),
        "bill",
        "the cut was announced late",
    )
    page = await kit.page(response.headers["Location"])
    done = text_of(element(page, "p", "notice"))
    assert done == f"Adjustment #{made.id} recorded. It credits nothing until it is approved."
    assert text_of(element(page, "div", "fact-main")) == "Adjustment -2.50 EUR"
    assert (
        f"manual adjustment of #{fra.id} (approved): -2.50 EUR; the cut was announced late"
        in text_of(element(page, "li", "trail-adjusted"))
    )
    approve = element(page, "p", "row-actions")
    assert text_of(approve) == "Approve…"
    assert f'href="/billing/confirm?action=approve&amp;id={made.id}&amp;' in approve

    again = await post(
        kit,
        f"/billing/ledger/{fra.id}/adjust",
        {"csrf_token": token, "amount": "1.00", "reason": "more"},
    )
    assert again.status == 409
    refusal = text_of(element(await again.text(), "div", "alert"))
    assert "already has an adjustment awaiting approval" in refusal
    pending = await kit.page("/billing?kind=adjustment&status=closed")
    assert listed_ids(pending) == [made.id]


# --- the audit trail -------------------------------------------------------------------


async def test_the_audit_trail_says_who_did_what_when(kit: PortalKit) -> None:
    await kit.sign_in("bill")
    fra, nyc = await row_of(kit, "acme-fra-gold"), await row_of(kit, "globex-nyc-platinum")
    await ledger.approve(kit.db, [fra.id], "bill", NOW + timedelta(minutes=1))
    await ledger.approve(kit.db, [nyc.id], "ada", NOW + timedelta(minutes=2))
    html = await kit.page("/billing/audit?actor=bill")
    (line,) = re.findall(r"<tr>\s*<td data-label=\"When\">.*?</tr>", html, re.S)
    shown = text_of(line)
    assert "2026-11-18 12:01 UTC bill approved" in shown
    assert (
        f"#{fra.id} acme-fra-gold · acme-fra-1 · 2026-W46 closed → approved approved 12.50 EUR"
        in shown
    )
    everything = await kit.page("/billing/audit")
    who = re.findall(r'<td data-label="Who">([^<]*)</td>', element(everything, "table", "audit"))
    assert who.index("ada") < who.index("bill")  # newest first
    globex = await kit.page("/billing/audit?action=approved&customer=globex")
    approved = table_row(element(globex, "table", "audit"), "trail-approved")
    assert f'<a href="/billing/ledger/{nyc.id}">#{nyc.id}</a>' in approved
    assert f"#{fra.id}" not in globex
    empty = element(await kit.page("/billing/audit?since=2026-11-19"), "p", "empty")
    assert text_of(empty) == "No audit entries match."
    assert (await kit.client.get("/billing/audit?action=deleted")).status == 400
