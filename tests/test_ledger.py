"""The credit ledger: rows follow the data while open or closed, settled rows never
change (late data becomes an adjustment), transitions only go forward, every step is
audited, and the database itself refuses to alter a settled row.

The command-line tests drive Linkwatch as billing staff would (import, report, refresh,
approve, apply, export); the others call `sla.ledger` on the shared embedded database
with a fixed clock.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from psycopg.rows import tuple_row

from collector import Database, write_samples
from collector.deriver import StateDeriver
from collector.embedded import EmbeddedPostgres
from kernel.config import Config, load_config, parse_config
from kernel.domain import Outcome, Sample
from kernel.errors import DatabaseError
from linkwatch.daemon import open_database
from sla.ledger import (
    LEDGER_FIELDS,
    LedgerError,
    LedgerRow,
    apply,
    approve,
    audit_log,
    export_fields,
    list_rows,
    refresh_ledger,
)
from sla.records import FIELDS
from tests.helpers import (
    FAST_HASHER,
    browser,
    free_port,
    linkwatch,
    login,
    start_linkwatch,
    stopped_after,
    wait_for,
)
from tests.notify_kit import SECRET, webhook_receiver

# 2026-W40 runs from Monday 2026-09-28 00:00 Berlin (summer time, UTC+2).
WEEK = "2026-W40"
WEEK_START = datetime(2026, 9, 27, 22, 0, tzinfo=UTC)
WEEK_END = WEEK_START + timedelta(days=7)
GRACE = timedelta(days=2)
OUTAGE = (WEEK_START + timedelta(days=2, hours=3), WEEK_START + timedelta(days=2, hours=4))
# No samples here at first (unknown time, left out of the availability); the late data
# that fills them says the link was down.
GAP = (WEEK_START + timedelta(days=4, hours=10), WEEK_START + timedelta(days=4, hours=12))
GAP_2 = (WEEK_START + timedelta(days=5, hours=10), WEEK_START + timedelta(days=5, hours=11))
PASSWORD_HASH = FAST_HASHER.hash("billing-password")
# The billing export's columns as first released, which positional readers rely on.
FIRST_EXPORT = [
    "contract", "customer", "link", "window", "window_start", "window_end", "window_s",
    "excluded_s", "unknown_s", "down_s", "eligible_s", "coverage_pct", "availability_pct",
    "target_pct", "met", "budget_s", "budget_used_pct", "incidents", "credit_steps",
    "credit_pct", "credit_amount", "currency", "status", "budget_remaining_s", "burn_rate",
    "budget_warning_pct", "objectives_met", "id", "kind", "parent", "amount", "reason",
    "invoice_ref", "approved_by", "approved_at", "applied_by", "applied_at",
]  # fmt: skip


def _config_text(data_dir: Path | str) -> str:
    return f"""\
data_dir: {data_dir}
customers:
  - {{id: acme, name: ACME Corp, timezone: Europe/Berlin}}
links:
  - {{id: acme-hq, customer: acme, probes: [{{id: icmp, kind: icmp, host: 127.0.0.1,
      interval: 1m}}]}}
plans:
  - {{id: gold, target: 99.5, window: week, currency: EUR,
      credit: {{step: 0.5, per_step: 5, cap: 50}}}}
contracts:
  - {{id: acme-gold, customer: acme, links: [acme-hq], plan: gold, fee: "250.00"}}
users:
  - {{name: betty, role: billing, password_hash: "{PASSWORD_HASH}"}}
  - {{name: oscar, role: ops, password_hash: "{PASSWORD_HASH}"}}
