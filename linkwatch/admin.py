"""One-shot administrative commands that need the database: import, state rebuilds,
statistics, reports and the credit ledger. Each opens the database (starting the embedded
one if configured so), does its work and closes it again; nothing here runs probes or
serves pages. Commands that read or maintain what is stored never create a database:
where nothing has been stored they say so.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pwd
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from collector import Database, latest_sample_time
from collector.deriver import StateDeriver
from collector.importer import (
    ImportReport,
    RawLines,
    check_file,
    import_samples,
)
from collector.rebuild import rebuild_states
from collector.rollups import bucket_floor, refresh_rollups
from collector.state_reads import state_failures
from collector.stored import DeletedSamples
from collector.stored import delete_samples as stored_delete_samples
from kernel.config import Config
from kernel.domain import Outcome
from kernel.errors import LinkwatchError, NoDatabase
from kernel.formatting import count_of
from kernel.progress import Progress
from linkwatch.daemon import open_database, storage_settings

if TYPE_CHECKING:
    from portal.auth import Account, Accounts, Role
    from sla.ledger import LedgerRefresh, LedgerRow, LedgerStatus

log = logging.getLogger(__name__)

MAX_ERRORS_SHOWN = 100
UTC_ZONE = ZoneInfo("UTC")


# Where `import samples --replace` and `db delete-samples` record who replaced or deleted
# which stored samples, one JSON object a line, under data_dir.
IMPORT_AUDIT_FILE = "import-audit.log"


class ImportRejected(LinkwatchError):
    """A sample file had bad rows, or values that differ from stored samples (without
    --replace); nothing from it was stored."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    report: ImportReport
    ledger: LedgerRefresh | None  # None when the file held no samples
    audit_file: Path | None = None  # where the replacement was recorded, if any
    rebuilt: list[str] = field(default_factory=list)  # what re-deriving the states changed


