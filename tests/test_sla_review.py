"""Very low coverage is never billed silently.

A week measured for a sliver of its time, with the rest counted as down as the contract
says, earns the contract's credit, but the report line, the ledger row, the billing
desk and the CSV export all flag it, and approving it takes a note; under a contract's
`min_coverage` no credit is computed automatically at all. Driven as billing staff meet
it: `linkwatch import / report sla / credits`, then the billing desk in the portal.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape
from pathlib import Path

from collector import Database
from kernel.domain import Outcome, Sample
from sla import ledger
from sla.ledger import refresh_ledger
from tests.helpers import FAST_HASHER, linkwatch
from tests.portal_kit import (
    _users_yaml,
    minutes,
    portal_config,
    running_portal,
    samples,
)

WEEK = "2026-W40"  # Monday 2026-09-28 00:00 in Berlin (UTC+2)
WEEK_START = datetime(2026, 9, 27, 22, 0, tzinfo=UTC)
BILLING_HASH = FAST_HASHER.hash("billing-password")

CONTRACTS = """\
contracts:
  # Unknown time counts as down: a week barely measured earns the whole credit.
  - {id: acme-gold, customer: acme, links: [acme-hq], target: 99.5, window: week,
     fee: "250.00", currency: EUR, unknown: count_as_down,
     credit: {step: 0.5, per_step: 5, cap: 100}}
  # The same, but the contract pays nothing automatically under half coverage.
  - {id: acme-silver, customer: acme, links: [acme-branch], target: 99.5, window: week,
     fee: "90.00", currency: EUR, unknown: count_as_down, min_coverage: 50,
     credit: {step: 0.5, per_step: 5, cap: 100}}
"""


def _config(directory: Path) -> Path:
    path = directory / "linkwatch.yaml"
    path.write_text(
        f"""\
data_dir: {directory}
customers:
  - {{id: acme, name: ACME Corp, timezone: Europe/Berlin}}
links:
  - {{id: acme-hq, customer: acme, probes: [{{id: icmp, kind: icmp, host: 127.0.0.1,
      interval: 1m}}]}}
  - {{id: acme-branch, customer: acme, probes: [{{id: icmp, kind: icmp, host: 127.0.0.2,
      interval: 1m}}]}}
{CONTRACTS}
users:
  - {{name: betty, role: billing, password_hash: "{BILLING_HASH}"}}
"""
    )
    return path


def _sliver_csv() -> str:
    """Ten minutes of up samples on Wednesday of the week, on both links; nothing else."""
    lines = ["time,link,probe,outcome,rtt_ms,loss_pct"]
    start = WEEK_START + timedelta(days=2)
    for minute in range(10):
        moment = (start + timedelta(minutes=minute)).isoformat()
        lines += [f"{moment},acme-hq,icmp,up,4.2,0", f"{moment},acme-branch,icmp,up,4.2,0"]
    return "\n".join(lines) + "\n"


def _run(*args: str) -> str:
    result = linkwatch(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_barely_measured_week_is_flagged_everywhere_and_approved_only_with_a_note(
    pg_base_dir: Path,
) -> None:
    directory = Path(tempfile.mkdtemp(dir=pg_base_dir))
    directory.chmod(0o711)
    c = ["--config", str(_config(directory))]
    data = directory / "sliver.csv"
    data.write_text(_sliver_csv())
    _run("import", "samples", *c, str(data))

    # 9 samples a minute apart, the last one valid for its 3 minutes of staleness:
    # 720 s of 604,800 s measured.
    records = {
        r["contract"]: r
        for r in json.loads(_run("report", "sla", *c, "--window", WEEK, "--format", "json"))
    }
    gold, silver = records["acme-gold"], records["acme-silver"]
    assert (gold["coverage_pct"], gold["credit_amount"], gold["needs_review"]) == (
        "0.1190",
        "250.00",  # what the contract says, 100 %: paid only once a person approves it
        True,
    )
    assert gold["review_reason"] == (
        "coverage 0.1190 % is under 90 % (ledger.review_coverage_below): check the "
        "monitoring before approving the credit"
    )
    assert (silver["credit_amount"], silver["withheld_credit_amount"]) == ("0.00", "90.00")
    assert silver["review_reason"] == (
        "coverage 0.1190 % is under the contract's min_coverage of 50 %: no credit is "
        "computed automatically (its rules give 100 %, 90.00 EUR)"
    )
    table = _run("report", "sla", *c, "--window", WEEK)
    assert re.search(r"^acme-gold\s+acme-hq\s+2026-W40\s.*\sclosed\s+REVIEW$", table, re.M), table
    assert f"review acme-silver acme-branch 2026-W40: {silver['review_reason']}" in table

    listing = _run("credits", "list", *c, "--window", WEEK)
    ids = dict(re.findall(r"^(\d+)\s+window\s+(acme-\w+)\s.*\sREVIEW$", listing, re.M))
    assert set(ids.values()) == {"acme-gold", "acme-silver"}, listing
    gold_id = next(i for i, contract in ids.items() if contract == "acme-gold")

    refused = linkwatch("credits", "approve", *c, "--id", gold_id, "--user", "betty")
    assert refused.returncode == 2
    assert (
        f"#{gold_id} acme-gold acme-hq 2026-W40 needs review: coverage 0.1190 % is under 90 %"
    ) in refused.stderr
    assert "approve it with a note saying what you checked" in refused.stderr
    assert "Traceback" not in refused.stderr
    note = "monitor host was down all week; customer reported no outage"
    _run("credits", "approve", *c, "--id", gold_id, "--user", "betty", "--note", note)

    (exported,) = csv.DictReader(io.StringIO(_run("credits", "export", *c, "--window", WEEK)))
    assert (exported["needs_review"], exported["approval_note"]) == ("true", note)
    assert exported["review_reason"] == gold["review_reason"]
    assert exported["credit_amount"] == "250.00"


# --- the billing desk -----------------------------------------------------------------------

NOW = datetime(2026, 10, 7, 12, 0, tzinfo=UTC)  # W40's grace is over: its rows are closed
PORTAL_CONFIG = portal_config(
    """\