"""


def _minutes(start: datetime, end: datetime) -> Iterable[datetime]:
    moment = start
    while moment < end:
        yield moment
        moment += timedelta(minutes=1)


def _week_samples() -> list[Sample]:
    """A sample a minute over the week: down for an hour, nothing during the gaps."""
    samples = []
    for moment in _minutes(WEEK_START, WEEK_END):
        if GAP[0] <= moment < GAP[1] or GAP_2[0] <= moment < GAP_2[1]:
            continue
        down = OUTAGE[0] <= moment < OUTAGE[1]
        samples.append(Sample("acme-hq", "icmp", moment, Outcome.DOWN if down else Outcome.UP))
    return samples


def _down(span: tuple[datetime, datetime]) -> list[Sample]:
    return [Sample("acme-hq", "icmp", m, Outcome.DOWN) for m in _minutes(*span)]


def _csv(samples: Sequence[Sample]) -> str:
    lines = ["time,link,probe,outcome,rtt_ms,loss_pct"]
    for s in samples:
        up = s.outcome is Outcome.UP
        lines.append(
            f"{s.observed_at.isoformat()},acme-hq,icmp,{s.outcome.value},"
            f"{'4.2' if up else ''},{'0' if up else '100'}"
        )
    return "\n".join(lines) + "\n"


def _run(*args: str) -> str:
    result = linkwatch(*args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _data_dir(base: Path) -> Path:
    directory = Path(tempfile.mkdtemp(dir=base))
    directory.chmod(0o711)  # the embedded server may run as another user
    return directory


async def _ledger_table(config: Config, row_id: int) -> tuple[Any, ...]:
    """The row exactly as the database holds it, every column."""
    db = await open_database(config)
    try:
        async with db.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute("SELECT ledger::text FROM ledger WHERE id = %s", [row_id])
            row = await cur.fetchone()
            assert row is not None
            return row
    finally:
        await db.close()


async def _audit(config: Config) -> list[tuple[Any, ...]]:
    db = await open_database(config)
    try:
        return [
            (e.ledger_id, e.actor, e.action, e.from_status, e.to_status, e.at, e.detail)
            for e in await audit_log(db)
        ]
    finally:
        await db.close()


# --- the billing flow, end to end ----------------------------------------------------------


def test_import_report_refresh_approve_apply_export_then_late_data_adjusts(
    pg_base_dir: Path,
) -> None:
    directory = _data_dir(pg_base_dir)
    config_path = directory / "linkwatch.yaml"
    config_path.write_text(_config_text(directory))
    config = load_config(config_path)
    c = ["--config", str(config_path)]
    week = directory / "week.csv"
    week.write_text(_csv(_week_samples()))
    started = datetime.now(UTC)

    # The import computes the window's row; the week and its grace are long past.
    _run("import", "samples", *c, str(week))
    (report,) = json.loads(_run("report", "sla", *c, "--window", WEEK, "--format", "json"))
    assert (report["availability_pct"], report["credit_amount"], report["status"]) == (
        "99.3941",  # 3,600 s down of 594,240 s known (the two gaps are unknown)
        "12.50",  # 1 step of 5 % of 250.00
        "closed",
    )
    assert "1 unchanged" in _run("credits", "refresh", *c, "--window", WEEK)
    listing = _run("credits", "list", *c, "--window", WEEK)
    match = re.search(r"^(\d+)\s+window\s+acme-gold\s+acme-hq\s+2026-W40\s+99\.3941\s+12\.50"
                      r"\s+12\.50\s+EUR\s+closed\s+system", listing, flags=re.M)  # fmt: skip
    assert match, listing
    row_id = match.group(1)
    # Refreshing everything since the first sample adds the later (empty) weeks and
    # changes nothing already there.
    refreshed = _run("credits", "refresh", *c)
    assert "0 recomputed, 0 closed, 2 unchanged, 0 adjustments" in refreshed

    assert _run("credits", "approve", *c, "--id", row_id, "--user", "betty") == (
        f"approved #{row_id} acme-gold acme-hq 2026-W40: 12.50 EUR\n"
    )
    (report,) = json.loads(_run("report", "sla", *c, "--window", WEEK, "--format", "json"))
    assert report["status"] == "approved"  # the ledger's status; the figures as before
    approved_export = _rows(_run("credits", "export", *c, "--window", WEEK))
    assert [r["status"] for r in approved_export] == ["approved"]

    out = _run(
        "credits", "apply", *c, "--id", row_id, "--user", "betty", "--invoice", "INV-2026-1042"
    )
    assert out == f"applied #{row_id} acme-gold acme-hq 2026-W40: 12.50 EUR to INV-2026-1042\n"
    export_file = directory / "applied.csv"
    _run("credits", "export", *c, "--status", "applied", "--output", str(export_file))
    text = export_file.read_text()
    (line,) = _rows(text)
    header = text.splitlines()[0].split(",")
    assert header == list(export_fields())
    # Billing systems read the first release's columns by position: they stay first.
    assert header[: len(FIRST_EXPORT)] == FIRST_EXPORT
    assert header[len(FIRST_EXPORT) :] == [
        "needs_review", "review_reason", "withheld_credit_amount",
        "approval_note", "approved_at_utc", "applied_at_utc", "timezone",
        "restore_pct", "restores_over", "restores_continuing", "outside_hours_s",
        "customer_caused_s",
        "credit_before_annual_cap", "annual_cap_amount", "annual_cap_remaining",
        "quality_down_s", "objectives",
    ]  # fmt: skip
    assert set(header) == {*FIELDS, *LEDGER_FIELDS}
    report_csv = _rows(_run("report", "sla", *c, "--window", WEEK, "--format", "csv"))[0]
    assert {k: line[k] for k in FIELDS} == report_csv  # the same figures, the same formats
    assert line["status"] == "applied"
    assert (line["id"], line["kind"], line["parent"], line["amount"]) == (
        row_id,
        "window",
        "",
        "12.50",
    )
    assert (line["invoice_ref"], line["approved_by"], line["applied_by"], line["reason"]) == (
        "INV-2026-1042",
        "betty",
        "betty",
        "",
    )
    assert line["window_start"] == "2026-09-28T00:00:00+02:00"
    assert line["timezone"] == "Europe/Berlin"
    for when in ("approved_at", "applied_at"):
        moment = datetime.fromisoformat(line[when])
        assert moment.utcoffset() == timedelta(hours=1)  # Berlin in winter
        assert started <= moment <= datetime.now(UTC)
        # The same instant with one offset for every row, whatever the customer's zone.
        in_utc = datetime.fromisoformat(line[f"{when}_utc"])
        assert (in_utc, in_utc.utcoffset()) == (moment, timedelta(0))
    settled = asyncio.run(_ledger_table(config, int(row_id)))

    # Late data: the link was down during the first gap. The applied row stays as it was;
    # an adjustment carries the difference, the new figures and the reason.
    late = directory / "late.csv"
    late.write_text(_csv(_down(GAP)))
    out = _run("import", "samples", *c, str(late))
    match = re.search(r"adjustment row\(s\) to review and approve: --id (\d+)$", out, re.M)
    assert match, out
    adjustment_id = match.group(1)
    assert asyncio.run(_ledger_table(config, int(row_id))) == settled  # byte for byte
    assert _run("credits", "export", *c, "--status", "applied") == text
    (report,) = json.loads(_run("report", "sla", *c, "--window", WEEK, "--format", "json"))
    assert (report["availability_pct"], report["credit_amount"], report["status"]) == (
        "98.2039",  # 10,800 s down of 601,320 s known: 3 steps
        "37.50",
        "applied",  # the window row's status; its figures are the ledger's adjustment's
    )
    rows = _rows(_run("credits", "export", *c, "--status", "approved")) + _rows(
        _run("credits", "export", *c, "--status", "applied")
    )
    assert len(rows) == 1  # the adjustment waits for its own approval
    listing = _run("credits", "list", *c, "--status", "closed")
    assert f"adj. of #{row_id}" in listing
    _run("credits", "approve", *c, "--id", adjustment_id, "--user", "betty")
    (adjustment,) = _rows(_run("credits", "export", *c, "--status", "approved"))
    assert (adjustment["kind"], adjustment["parent"]) == ("adjustment", row_id)
    assert adjustment["availability_pct"] == report["availability_pct"]
    assert adjustment["credit_amount"] == report["credit_amount"]
    assert adjustment["amount"] == "25.00"  # 37.50 now, 12.50 already applied
    assert (adjustment["status"], adjustment["approved_by"], adjustment["invoice_ref"]) == (
        "approved",
        "betty",
        "",
    )
    assert adjustment["reason"] == (
        "late data changed availability from 99.3941 % to 98.2039 %; credit 12.50 -> 37.50 EUR"
    )

    audit = [a for a in asyncio.run(_audit(config)) if a[0] in (int(row_id), int(adjustment_id))]
    steps = [(a[0], a[1], a[2], a[3], a[4]) for a in audit]
    assert steps == [
        (int(row_id), "system", "created", None, "closed"),
        (int(row_id), "betty", "approved", "closed", "approved"),
        (int(row_id), "betty", "applied", "approved", "applied"),
        (int(adjustment_id), "system", "adjusted", None, "closed"),
        (int(adjustment_id), "betty", "approved", "closed", "approved"),
    ]
    assert all(started <= a[5] <= datetime.now(UTC) for a in audit)
    assert audit[2][6] == "applied 12.50 EUR to invoice INV-2026-1042"
    assert f"adjustment of #{row_id} (applied)" in audit[3][6]


def test_illegal_transitions_are_refused_with_exit_code_2_and_change_nothing(
    pg_base_dir: Path,
) -> None:
    directory = _data_dir(pg_base_dir)
    config_path = directory / "linkwatch.yaml"
    config_path.write_text(_config_text(directory))
    config = load_config(config_path)
    c = ["--config", str(config_path)]
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    samples = directory / "samples.csv"
    # The past week (closed) and the last ten minutes (the running week: open).
    recent = [
        Sample("acme-hq", "icmp", m, Outcome.UP) for m in _minutes(now - timedelta(minutes=10), now)
    ]
    samples.write_text(_csv([*_week_samples(), *recent]))
    _run("import", "samples", *c, str(samples))
    listing = _run("credits", "list", *c)
    # The import touched every window from the old week to now: one row each, open while
    # its week runs or its two days of grace last, closed after.
    rows = re.findall(r"^(\d+)\s+window\s+\S+\s+\S+\s+(\S+)\s.*\s(open|closed)\s", listing, re.M)

    def expected(label: str) -> str:
        monday = datetime.strptime(f"{label}-1", "%G-W%V-%u")
        grace_end = monday.replace(tzinfo=ZoneInfo("Europe/Berlin")) + timedelta(days=7 + 2)
        return "open" if grace_end > now else "closed"

    assert [status for _, _, status in rows] == [expected(label) for _, label, _ in rows], listing
    assert rows[-1][2] == "open"
    open_id = rows[-1][0]
    (closed_id,) = [row_id for row_id, label, _ in rows if label == WEEK]
    before = asyncio.run(_audit(config))

    def refused(args: list[str], message: str) -> None:
        result = linkwatch("credits", *args)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr

    refused(
        ["approve", *c, "--id", open_id, "--user", "betty"],
        f"linkwatch: nothing was approved:\n  #{open_id} acme-gold acme-hq",
    )
    refused(
        ["approve", *c, "--id", open_id, "--user", "betty"],
        "is open (its window is still running); only closed rows can be approved",
    )
    refused(
        ["apply", *c, "--id", closed_id, "--user", "betty", "--invoice", "INV-1"],
        f"#{closed_id} acme-gold acme-hq 2026-W40 is closed; approve it before applying it",
    )
    # All or nothing: the closed row is not approved alongside the open one.
    refused(
        ["approve", *c, "--id", closed_id, "--id", open_id, "--id", "999", "--user", "betty"],
        "there is no ledger row 999",
    )
    refused(
        ["approve", *c, "--id", closed_id, "--user", "oscar"],
        "--user 'oscar' is not an enabled billing or admin user; allowed: betty",
    )
    assert asyncio.run(_audit(config)) == before
    assert _run("credits", "list", *c, "--status", "approved").count("\n") == 1  # header only

    _run("credits", "approve", *c, "--id", closed_id, "--user", "betty")
    refused(
        ["approve", *c, "--id", closed_id, "--user", "betty"],
        f"#{closed_id} acme-gold acme-hq 2026-W40 is already approved (approved by betty at",
    )
    _run("credits", "apply", *c, "--id", closed_id, "--user", "betty", "--invoice", "INV-1")
    refused(
        ["apply", *c, "--id", closed_id, "--user", "betty", "--invoice", "INV-2"],
        "is already applied (invoice INV-1, by betty at",
    )
    assert len(asyncio.run(_audit(config))) == len(before) + 2
    refused(["list", *c, "--window", "2026-W60"], "--window '2026-W60': 2026 has no ISO week 60")


# --- the ledger module on the shared database, with a fixed clock -------------------------


CONFIG = parse_config(_config_text("/nonexistent"))
CLOSED_AT = WEEK_END + GRACE


async def _store(db: Database, samples: Sequence[Sample]) -> None:
    await write_samples(db, samples)
    await StateDeriver(db, CONFIG.links).samples_stored(samples)


async def _window_row(db: Database) -> LedgerRow:
    (row,) = [r for r in await list_rows(db, window=WEEK) if r.kind == "window"]
    return row


async def test_rows_are_open_until_the_grace_has_passed_then_closed(database: Database) -> None:
    await _store(database, _week_samples()[: 3 * 24 * 60])
    midweek = WEEK_START + timedelta(days=3)
    await refresh_ledger(database, CONFIG, [WEEK], midweek)
    row = await _window_row(database)
    assert (row.status, row.measured_until, row.window_end) == ("open", midweek, WEEK_END)
    with pytest.raises(LedgerError, match="is open \\(its window is still running\\)"):
        await approve(database, [row.id], "betty", midweek)

    await _store(database, _week_samples()[3 * 24 * 60 :])
    result = await refresh_ledger(database, CONFIG, [WEEK], CLOSED_AT - timedelta(seconds=1))
    assert (result.recomputed, result.closed) == (1, 0)
    in_grace = "late data may still come until 2026-10-07T00:00:00\\+02:00"
    with pytest.raises(LedgerError, match=in_grace):
        await approve(database, [row.id], "betty", CLOSED_AT - timedelta(seconds=1))
    # Housekeeping asks only for recent windows; an overdue open row is closed anyway.
    result = await refresh_ledger(database, CONFIG, [], CLOSED_AT)
    assert (result.windows, result.closed) == ((WEEK,), 1)
    row = await _window_row(database)
    assert (row.status, row.availability_pct, row.credit_amount) == (
        "closed",
        Decimal("99.3941"),
        Decimal("12.50"),
    )
    audit = await audit_log(database, [row.id])
    assert [(a.actor, a.action, a.from_status, a.to_status, a.at) for a in audit] == [
        ("system", "created", None, "open", midweek),
        ("system", "closed", "open", "closed", CLOSED_AT),
    ]


async def test_adjustments_carry_the_difference_and_are_recomputed_until_approved(
    database: Database,
) -> None:
    later = CLOSED_AT + timedelta(days=1)
    await _store(database, _week_samples())
    await refresh_ledger(database, CONFIG, [WEEK], later)
    (row,) = await approve(database, [(await _window_row(database)).id], "betty", later)

    await _store(database, _down(GAP))
    result = await refresh_ledger(database, CONFIG, [WEEK], later)
    assert await _window_row(database) == row  # settled: untouched
    (adjustment,) = [r for r in await list_rows(database, window=WEEK) if r.kind == "adjustment"]
    assert result.adjustments == (adjustment.id,)
    assert (adjustment.parent_id, adjustment.status, adjustment.created_by) == (
        row.id,
        "closed",
        "system",
    )
    assert adjustment.amount == adjustment.credit_amount - row.credit_amount > 0

    # More late data before the adjustment is approved: it is recomputed in place.
    await _store(database, _down(GAP_2))
    result = await refresh_ledger(database, CONFIG, [WEEK], later)
    rows = await list_rows(database, window=WEEK)
    (again,) = [r for r in rows if r.kind == "adjustment"]
    assert again.id == adjustment.id
    assert again.credit_amount > adjustment.credit_amount
    assert again.amount == again.credit_amount - row.credit_amount
    assert again.reason is not None
    assert again.reason.startswith("late data changed availability from 99.3941 % to ")

    # Once approved, a further change would be a new adjustment against both.
    await approve(database, [again.id], "betty", later)
    await refresh_ledger(database, CONFIG, [WEEK], later)
    assert len(await list_rows(database, window=WEEK)) == 2
    actions = [(a.ledger_id, a.action) for a in await audit_log(database)]
    assert actions == [
        (row.id, "created"),
        (row.id, "approved"),
        (adjustment.id, "adjusted"),
        (adjustment.id, "adjusted"),
        (adjustment.id, "approved"),
    ]


async def test_the_database_refuses_to_change_a_settled_row(database: Database) -> None:
    later = CLOSED_AT + timedelta(days=1)
    await _store(database, _week_samples())
    await refresh_ledger(database, CONFIG, [WEEK], later)
    (row,) = await approve(database, [(await _window_row(database)).id], "betty", later)

    refused = [
        ("UPDATE ledger SET amount = 0, credit_amount = 0 WHERE id = %s", "figures never change"),
        ("UPDATE ledger SET credit_amount = 12.5 WHERE id = %s", "figures never change"),
        ("UPDATE ledger SET approved_by = 'mallory' WHERE id = %s", "figures never change"),
        ("UPDATE ledger SET status = 'closed' WHERE id = %s", "cannot become closed"),
        ("UPDATE ledger SET status = 'applied' WHERE id = %s", "ledger_check"),
        ("DELETE FROM ledger WHERE id = %s", "cannot be deleted"),
        ("UPDATE ledger_audit SET actor = 'mallory' WHERE ledger_id = %s", "append-only"),
        ("DELETE FROM ledger_audit WHERE ledger_id = %s", "append-only"),
    ]
    for statement, message in refused:
        with pytest.raises(DatabaseError, match=message):
            async with database.connection() as conn:
                await conn.execute(statement, [row.id])
    assert await _window_row(database) == row
    assert len(await audit_log(database)) == 2


async def test_concurrent_refreshes_and_an_approval_lose_nothing(database: Database) -> None:
    later = CLOSED_AT + timedelta(days=1)
    await _store(database, _week_samples())
    await asyncio.gather(*(refresh_ledger(database, CONFIG, [WEEK], later) for _ in range(3)))
    row = await _window_row(database)
    assert [a.action for a in await audit_log(database)] == ["created"]

    # Late data races the approval: whichever comes first, what is credited in the end
    # (the settled row plus its adjustments) is the credit of the new data.
    await _store(database, _down(GAP))
    await asyncio.gather(
        refresh_ledger(database, CONFIG, [WEEK], later),
        approve(database, [row.id], "betty", later),
        refresh_ledger(database, CONFIG, [WEEK], later),
    )
    rows = await list_rows(database, window=WEEK)
    window = await _window_row(database)
    assert window.status == "approved"
    adjustments = [r for r in rows if r.kind == "adjustment"]
    assert len(adjustments) <= 1
    newest = adjustments[0] if adjustments else window
    assert window.amount + sum(a.amount for a in adjustments) == newest.credit_amount
    assert newest.credit_amount > row.credit_amount


async def test_apply_needs_an_invoice_and_a_person(database: Database) -> None:
    later = CLOSED_AT + timedelta(days=1)
    await _store(database, _week_samples())
    await refresh_ledger(database, CONFIG, [WEEK], later)
    row = await _window_row(database)
    with pytest.raises(LedgerError, match="'system' cannot approve credits"):
        await approve(database, [row.id], "system", later)
    await approve(database, [row.id], "betty", later)
    with pytest.raises(LedgerError, match="give the invoice reference"):
        await apply(database, [row.id], "betty", "  ", later)
    (applied,) = await apply(database, [row.id], "betty", "INV-7", later)
    assert (applied.status, applied.invoice_ref, applied.applied_by, applied.applied_at) == (
        "applied",
        "INV-7",
        "betty",
        later,
    )


async def test_a_manual_adjustment_needs_a_reason_awaits_approval_and_survives_refreshes(
    database: Database,
) -> None:
    from sla.ledger import adjust, is_manual

    later = CLOSED_AT + timedelta(days=1)
    await _store(database, _week_samples())
    await refresh_ledger(database, CONFIG, [WEEK], later)
    row = await _window_row(database)
    with pytest.raises(LedgerError, match="is closed: its credit still follows the data"):
        await adjust(database, row.id, Decimal("5.00"), "goodwill", "betty", later)
    (row,) = await approve(database, [row.id], "betty", later)

    refusals = [
        (Decimal("5.00"), "  ", "betty", "give the reason"),
        (Decimal("5.00"), "goodwill", "system", "'system' cannot adjust credits"),
        (Decimal("0"), "goodwill", "betty", "not 0"),
        (Decimal("5.005"), "goodwill", "betty", "use at most 2 decimal places"),
        (Decimal("-12.51"), "goodwill", "betty", "can take back at most that much"),
    ]
    for amount, reason, actor, message in refusals:
        with pytest.raises(LedgerError, match=message):
            await adjust(database, row.id, amount, reason, actor, later)
    with pytest.raises(LedgerError, match="there is no ledger row 999999"):
        await adjust(database, 999_999, Decimal("1.00"), "goodwill", "betty", later)

    made = await adjust(database, row.id, Decimal("-2.50"), " fibre cut  was ours ", "betty", later)
    assert is_manual(made)
    assert (made.kind, made.parent_id, made.status, made.amount, made.reason) == (
        "adjustment",
        row.id,
        "closed",
        Decimal("-2.50"),
        "fibre cut was ours",
    )
    assert (made.created_by, made.credit_amount, made.availability_pct) == (
        "betty",
        row.credit_amount,
        row.availability_pct,
    )
    (entry,) = await audit_log(database, [made.id])
    assert (entry.actor, entry.action, entry.to_status) == ("betty", "adjusted", "closed")
    assert (
        entry.detail == f"manual adjustment of #{row.id} (approved): -2.50 EUR; fibre cut was ours"
    )
    with pytest.raises(LedgerError, match="already has an adjustment awaiting approval"):
        await adjust(database, row.id, Decimal("1.00"), "more", "betty", later)
    with pytest.raises(LedgerError, match="is an adjustment; adjust the window row"):
        await adjust(database, made.id, Decimal("1.00"), "more", "betty", later)

    # Late data while the manual adjustment waits: the computed one waits its turn (the
    # ledger keeps one unsettled adjustment per row), and the manual one stays as written.
    await _store(database, _down(GAP))
    await refresh_ledger(database, CONFIG, [WEEK], later)
    assert [r for r in await list_rows(database, window=WEEK) if r.kind == "adjustment"] == [made]
    await approve(database, [made.id], "betty", later)
    await refresh_ledger(database, CONFIG, [WEEK], later)
    computed = [
        r
        for r in await list_rows(database, window=WEEK)
        if r.kind == "adjustment" and r.id != made.id
    ]
    (late,) = computed
    assert late.created_by == "system"
    # The computed difference ignores the manual -2.50: 37.50 now, 12.50 computed before.
    assert (late.credit_amount, late.amount) == (Decimal("37.50"), Decimal("25.00"))
    await approve(database, [late.id], "betty", later)
    assert (await refresh_ledger(database, CONFIG, [WEEK], later)).adjustments == ()


async def test_an_adjustment_whose_difference_comes_back_to_zero_is_withdrawn_not_left_to_approve(
    database: Database,
) -> None:
    from collector import upsert_maintenance
    from kernel.domain import MaintenanceWindow
    from sla.ledger import to_table

    later = CLOSED_AT + timedelta(days=1)
    await _store(database, _week_samples())
    await refresh_ledger(database, CONFIG, [WEEK], later)
    (row,) = await approve(database, [(await _window_row(database)).id], "betty", later)
    await _store(database, _down(GAP))  # late data: down in the first gap
    await refresh_ledger(database, CONFIG, [WEEK], later)
    (pending,) = [r for r in await list_rows(database, window=WEEK) if r.kind == "adjustment"]
    assert (pending.status, pending.amount) == ("closed", Decimal("25.00"))

    # Then the customer's announcement of that work, sent a week ahead, is entered: the
    # down time is excluded, and the credit is what was settled. Nothing is left to
    # approve, and nothing may look as if it were.
    announced = MaintenanceWindow("mw-gap", GAP[0], GAP[1], GAP[0] - timedelta(days=7),
                                  link_ids=("acme-hq",))  # fmt: skip
    await upsert_maintenance(database, [announced], source="config")
    result = await refresh_ledger(database, CONFIG, [WEEK], later)
    assert (result.withdrawn, result.adjustments) == ((pending.id,), ())
    assert f"1 withdrawn (#{pending.id})" in result.summary()
    (withdrawn,) = [r for r in await list_rows(database, window=WEEK) if r.kind == "adjustment"]
    assert (withdrawn.id, withdrawn.status, withdrawn.amount) == (
        pending.id,
        "withdrawn",
        Decimal("0.00"),
    )
    assert withdrawn.reason == (
        "withdrawn: the credit is back to 12.50 EUR, what was already settled (this "
        "adjustment was +25.00 EUR)"
    )
    assert await list_rows(database, status="closed") == []  # nothing awaits approval
    with pytest.raises(LedgerError, match=r"is withdrawn \(.*\); there is nothing to approve"):
        await approve(database, [withdrawn.id], "betty", later)
    (entry,) = [a for a in await audit_log(database, [pending.id]) if a.action == "withdrawn"]
    assert (entry.actor, entry.from_status, entry.to_status) == ("system", "closed", "withdrawn")
    assert f"{withdrawn.id}  adj. of #{row.id}" in to_table([withdrawn]).replace("   ", "  ")
    # Refreshing again changes nothing; a later change of the credit is a new adjustment.
    assert (await refresh_ledger(database, CONFIG, [WEEK], later)).withdrawn == ()
    await _store(database, _down(GAP_2))
    result = await refresh_ledger(database, CONFIG, [WEEK], later)
    (fresh,) = result.adjustments
    assert fresh != withdrawn.id
    assert [r.status for r in await list_rows(database, window=WEEK)] == [
        "approved",
        "withdrawn",
        "closed",
    ]


# --- rows for the past ------------------------------------------------------------------


async def test_history_gets_a_row_for_every_window_since_monitoring_began_resumably(
    database: Database,
) -> None:
    from sla.backfill import Backfill

    # Ten weeks of history stored before the ledger ever ran (an upgrade, the demo): a
    # sample every half hour from Wednesday of 2026-W32 to Saturday of 2026-W41.
    first = datetime(2026, 8, 5, 12, 0, tzinfo=UTC)
    now = datetime(2026, 10, 10, 12, 0, tzinfo=UTC)
    await _store(database, [Sample("acme-hq", "icmp", m, Outcome.UP) for m in
                            _minutes(first, now)][::30])  # fmt: skip
    expected = [f"2026-W{week}" for week in range(32, 42)]

    # A run stopped after a few steps (a restart) leaves some windows done ...
    stopped = Backfill(database, CONFIG, slice_contracts=1)
    for _ in range(4):
        assert await stopped.step(now)
    done = sorted(r.window_label for r in await list_rows(database))
    assert 0 < len(done) < len(expected)
    assert done == expected[: len(done)]  # oldest first

    # ... and the next run does the rest, once each, and none before the first sample.
    resumed = Backfill(database, CONFIG)
    assert await resumed.run(now) == len(expected) - len(done)
    rows = await list_rows(database)
    assert [r.window_label for r in rows] == expected
    assert [r.status for r in rows] == ["closed"] * 9 + ["open"]  # W41 runs until Monday
    assert await Backfill(database, CONFIG).run(now) == 0  # nothing left: nothing written
    assert [a.action for a in await audit_log(database)] == ["created"] * len(expected)


async def test_open_rows_of_a_contract_no_longer_configured_are_reported(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    from sla.ledger import warn_of_orphans

    await _store(database, _week_samples()[: 3 * 24 * 60])
    await refresh_ledger(database, CONFIG, [WEEK], WEEK_START + timedelta(days=3))  # open
    assert await warn_of_orphans(database, CONFIG) == 0
    renamed = parse_config(_config_text("/nonexistent").replace("acme-gold", "acme-gold-2"))
    assert await warn_of_orphans(database, renamed) == 1
    assert (
        "open rows of contracts or links no longer configured count=1 first=acme-gold/acme-hq"
        in (caplog.text)
    )


class _Flaky:
    """The real database, away for some calls: as when it restarts mid-backfill."""

    def __init__(self, db: Database, away: set[int]) -> None:
        self.db, self.away, self.calls = db, away, 0

    def connection(self) -> Any:
        self.calls += 1
        if self.calls in self.away:
            raise DatabaseError("database away")
        return self.db.connection()


async def test_a_backfill_step_that_fails_is_done_again_not_skipped(database: Database) -> None:
    from sla.backfill import Backfill

    first = datetime(2026, 8, 5, 12, 0, tzinfo=UTC)
    now = datetime(2026, 10, 10, 12, 0, tzinfo=UTC)
    await _store(database, [Sample("acme-hq", "icmp", m, Outcome.UP) for m in
                            _minutes(first, now)][::30])  # fmt: skip
    flaky = _Flaky(database, away=set(range(3, 60, 4)))
    backfill = Backfill(flaky, CONFIG)  # type: ignore[arg-type]
    failures = 0
    while True:
        try:
            if not await backfill.step(now):
                break
        except DatabaseError:
            failures += 1  # the daemon logs it and calls again a period later
    assert failures > 5
    labels = [r.window_label for r in await list_rows(database)]
    assert labels == [f"2026-W{week}" for week in range(32, 42)]


# --- how far behind the ledger may be --------------------------------------------------------


async def test_after_an_outage_the_noc_and_the_ledger_agree_with_the_budget_message_within_a_period(
    database: Database, embedded_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    """A link down from the start against a 99.999 % week (6 s of budget): the budget
    message at 100 % goes out, and the running window's ledger row says the same within
    one evaluation period, the NOC's budget panel within the period its cache may add."""
    period = timedelta(seconds=3)
    port, closed = free_port(), free_port()  # nothing listens on `closed`: refused
    config_path = tmp_path / "linkwatch.yaml"
    async with webhook_receiver() as receiver:
        config_path.write_text(f"""\
database: {{url: "{embedded_postgres.url}"}}
data_dir: {tmp_path / "data"}
portal: {{listen: "127.0.0.1:{port}"}}
customers:
  - {{id: acme, name: ACME Corp, timezone: Europe/Berlin}}
links:
  - {{id: acme-hq, customer: acme, probes: [{{id: tcp, kind: tcp, host: 127.0.0.1,
      port: {closed}, interval: 1s, timeout: 500ms, confirm: 2}}]}}
contracts:
  - {{id: acme-gold, customer: acme, links: [acme-hq], target: 99.999, window: week,
      unknown: count_as_up, fee: "250.00", currency: EUR}}
notifications:
  hold_down: 0s
  retry_backoff: 200ms
  evaluate_every: {period.seconds}s
  channels:
    - {{id: ops, kind: webhook, url: "{receiver.url}/ops", secret: {SECRET}, timeout: 2s}}
  routes:
    - {{id: ops, channel: ops}}
users:
  - {{name: oscar, role: ops, password_hash: "{PASSWORD_HASH}"}}
""")  # fmt: skip
        log = tmp_path / "linkwatch.log"
        proc = start_linkwatch("run", "--config", str(config_path), log=log)
        with stopped_after(proc, log):

            def breached() -> list[dict[str, Any]]:
                return [
                    d.body
                    for d in receiver.accepted
                    if d.body["kind"] == "budget" and d.body["data"]["level"] == 100
                ]

            await asyncio.to_thread(wait_for, "the 100 % budget message", lambda: bool(breached()),
                                    90, proc, log)  # fmt: skip
            received = datetime.now(UTC)
            (message,) = breached()
            occurred = datetime.fromisoformat(message["occurred_at"])
            window = message["data"]["window"]

            async def ledger_row() -> LedgerRow:
                (row,) = [r for r in await list_rows(database, window=window)
                          if r.kind == "window"]  # fmt: skip
                return row

            # The ledger's row reaches the message's level by the first pass after it.
            row = await ledger_row()
            while row.extra_figures.get("budget_warning_pct") != 100:
                assert datetime.now(UTC) - received < period + timedelta(seconds=2), row
                await asyncio.sleep(0.1)
                row = await ledger_row()
            assert row.computed_at - occurred <= period + timedelta(seconds=1)
            assert row.budget_used_pct is not None
            assert row.budget_used_pct >= 100
            assert row.status == "open"

            # The NOC's panel shows it too, at most a period (its cache) later.
            base = f"http://127.0.0.1:{port}"
            async with browser() as session:
                await login(session, base, "oscar", "billing-password")
                while True:
                    async with session.get(f"{base}/noc") as response:
                        html = await response.text()
                    panel = html.split('id="watch-heading"')[1].split("</section>")[0]
                    if "acme-gold" in panel:
                        break
                    assert datetime.now(UTC) - received < 2 * period + timedelta(seconds=2), panel
                    await asyncio.sleep(0.2)
            assert 'pill pill-warn">1<' in panel
            assert "≥ 100&nbsp;% warning" in panel
            assert window in panel
    assert "Traceback" not in log.read_text()