async def import_file(
    config: Config,
    path: Path,
    *,
    replace: bool = False,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> ImportOutcome:
    now = now or datetime.now(UTC)
    progress = progress or Progress()
    with tempfile.TemporaryFile() as staged:
        lines = RawLines(path, progress)
        progress.stage("checking the file", _size(path), "bytes")
        await asyncio.to_thread(_check, path, lines, config, now, staged)
        audit = _ImportAudit(config.data_dir / IMPORT_AUDIT_FILE, path, lines.sha256, now)
        progress.stage("opening the database")
        async with await open_database(config) as db:
            try:
                report = await import_samples(
                    db,
                    staged,
                    config.links,
                    replace=replace,
                    record=audit.record,
                    progress=progress,
                )
            except LinkwatchError:
                raise
            except Exception as exc:
                # The transaction rolled back. What fails here past the file's checks is
                # the states of samples stored before it (a row an older version took).
                log.debug("import failed file=%s", path, exc_info=True)
                raise LinkwatchError(
                    f"{path}: storing the samples with their states failed "
                    f"({type(exc).__name__}: {exc}); nothing was imported. `linkwatch db "
                    "stats` names links whose stored samples cannot be derived"
                ) from None
            return await _after_import(db, config, path, report, audit, progress)


def _size(path: Path) -> int | None:
    """The file's size, where it has one (not a pipe); an unreadable file is named later."""
    try:
        return path.stat().st_size or None
    except OSError:
        return None


def _check(path: Path, lines: RawLines, config: Config, now: datetime, staged: IO[bytes]) -> None:
    """The file's first pass: every row checked and the good ones staged; a file with any
    bad row is rejected here, before a database is opened."""
    try:
        check = check_file(lines, config.links, config.collector.sample_times, now, staged)
    except OSError as exc:
        raise LinkwatchError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    if check.ok:
        return
    shown = [f"  {path}:{e.line}: {e.message}" for e in check.problems[:MAX_ERRORS_SHOWN]]
    more = check.problem_count - len(shown)
    if more:
        shown.append(f"  ... and {more} more")
    # Rows, not problems: one row may have several.
    problems = (
        ""
        if check.bad_rows == check.problem_count
        else f" ({count_of(check.problem_count, 'problem')})"
    )
    raise ImportRejected(
        f"{path}: {count_of(check.bad_rows, 'bad row')}{problems}; nothing was imported\n"
        + "\n".join(shown)
    )


async def _after_import(
    db: Database,
    config: Config,
    path: Path,
    report: ImportReport,
    audit: _ImportAudit,
    progress: Progress,
) -> ImportOutcome:
    if report.conflict_count:
        raise ImportRejected(_conflicts(path, report))
    if report.refused:
        raise ImportRejected(_refusal(path, report))
    # Rollups and credits follow the import, as they follow live samples.
    if report.probes:
        first = min(p.first for p in report.probes)
        last = max(p.last for p in report.probes)
        links = {p.link_id for p in report.probes}
        # The hour of the last sample included: buckets overlapping [start, end).
        end = last + timedelta(microseconds=1)
        progress.stage("rolling up")
        await refresh_rollups(db, bucket_floor(first, "hour"), end, link_ids=links)
    ledger = await _refresh_after_import(db, config, report, progress)
    rebuilt = report.rebuilt.lines() if report.rebuilt is not None else []
    return ImportOutcome(report, ledger, audit.path if report.replaced else None, rebuilt)


def _conflicts(path: Path, report: ImportReport) -> str:
    shown = [f"  {path}:{c.line}: {c.message}" for c in report.conflicts[:MAX_ERRORS_SHOWN]]
    if report.conflict_count > len(shown):
        shown.append(f"  ... and {report.conflict_count - len(shown)} more")
    return (
        f"{path}: {count_of(report.conflict_count, 'row')} "
        f"{'gives' if report.conflict_count == 1 else 'give'} a sample other values than an "
        "earlier row of the file; nothing was imported\n" + "\n".join(shown)
    )


def _refusal(path: Path, report: ImportReport) -> str:
    assert report.differing is not None
    shown = []
    for d in report.differing.shown[:MAX_ERRORS_SHOWN]:
        s = d.imported
        changes = "; ".join(
            f"{name} stored {_value(old)}, file {_value(new)}" for name, old, new in d.changes()
        )
        shown.append(
            f"  {path}:{d.line}: {s.link_id} {s.probe_id} at {_utc(s.observed_at)}: {changes}"
        )
    count = report.differing.count
    if count > len(shown):
        shown.append(f"  ... and {count - len(shown)} more")
    return (
        f"{path}: {count_of(count, 'row')} {'differs' if count == 1 else 'differ'} from the "
        "samples stored for the same link, probe and time; nothing was imported. To store "
        "the file's values instead, run again with --replace (each replacement is recorded "
        f"in data_dir/{IMPORT_AUDIT_FILE} with who, when and the file)\n" + "\n".join(shown)
    )


def _value(value: object) -> str:
    if value is None:
        return "empty"
    return str(value.value) if isinstance(value, Outcome) else repr(value)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class _ImportAudit:
    """The audit record of an import that replaces stored samples: one JSON line appended
    (and fsync'd) to `path` inside the import's transaction, before it commits. A record
    that cannot be written stops the import; a commit failing after it leaves a record of
    a replacement that did not happen, never a replacement without its record."""

    def __init__(self, path: Path, file: Path, sha256: str, now: datetime) -> None:
        self.path = path
        self._file = file
        self._sha256 = sha256
        self._now = now

    async def record(self, report: ImportReport) -> None:
        assert report.differing is not None
        differing = report.differing
        entry: dict[str, object] = {
            "at": _utc(self._now.replace(microsecond=0)),
            "action": "samples replaced",
            "user": _user(),
            "host": socket.gethostname(),
            "file": str(self._file.absolute()),
            "sha256": self._sha256,
            "replaced": report.replaced,
            "new": report.stored,
            "unchanged": report.unchanged,
            "links": list(differing.links),
            "from": _utc(differing.first),
            "to": _utc(differing.last),
        }
        await _audit(self.path, entry, "the replacement", "nothing was imported")
        log.warning(
            "stored samples replaced by=%s file=%s replaced=%d links=%s from=%s to=%s audit=%s",
            entry["user"],
            entry["file"],
            report.replaced,
            ",".join(differing.links),
            entry["from"],
            entry["to"],
            self.path,
        )


async def _audit(path: Path, entry: dict[str, object], what: str, so: str) -> None:
    """Append `entry` to the audit log at `path` (fsync'd), or stop the change saying so."""
    try:
        await asyncio.to_thread(_append_line, path, json.dumps(entry))
    except OSError as exc:
        raise LinkwatchError(
            f"{path}: cannot record {what} ({exc.strerror or exc}); {so}"
        ) from None


async def delete_samples(
    config: Config,
    link_id: str,
    probe_id: str | None,
    start: datetime,
    end: datetime | None,
    now: datetime,
) -> list[str]:
    """Delete a link's samples in [start, end) (end None: all from start on) of one probe
    or all, recorded in the audit log with who and when in the same transaction; then
    derive its states again and let rollups and credits follow, as an import does."""
    if end is not None and end <= start:
        raise BadArgument(f"--to {_utc(end)} is not after --from {_utc(start)}")
    link = next((link for link in config.links if link.id == link_id), None)
    if link is None:
        raise BadArgument(f"--link {link_id!r} is not a link in the config")
    if probe_id is not None and probe_id not in {p.id for p in link.probes}:
        known = ", ".join(p.id for p in link.probes)
        raise BadArgument(
            f"--probe {probe_id!r}: link {link_id} has no such probe; its probes: {known}"
        )
    path = config.data_dir / IMPORT_AUDIT_FILE

    async def record(deleted: Sequence[DeletedSamples]) -> None:
        entry: dict[str, object] = {
            "at": _utc(now.replace(microsecond=0)),
            "action": "samples deleted",
            "user": _user(),
            "host": socket.gethostname(),
            "link": link_id,
            "probes": [d.probe_id for d in deleted],
            "deleted": sum(d.count for d in deleted),
            "from": _utc(min(d.first for d in deleted)),
            "to": _utc(max(d.last for d in deleted)),
        }
        await _audit(path, entry, "the deletion", "nothing was deleted")

    async with await _stored_data(config) as db:
        probes = None if probe_id is None else [probe_id]
        deleted = await stored_delete_samples(db, link_id, probes, start, end, record)
        if not deleted:
            which = "" if probe_id is None else f" probe {probe_id}"
            until = "" if end is None else f" to {_utc(end)}"
            return [f"no samples of link {link_id}{which} from {_utc(start)}{until}"]
        lines = [
            f"deleted {count_of(d.count, 'sample')} of {link_id} probe {d.probe_id}"
            f" ({_utc(d.first)} to {_utc(d.last)})"
            for d in deleted
        ]
        lines.append(f"recorded in {path}")
        deriver = StateDeriver(db, config.links)
        await deriver.changed_from({(link_id, d.probe_id): d.first for d in deleted})
        first = min(d.first for d in deleted)
        if first <= now:
            # Rollups and credits over what was deleted up to now (none is stored later).
            last = min(max(d.last for d in deleted), now)
            end_ = last + timedelta(microseconds=1)
            await refresh_rollups(db, bucket_floor(first, "hour"), end_, link_ids=[link_id])
            await _refresh_ledger_over(db, config, first, last)
        failing = [f for f in await state_failures(db) if f.link_id == link_id]
        lines += [
            f"the states of {link_id} probe {f.probe_id} still cannot be derived: {f.error}"
            for f in failing
        ]
        return lines


def _user() -> str:
    """Who runs the command: the account of the process (and who used sudo for it)."""
    try:
        name = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        name = f"uid {os.geteuid()}"
    sudo = os.environ.get("SUDO_USER")
    return f"{name} (sudo by {sudo})" if sudo and sudo != name else name


def _append_line(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(line + "\n")
        out.flush()
        os.fsync(out.fileno())


async def _refresh_after_import(
    db: Database, config: Config, report: ImportReport, progress: Progress
) -> LedgerRefresh | None:
    """Open and closed credits follow the imported data; settled ones get adjustments."""
    if not report.probes:
        return None
    first = min(p.first for p in report.probes)
    last = max(p.last for p in report.probes)
    return await _refresh_ledger_over(db, config, first, last, progress)


async def _refresh_ledger_over(
    db: Database,
    config: Config,
    first: datetime,
    last: datetime,
    progress: Progress | None = None,
) -> LedgerRefresh:
    """Refresh the credits of every window that samples in [first, last] fall in."""
    from sla.ledger import refresh_ledger, samples_range

    labels = samples_range(config, first, last)
    return await refresh_ledger(db, config, labels, datetime.now(UTC), progress=progress)


class BadArgument(LinkwatchError):
    """A command-line value the user can fix."""

    exit_code = 2


class NoData(LinkwatchError):
    """A command that reports on stored data found none."""


async def _stored_data(config: Config, *, samples: bool = False) -> Database:
    """The database as stored, for commands that read (or maintain) what is there: where
    nothing has been stored they say so, rather than create an empty database and
    answer as if it were the truth. `samples`: there must be samples, too."""
    where = "data_dir" if config.database.url is None else "database.url"
    hint = (
        f"check {where} in the config; `linkwatch run` and `linkwatch import samples` "
        "store data there"
    )
    try:
        db = await open_database(config, create=False)
    except NoDatabase as exc:
        raise NoDatabase(f"{exc}; {hint}") from None
    if samples and await latest_sample_time(db) is None:
        await db.close()
        raise NoData(
            f"no samples are stored in database {db.name}, so there is nothing to report; {hint}"
        )
    return db


@dataclass(frozen=True, slots=True)
class SlaReport:
    records: list[dict[str, Any]]
    notes: list[str]  # contracts left out of the window, and why
    restores: list[str] = field(default_factory=list)  # outages restored late, in words
    schedules: dict[str, str] = field(default_factory=dict)  # contract -> its covered hours
    # contract -> the decimals of availability its terms for the window ask people to read
    decimals: dict[str, int] = field(default_factory=dict)


async def sla_report(
    config: Config, label: str, now: datetime, customer: str | None = None
) -> SlaReport:
    from sla.attributions import report_notes
    from sla.hours import schedules
    from sla.ledger import window_statuses
    from sla.records import record, restore_lines
    from sla.report import compute_plan, monitoring_began, plan_windows

    _check_window(label)
    _check_customer(config, customer)
    # A window that has not begun is refused whatever is stored.
    plan_windows(config, label, now, customer_id=customer).check()
    async with await _stored_data(config, samples=True) as db:
        links = [i for c in config.contracts if customer in (None, c.customer) for i in c.links]
        began = await monitoring_began(db, links)
        # The windows the ledger has rows for: begun, and measured at all.
        plan = plan_windows(config, label, now, customer_id=customer, monitored_from=began)
        plan.check()
        results = await compute_plan(db, config, plan, now)
        # Where billing has a ledger row, its status (approved, applied) is the truth.
        statuses = await window_statuses(db, label)
    records = [
        record(item, now, statuses.get((item.contract.id, item.subject.id))) for item in results
    ]
    restores = [line for item in results for line in restore_lines(item)]
    notes = plan.notes() + report_notes(results)
    decimals = {item.contract.id: item.terms.availability_decimals for item in results}
    return SlaReport(records, notes, restores, schedules(results), decimals)


def _check_window(label: str | None) -> None:
    from sla.windows import parse_window

    if label is None:
        return
    try:
        parse_window(label, UTC_ZONE)
    except ValueError as exc:
        raise BadArgument(f"--window {exc}") from None


def _check_begun(config: Config, label: str | None, now: datetime, customer: str | None) -> None:
    """A window asked for by label must have begun for some contract in scope."""
    from sla.report import plan_windows

    if label is not None:
        plan_windows(config, label, now, customer_id=customer, any_kind=True).check()


def _check_customer(config: Config, customer: str | None) -> None:
    if customer is not None and customer not in {c.id for c in config.customers}:
        known = ", ".join(c.id for c in config.customers) or "none defined"
        raise BadArgument(f"--customer {customer!r} is not a customer; defined: {known}")


# --- credits ------------------------------------------------------------------------------

BILLING_ROLES = ("billing", "admin")


async def _check_billing_user(config: Config, db: Database, name: str) -> None:
    """Approvals name a person: an enabled billing (or admin) user of the config file or
    of `linkwatch users add`."""
    accounts = await _accounts(config, db)
    allowed = [u.name for u in await accounts.users() if u.role in BILLING_ROLES and not u.disabled]
    if name not in allowed:
        known = ", ".join(allowed) or "none defined; add a user with role billing"
        raise BadArgument(
            f"--user {name!r} is not an enabled billing or admin user; allowed: {known}"
        )


async def credits_list(
    config: Config,
    window: str | None = None,
    customer: str | None = None,
    status: LedgerStatus | None = None,
) -> list[LedgerRow]:
    from sla.ledger import list_rows

    _check_window(window)
    _check_customer(config, customer)
    _check_begun(config, window, datetime.now(UTC), customer)
    async with await _stored_data(config) as db:
        return await list_rows(db, window=window, customer=customer, status=status)


async def credits_approve(
    config: Config, ids: Sequence[int], user: str, now: datetime, note: str | None = None
) -> list[LedgerRow]:
    from sla.ledger import approve

    async with await _stored_data(config) as db:
        await _check_billing_user(config, db, user)
        return await approve(db, ids, user, now, note)


async def credits_apply(
    config: Config, ids: Sequence[int], user: str, invoice_ref: str, now: datetime
) -> list[LedgerRow]:
    from sla.ledger import apply

    async with await _stored_data(config) as db:
        await _check_billing_user(config, db, user)
        return await apply(db, ids, user, invoice_ref, now)


async def credits_export(
    config: Config, window: str | None = None, status: LedgerStatus = "approved"
) -> list[LedgerRow]:
    """The rows to export; `sla.ledger.export_csv` renders them for the billing system."""
    from sla.ledger import list_rows

    _check_window(window)
    _check_begun(config, window, datetime.now(UTC), None)
    async with await _stored_data(config) as db:
        return await list_rows(db, window=window, status=status)


async def credits_refresh(
    config: Config, window: str | None, now: datetime, progress: Progress | None = None
) -> LedgerRefresh:
    """One window, or every window from the oldest stored sample to now."""
    from sla.ledger import history_range, refresh_ledger

    _check_window(window)
    _check_begun(config, window, now, None)
    async with await _stored_data(config) as db:
        if window is not None:
            return await refresh_ledger(
                db, config, [window], now, actor="system", progress=progress
            )
        span = await history_range(db, now)
        return await refresh_ledger(db, config, span or [], now, progress=progress)


async def db_stats(config: Config, now: datetime) -> str:
    from collector.housekeeping import database_stats, render_stats
    from collector.spool import inspect_spool

    spool = inspect_spool(
        config.data_dir / "spool",
        max_bytes=config.collector.spool_max_mb * 2**20,
        warn_pct=config.collector.spool_warn_pct,
    )
    async with await _stored_data(config) as db:
        stats = await database_stats(
            db,
            spool_status=spool,
            now=now,
            settings=storage_settings(config),
            agent_lease=config.collector.agent_lease,
        )
        return render_stats(stats)


async def housekeeping(config: Config, now: datetime) -> str:
    from collector.housekeeping import run_housekeeping

    async with await _stored_data(config) as db:
        return (await run_housekeeping(db, storage_settings(config), now)).summary()


async def rebuild(
    config: Config, start: datetime, end: datetime, progress: Progress | None = None
) -> list[str]:
    if end <= start:
        raise BadArgument(f"--to {end.isoformat()} is not after --from {start.isoformat()}")
    progress = progress or Progress()
    async with await _stored_data(config) as db:
        report = await rebuild_states(db, config.links, start, end, progress=progress)
        progress.stage("rolling up")
        await refresh_rollups(db, start, end)
        return report.lines()


# --- monthly report -----------------------------------------------------------------------


async def monthly_sla_report(config: Config, customer: str, month: str, now: datetime) -> str:
    """The customer's printable SLA report for `month` (2026-11), as HTML."""
    from sla.monthly import check_month, monthly_report

    _check_customer(config, customer)
    try:
        check_month(config.customer(customer), month, now)  # or WindowNotBegun
    except ValueError as exc:
        raise BadArgument(f"--month {exc}") from None
    async with await _stored_data(config, samples=True) as db:
        return await monthly_report(db, config, customer, month, now)


# --- portal users -------------------------------------------------------------------------


async def _accounts(config: Config, db: Database) -> Accounts:
    from portal.auth import Accounts

    accounts = Accounts(db, session_ttl=config.portal.session_ttl)
    await accounts.sync_config_users(config.users, datetime.now(UTC))
    return accounts


async def users_list(config: Config) -> tuple[list[Account], bool]:
    """Every portal user, and whether a database was there to ask: without one (nothing
    stored yet, and none is created for a listing) only the config file's users exist."""
    from portal.auth import Account

    try:
        db = await open_database(config, create=False)
    except NoDatabase:
        now = datetime.now(UTC)
        listed = [
            Account(u.name, u.role, u.customer, u.password_hash, u.disabled, "config", now, now)
            for u in sorted(config.users, key=lambda u: u.name)
        ]
        return listed, False
    async with db:
        return await (await _accounts(config, db)).users(), True


async def users_add(
    config: Config, name: str, role: Role, customer: str | None, password: str, now: datetime
) -> Account:
    from portal.auth import AccountError

    if role == "customer" and customer is None:
        raise BadArgument("role customer needs --customer, the customer the user belongs to")
    if role != "customer" and customer is not None:
        raise BadArgument(f"role {role} sees every customer; leave out --customer")
    _check_customer(config, customer)
    if name in {u.name for u in config.users}:
        raise AccountError(f"{name!r} is a user of the config file; choose another name")
    async with await open_database(config) as db:
        return await (await _accounts(config, db)).add_user(name, role, customer, password, now)


async def users_passwd(config: Config, name: str, password: str, now: datetime) -> None:
    async with await open_database(config) as db:
        await (await _accounts(config, db)).set_password(name, password, now)


async def users_set_disabled(config: Config, name: str, disabled: bool, now: datetime) -> None:
    async with await open_database(config) as db:
        await (await _accounts(config, db)).set_disabled(name, disabled, now)