customers:
  - {id: acme, name: Acme Corp, timezone: Europe/Berlin}
  - {id: globex, name: Globex Inc, timezone: America/New_York}
links:
  - {id: acme-hq, customer: acme, probes: [{id: icmp, kind: icmp, host: 127.0.0.1,
      interval: 10m}]}
  - {id: acme-branch, customer: acme, probes: [{id: icmp, kind: icmp, host: 127.0.0.2,
      interval: 10m}]}
"""
    + CONTRACTS
    + "users:\n"
    + _users_yaml()
)


def _history(now: datetime) -> list[Sample]:
    """acme-hq measured all week; acme-branch an hour of it."""
    week = minutes(WEEK_START, WEEK_START + timedelta(days=7), timedelta(minutes=10))
    hour = week[300:306]
    return samples("acme-hq", week, Outcome.UP) + samples("acme-branch", hour, Outcome.UP)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


async def test_the_desk_badges_filters_and_asks_for_a_note_on_flagged_rows(
    database: Database,
) -> None:
    async with running_portal(database, PORTAL_CONFIG, now=NOW, history=_history) as kit:
        await refresh_ledger(kit.db, kit.config, [WEEK], NOW)
        rows = {r.contract_id: r for r in await ledger.list_rows(kit.db)}
        flagged, measured = rows["acme-silver"], rows["acme-gold"]
        assert (flagged.needs_review, measured.needs_review) == (True, False)

        # The customer sees why that credit waits.
        await kit.sign_in("alice")
        credits = _text(await kit.page("/credits"))
        # Coverage is a share: 0.7936 % as the ledger keeps it, read to two decimals.
        assert flagged.coverage_pct == Decimal("0.7936")
        assert (
            "Under review: this window was measured for 0.79 % of its time, so billing "
            "checks it before the credit is final"
        ) in credits
        await kit.sign_out()

        token = await kit.sign_in("bill")
        desk = await kit.page(f"/billing?window={WEEK}")
        line = _text(desk.split(f'<a href="/billing/ledger/{flagged.id}">')[1].split("</tr>")[0])
        assert "closed needs review" in line
        only = await kit.page(f"/billing?window={WEEK}&review=flagged")
        assert f"/billing/ledger/{flagged.id}" in only
        assert f"/billing/ledger/{measured.id}" not in only

        confirm = await kit.page(f"/billing/confirm?action=approve&id={flagged.id}")
        assert "This row needs review : measured for little of the window" in _text(confirm)
        assert '<textarea id="note" name="note" required' in confirm
        form = {"csrf_token": token, "id": str(flagged.id)}
        refused = await kit.client.post("/billing/approve", data=form, allow_redirects=False)
        assert refused.status == 400
        assert "Write what you checked before approving rows flagged for review" in _text(
            await refused.text()
        )
        assert (await ledger.list_rows(kit.db, window=WEEK))[0].status == "closed"

        note = "branch probe was misconfigured; no outage reported"
        done = await kit.client.post(
            "/billing/approve", data={**form, "note": note}, allow_redirects=False
        )
        assert done.status == 303
        row_page = _text(await kit.page(f"/billing/ledger/{flagged.id}"))
        assert f"Approval note {note}" in row_page
        assert "Withheld credit 90.00" in row_page
        exported = await kit.page(f"/billing/export.csv?window={WEEK}&review=flagged")
        (line_csv,) = csv.DictReader(io.StringIO(exported))
        assert (line_csv["contract"], line_csv["approval_note"]) == ("acme-silver", note)
