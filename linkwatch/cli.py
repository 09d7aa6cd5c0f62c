"""The `linkwatch` command line.

Parses arguments, sets up logging and turns every `LinkwatchError` into a clear message
and an exit code, never a traceback. It is the composition root: the commands that need
storage, probes or the portal import those packages inside the command, so the rest of
`linkwatch` stays free of them.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import signal
import stat
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from kernel import __version__
from kernel.config import Config, PortalConfig, load_config
from kernel.config.recurring import notice_warnings
from kernel.errors import ConfigError, ConfigProblem, LinkwatchError
from kernel.formatting import count_of, text_table
from kernel.logs import setup_logging
from kernel.progress import progress_for

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2  # bad arguments or bad config: the user has something to fix
# What a shell reports for a command ended by SIGPIPE (128 + 13), as `yes | head -1` does.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "config" / "demo.yaml"
ROOT_DEMO_DATA_DIR = Path("/var/lib/linkwatch/demo")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _main(argv)
        finally:
            # Flush here, where a reader that went away can still be handled, rather than
            # at interpreter exit, where Python would print a traceback for it.
            sys.stdout.flush()
    except BrokenPipeError:
        # `linkwatch ... | head -1`: the reader has all it wants. Stop quietly, and point
        # stdout at /dev/null so that the exit-time flush has nowhere to fail.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        return command(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except LinkwatchError as exc:
        print(f"linkwatch: {exc}", file=sys.stderr)
        return exc.exit_code
    except ExceptionGroup as group:
        # A part of the running daemon failed; say so plainly when the user can act on it.
        leaves = _leaves(group)
        if not all(isinstance(leaf, LinkwatchError) for leaf in leaves):
            raise
        for leaf in leaves:
            print(f"linkwatch: {leaf}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


def _leaves(group: ExceptionGroup[Exception]) -> list[Exception]:
    found: list[Exception] = []
    for exc in group.exceptions:
        found += _leaves(exc) if isinstance(exc, ExceptionGroup) else [exc]
    return found


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="linkwatch",
        description="Link availability monitoring, SLA reports and service credits.",
    )
    parser.add_argument("--version", action="version", version=f"linkwatch {__version__}")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log verbosity (default: info)",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="probes, collector and portal in one process")
    run.add_argument("--config", "-c", required=True, type=Path, help="YAML config file")
    run.add_argument(
        "--role",
        choices=["all", "collector", "portal"],
        default="all",
        help="run everything (default), only probes and collector, or only the portal",
    )
    run.set_defaults(command=_run)

    agent = commands.add_parser(
        "agent",
        help="probe one site's share of its links into the central database (no portal)",
    )
    agent.add_argument("--config", "-c", required=True, type=Path, help="YAML config file")
    agent.add_argument("--site", required=True, help="the site it probes from (one of sites:)")
    agent.add_argument(
        "--name",
        help="this agent's name within its site (default: the host name); its id is SITE/NAME",
    )
    agent.set_defaults(command=_agent)

    demo = commands.add_parser(
        "demo", help="embedded database, demo config, eight weeks of history, live probes"
    )
    demo.add_argument("--config", "-c", type=Path, default=DEMO_CONFIG, help=argparse.SUPPRESS)
    demo.add_argument("--data-dir", type=Path, help="where the demo keeps its database")
    demo.add_argument("--listen", help="portal address host:port (default 127.0.0.1:8080)")
    demo.add_argument("--weeks", type=int, default=8, help="weeks of history (default 8)")
    demo.set_defaults(command=_demo)

    probe = commands.add_parser("probe", help="run probes by hand")
    probe.add_argument(
        "--once",
        action="store_true",
        required=True,
        help="run every probe once and print the results",
    )
    probe.add_argument("--config", "-c", required=True, type=Path)
    probe.add_argument("--link", action="append", help="only this link (repeatable)")
    probe.add_argument("--format", choices=["table", "json"], default="table")
    probe.set_defaults(command=_probe_once)

    check = commands.add_parser("check-config", help="validate a config file")
    check.add_argument("file", type=Path)
    check.set_defaults(command=_check_config)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(title="db commands", required=True, metavar="COMMAND")
    migrate = db_commands.add_parser("migrate", help="apply schema migrations")
    migrate.add_argument("--config", "-c", required=True, type=Path)
    migrate.set_defaults(command=_db_migrate)
    rebuild = db_commands.add_parser(
        "rebuild-states",
        help="recompute link and probe state intervals from the samples in a time range",
    )
    rebuild.add_argument("--config", "-c", required=True, type=Path)
    rebuild.add_argument(
        "--from",
        dest="start",
        required=True,
        type=_moment,
        help="ISO 8601 with offset, e.g. 2026-11-01T00:00:00+01:00",
    )
    rebuild.add_argument("--to", dest="end", required=True, type=_moment)
    rebuild.set_defaults(command=_db_rebuild)
    delete = db_commands.add_parser(
        "delete-samples",
        help="delete a link's samples in a time range, e.g. a row dated years ahead, recorded"
        " with who and when in data_dir/import-audit.log; the states are derived again",
    )
    delete.add_argument("--config", "-c", required=True, type=Path)
    delete.add_argument("--link", required=True, help="the link's id")
    delete.add_argument("--probe", help="only this probe's samples (default: every probe's)")
    delete.add_argument(
        "--from",
        dest="start",
        required=True,
        type=_moment,
        help="ISO 8601 with offset, e.g. 9999-12-31T00:00:00Z; samples from this time on",
    )
    delete.add_argument(
        "--to",
        dest="end",
        type=_moment,
        help="up to (not including) this time; default: every later sample",
    )
    delete.set_defaults(command=_db_delete_samples)
    stats = db_commands.add_parser(
        "stats", help="rows, sizes, compression, newest sample and lag, spool"
    )
    stats.add_argument("--config", "-c", required=True, type=Path)
    stats.set_defaults(command=_db_stats)
    housekeeping = db_commands.add_parser(
        "housekeeping", help="roll up finished buckets and apply retention now"
    )
    housekeeping.add_argument("--config", "-c", required=True, type=Path)
    housekeeping.set_defaults(command=_db_housekeeping)

    import_ = commands.add_parser("import", help="load data from another monitor")
    import_commands = import_.add_subparsers(
        title="import commands", required=True, metavar="COMMAND"
    )
    import_samples = import_commands.add_parser(
        "samples",
        help="samples from CSV: time,link,probe,outcome,rtt_ms,loss_pct"
        " [,rtt_min_ms,rtt_max_ms,jitter_ms,error]",
    )
    import_samples.add_argument("--config", "-c", required=True, type=Path)
    import_samples.add_argument("file", type=Path, help="CSV file with a header line")
    import_samples.add_argument(
        "--replace",
        action="store_true",
        help="correct stored samples: where a row has other values than the sample stored"
        " for its link, probe and time, store the row's (recorded, with who and the file, in"
        " data_dir/import-audit.log); without it such a file is refused whole",
    )
    import_samples.set_defaults(command=_import_samples)

    report = commands.add_parser("report", help="SLA reports")
    report_commands = report.add_subparsers(
        title="report commands", required=True, metavar="COMMAND"
    )
    report_sla = report_commands.add_parser(
        "sla", help="availability, budget and credit per contract and link for one window"
    )
    report_sla.add_argument("--config", "-c", required=True, type=Path)
    report_sla.add_argument(
        "--window",
        required=True,
        help="an ISO week (2026-W47), a month (2026-11), a quarter (2026-Q3) or a year (2026)",
    )
    report_sla.add_argument("--customer", help="only this customer's contracts")
    report_sla.add_argument("--format", choices=["table", "json", "csv"], default="table")
    report_sla.set_defaults(command=_report_sla)

    report_monthly = report_commands.add_parser(
        "monthly", help="printable monthly SLA report for one customer, as HTML or PDF"
    )
    report_monthly.add_argument("--config", "-c", required=True, type=Path)
    report_monthly.add_argument("--customer", required=True, help="the customer's id")
    report_monthly.add_argument("--month", required=True, help="a month, e.g. 2026-11")
    report_monthly.add_argument(
        "--format",
        choices=["html", "pdf"],
        default="html",
        help="pdf: the same report printed by Chromium, with page numbers (needs chromium)",
    )
    report_monthly.add_argument(
        "--output", "-o", type=Path, help="write the report here (default: standard output)"
    )
    report_monthly.set_defaults(command=_report_monthly)

    report_operations = report_commands.add_parser(
        "operations", help="time to acknowledge and to restore outages in a month"
    )
    report_operations.add_argument("--config", "-c", required=True, type=Path)
    report_operations.add_argument("--month", required=True, help="a month (UTC), e.g. 2026-11")
    report_operations.add_argument("--format", choices=["table", "json"], default="table")
    report_operations.set_defaults(command=_report_operations)

    _credits_parser(commands)
    _notify_parser(commands)

    users = commands.add_parser("users", help="portal accounts")
    users_commands = users.add_subparsers(title="users commands", required=True, metavar="COMMAND")
    hash_ = users_commands.add_parser(
        "hash", help="print the argon2id hash of a password for a config file"
    )
    hash_.add_argument("--stdin", action="store_true", help="read the password from standard input")
    hash_.set_defaults(command=_users_hash)
    stdin_help = "read the password from standard input instead of asking twice"

    list_users = users_commands.add_parser("list", help="every portal user and where it is defined")
    list_users.add_argument("--config", "-c", required=True, type=Path)
    list_users.set_defaults(command=_users_list)

    add = users_commands.add_parser("add", help="add a portal user (asks for the password)")
    add.add_argument("name")
    add.add_argument("--config", "-c", required=True, type=Path)
    add.add_argument("--role", required=True, choices=["customer", "ops", "billing", "admin"])
    add.add_argument("--customer", help="for role customer: the customer id")
    add.add_argument("--password-stdin", action="store_true", help=stdin_help)
    add.set_defaults(command=_users_add)

    passwd = users_commands.add_parser("passwd", help="set a user's password; ends its sessions")
    passwd.add_argument("name")
    passwd.add_argument("--config", "-c", required=True, type=Path)
    passwd.add_argument("--password-stdin", action="store_true", help=stdin_help)
    passwd.set_defaults(command=_users_passwd)

    for verb, disabled, help_ in (
        ("disable", True, "stop a user signing in; ends its sessions and API tokens"),
        ("enable", False, "let a disabled user sign in again"),
    ):
        toggle = users_commands.add_parser(verb, help=help_)
        toggle.add_argument("name")
        toggle.add_argument("--config", "-c", required=True, type=Path)
        toggle.set_defaults(command=_users_toggle, disabled=disabled)
    return parser


def _notify_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    notify = commands.add_parser("notify", help="notification channels")
    sub = notify.add_subparsers(title="notify commands", required=True, metavar="COMMAND")
    test = sub.add_parser("test", help="send a test message over one channel now")
    test.add_argument("--config", "-c", required=True, type=Path)
    test.add_argument("--channel", required=True, help="a channel id from notifications.channels")
    test.add_argument(
        "--to", action="append", help="e-mail recipient instead of the channel's (repeatable)"
    )
    test.set_defaults(command=_notify_test)


def _notify_test(args: argparse.Namespace) -> int:
    from notify.check import send_test_message

    config = load_config(args.config)
    where = asyncio.run(send_test_message(config, args.channel, args.to))
    print(f"test message delivered: {where}")
    return EXIT_OK


def _credits_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    credits = commands.add_parser(
        "credits", help="the credit ledger: list, refresh, approve, apply, export"
    )
    sub = credits.add_subparsers(title="credits commands", required=True, metavar="COMMAND")
    window_help = "an ISO week (2026-W47), a month (2026-11), a quarter (2026-Q3) or a year (2026)"

    list_ = sub.add_parser("list", help="ledger rows with their status")
    list_.add_argument("--config", "-c", required=True, type=Path)
    list_.add_argument("--window", help=window_help)
    list_.add_argument("--customer", help="only this customer's rows")
    list_.add_argument("--status", choices=["open", "closed", "approved", "applied", "withdrawn"])
    list_.set_defaults(command=_credits_list)

    refresh = sub.add_parser(
        "refresh", help="recompute open and closed rows now (settled ones get adjustments)"
    )
    refresh.add_argument("--config", "-c", required=True, type=Path)
    refresh.add_argument(
        "--window", help=f"{window_help}; default: every window since the oldest sample"
    )
    refresh.set_defaults(command=_credits_refresh)

    approve = sub.add_parser("approve", help="approve closed rows (all of them or none)")
    approve.add_argument("--config", "-c", required=True, type=Path)
    approve.add_argument(
        "--id", dest="ids", type=int, action="append", required=True, help="a row id; repeatable"
    )
    approve.add_argument("--user", required=True, help="the billing user who approves")
    approve.add_argument(
        "--note", help="what you checked; required for rows flagged for review (low coverage)"
    )
    approve.set_defaults(command=_credits_approve)

    apply = sub.add_parser(
        "apply", help="mark approved rows applied to an invoice (all of them or none)"
    )
    apply.add_argument("--config", "-c", required=True, type=Path)
    apply.add_argument(
        "--id", dest="ids", type=int, action="append", required=True, help="a row id; repeatable"
    )
    apply.add_argument("--user", required=True, help="the billing user who applies")
    apply.add_argument("--invoice", required=True, help="the invoice reference")
    apply.set_defaults(command=_credits_apply)

    export = sub.add_parser("export", help="CSV for the billing system")
    export.add_argument("--config", "-c", required=True, type=Path)
    export.add_argument("--window", help=window_help)
    export.add_argument(
        "--status",
        choices=["approved", "applied"],
        default="approved",
        help="which rows (default: approved, the ones ready to bill)",
    )
    export.add_argument("--output", "-o", type=Path, help="write to FILE instead of stdout")
    export.set_defaults(command=_credits_export)


def _credits_list(args: argparse.Namespace) -> int:
    from linkwatch.admin import credits_list
    from sla.ledger import to_table

    config = load_config(args.config)
    rows = asyncio.run(credits_list(config, args.window, args.customer, args.status))
    print(to_table(rows))
    return EXIT_OK


def _credits_refresh(args: argparse.Namespace) -> int:
    from linkwatch.admin import credits_refresh

    config = load_config(args.config)
    with progress_for(sys.stderr) as progress:
        refreshed = asyncio.run(credits_refresh(config, args.window, datetime.now(UTC), progress))
    print(refreshed.summary())
    return EXIT_OK


def _credits_approve(args: argparse.Namespace) -> int:
    from linkwatch.admin import credits_approve

    config = load_config(args.config)
    rows = asyncio.run(credits_approve(config, args.ids, args.user, datetime.now(UTC), args.note))
    for row in rows:
        print(f"approved {row.describe()}: {row.amount:f} {row.currency}")
    return EXIT_OK


def _credits_apply(args: argparse.Namespace) -> int:
    from linkwatch.admin import credits_apply

    config = load_config(args.config)
    rows = asyncio.run(credits_apply(config, args.ids, args.user, args.invoice, datetime.now(UTC)))
    for row in rows:
        print(f"applied {row.describe()}: {row.amount:f} {row.currency} to {row.invoice_ref}")
    return EXIT_OK


def _credits_export(args: argparse.Namespace) -> int:
    from linkwatch.admin import credits_export
    from sla.ledger import export_csv

    config = load_config(args.config)
    rows = asyncio.run(credits_export(config, args.window, args.status))
    text = export_csv(rows)
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        with args.output.open("w", encoding="utf-8", newline="") as out:
            out.write(text)
    except OSError as exc:
        raise LinkwatchError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
    print(f"{args.output}: {count_of(len(rows), 'row')} exported", file=sys.stderr)
    return EXIT_OK


def _probe_once(args: argparse.Namespace) -> int:
    from kernel.config.sites import links_at
    from kernel.domain import Sample
    from probes import detect_context
    from probes.once import probe_once, to_json, to_table

    config = load_config(args.config)
    links = config.links
    if args.link:
        unknown = sorted(set(args.link) - {link.id for link in links})
        if unknown:
            known = ", ".join(link.id for link in links) or "none defined"
            print(
                f"linkwatch: --link {', '.join(unknown)}: not in the config; links: {known}",
                file=sys.stderr,
            )
            return EXIT_USAGE
        links = [link for link in links if link.id in args.link]

    # From here: the measurements this monitor's site takes (another site's are its own).
    links = links_at(links, config.site.id, config.site.id)

    async def run_all() -> list[Sample]:
        ctx = detect_context(config.probing)
        try:
            return await probe_once(links, ctx, config.probing)
        finally:
            await ctx.close()

    samples = asyncio.run(run_all())
    print((to_json if args.format == "json" else to_table)(samples))
    return EXIT_OK


def _check_config(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    probes = sum(len(link.probes) for link in config.links)
    counts = (
        count_of(len(config.customers), "customer"),
        count_of(len(config.links), "link"),
        count_of(probes, "probe"),
        count_of(len(config.contracts), "contract"),
        count_of(len(config.users), "user"),
    )
    print(f"{args.file}: OK ({', '.join(counts)})")
    for warning in notice_warnings(config):
        print(f"{args.file}: warning: {warning}", file=sys.stderr)
    return EXIT_OK


def _db_migrate(args: argparse.Namespace) -> int:
    from linkwatch.daemon import migrate_only

    config = load_config(args.config)
    applied = asyncio.run(migrate_only(config))
    print(
        f"applied {count_of(len(applied), 'migration')}"
        + (f": {', '.join(applied)}" if applied else "")
    )
    return EXIT_OK


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not ISO 8601, e.g. 2026-11-01T00:00:00+01:00"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset; add one, e.g. +01:00 or Z")
    return moment


def _db_rebuild(args: argparse.Namespace) -> int:
    from linkwatch.admin import rebuild

    config = load_config(args.config)
    with progress_for(sys.stderr) as progress:
        lines = asyncio.run(rebuild(config, args.start, args.end, progress))
    print("\n".join(lines))
    return EXIT_OK


def _db_delete_samples(args: argparse.Namespace) -> int:
    from linkwatch.admin import delete_samples

    config = load_config(args.config)
    now = datetime.now(UTC)
    lines = asyncio.run(delete_samples(config, args.link, args.probe, args.start, args.end, now))
    print("\n".join(lines))
    return EXIT_OK


def _db_stats(args: argparse.Namespace) -> int:
    from linkwatch.admin import db_stats

    print(asyncio.run(db_stats(load_config(args.config), datetime.now(UTC))))
    return EXIT_OK


def _db_housekeeping(args: argparse.Namespace) -> int:
    from linkwatch.admin import housekeeping

    print(asyncio.run(housekeeping(load_config(args.config), datetime.now(UTC))))
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from linkwatch.daemon import serve

    config = load_config(args.config)
    asyncio.run(serve(config, role=args.role, config_path=args.config))
    return EXIT_OK


def _agent(args: argparse.Namespace) -> int:
    from linkwatch.agent import run_agent

    config = load_config(args.config)
    asyncio.run(run_agent(config, args.site, args.name))
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from linkwatch.daemon import serve_demo

    config = load_config(args.config)
    update: dict[str, object] = {}
    if args.data_dir is not None:
        update["data_dir"] = args.data_dir
    elif os.geteuid() == 0 and not _others_may_enter(config.data_dir.absolute()):
        # As root the embedded PostgreSQL runs as an unprivileged account, which cannot
        # reach a data dir under e.g. root's 0700 home.
        update["data_dir"] = ROOT_DEMO_DATA_DIR
    if args.listen is not None:
        try:
            update["portal"] = PortalConfig.model_validate(
                {**config.portal.model_dump(), "listen": args.listen}
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            message = str((error.get("ctx") or {}).get("error", error["msg"]))
            raise ConfigError([ConfigProblem("--listen", message)], "demo options") from None
    asyncio.run(serve_demo(config.model_copy(update=update), weeks=args.weeks))
    return EXIT_OK


def _import_samples(args: argparse.Namespace) -> int:
    from linkwatch.admin import import_file

    config = load_config(args.config)
    with progress_for(sys.stderr) as progress:
        outcome = asyncio.run(
            import_file(config, args.file, replace=args.replace, progress=progress)
        )
    report = outcome.report
    replaced = f", {report.replaced:,} replaced" if report.replaced else ""
    print(
        f"{args.file}: imported {count_of(report.rows, 'sample')}, {report.stored:,} new"
        f"{replaced} ({report.unchanged:,} already stored)"
    )
    if outcome.audit_file is not None:
        print(f"replacement recorded in {outcome.audit_file}")
        print("\n".join(outcome.rebuilt))
    if outcome.ledger is not None and outcome.ledger.adjustments:
        # Billing must hear that settled credits no longer match the data.
        ids = " ".join(f"--id {i}" for i in outcome.ledger.adjustments)
        print(f"ledger: settled credits changed; adjustment row(s) to review and approve: {ids}")
    return EXIT_OK


def _report_sla(args: argparse.Namespace) -> int:
    from functools import partial

    from linkwatch.admin import sla_report
    from sla.records import to_csv, to_json, to_table

    config = load_config(args.config)
    report = asyncio.run(sla_report(config, args.window, datetime.now(UTC), args.customer))
    for note in report.notes:
        print(f"linkwatch: note: {note}", file=sys.stderr)
    table: Callable[..., str] = partial(
        to_table, schedules=report.schedules, decimals=report.decimals
    )
    render = {"json": to_json, "csv": to_csv, "table": table}[args.format]
    print(render(report.records))
    if args.format == "table" and report.restores:
        print("\n".join(report.restores))
    return EXIT_OK


def _report_monthly(args: argparse.Namespace) -> int:
    from linkwatch.admin import monthly_sla_report

    config = load_config(args.config)
    if args.format == "pdf":
        return _report_monthly_pdf(args, config)
    html = asyncio.run(monthly_sla_report(config, args.customer, args.month, datetime.now(UTC)))
    if args.output is None:
        sys.stdout.write(html)
        return EXIT_OK
    try:
        args.output.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise LinkwatchError(f"--output {args.output}: cannot write the report: {exc}") from None
    return EXIT_OK


def _report_monthly_pdf(args: argparse.Namespace, config: Config) -> int:
    from linkwatch.admin import BadArgument, monthly_sla_report
    from sla.pdf import PdfPrinter, require_browser

    if args.output is None and sys.stdout.isatty():
        raise BadArgument("--format pdf: give --output FILE, or redirect standard output")
    require_browser()  # before the report is worked out, not after

    async def printed() -> bytes:
        html = await monthly_sla_report(config, args.customer, args.month, datetime.now(UTC))
        return await PdfPrinter().print_pdf(html)

    pdf = asyncio.run(printed())
    if args.output is None:
        sys.stdout.buffer.write(pdf)
        sys.stdout.flush()
        return EXIT_OK
    try:
        args.output.write_bytes(pdf)
    except OSError as exc:
        raise LinkwatchError(f"--output {args.output}: cannot write the report: {exc}") from None
    return EXIT_OK


def _report_operations(args: argparse.Namespace) -> int:
    from linkwatch.operations import as_json, operations_report_of, table

    config = load_config(args.config)
    report = asyncio.run(operations_report_of(config, args.month, datetime.now(UTC)))
    print(as_json(report) if args.format == "json" else table(report))
    return EXIT_OK


def _others_may_enter(path: Path) -> bool:
    """Whether an unprivileged account can reach `path` (or create it, if missing)."""
    existing = [p for p in [path, *path.parents] if p.exists()]
    return all(p.stat().st_mode & stat.S_IXOTH for p in existing)


def _read_password(from_stdin: bool) -> str:
    from linkwatch.admin import BadArgument
    from portal.auth import password_problem

    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise BadArgument("the passwords differ")
    problem = password_problem(password)
    if problem is not None:
        raise BadArgument(problem)
    return password


def _users_hash(args: argparse.Namespace) -> int:
    from argon2 import PasswordHasher

    print(PasswordHasher().hash(_read_password(args.stdin)))
    return EXIT_OK


def _users_list(args: argparse.Namespace) -> int:
    from linkwatch.admin import users_list

    config = load_config(args.config)
    users, stored = asyncio.run(users_list(config))
    if not stored:
        print(
            "linkwatch: no database yet, so only the config file's users exist",
            file=sys.stderr,
        )
    rows = [("user", "role", "customer", "state", "defined in")]
    rows += [
        (
            u.name,
            u.role,
            u.customer or "",
            "disabled" if u.disabled else "enabled",
            "config file" if u.source == "config" else "linkwatch users add",
        )
        for u in users
    ]
    print(text_table(rows))
    return EXIT_OK


def _users_add(args: argparse.Namespace) -> int:
    from linkwatch.admin import users_add

    config = load_config(args.config)
    password = _read_password(args.password_stdin)
    user = asyncio.run(
        users_add(config, args.name, args.role, args.customer, password, datetime.now(UTC))
    )
    scope = f"customer {user.customer}" if user.customer else user.role
    print(f"portal user {user.name} added ({scope})", file=sys.stderr)
    return EXIT_OK


def _users_passwd(args: argparse.Namespace) -> int:
    from linkwatch.admin import users_passwd

    config = load_config(args.config)
    password = _read_password(args.password_stdin)
    asyncio.run(users_passwd(config, args.name, password, datetime.now(UTC)))
    print(f"password of {args.name} changed; its sessions ended", file=sys.stderr)
    return EXIT_OK


def _users_toggle(args: argparse.Namespace) -> int:
    from linkwatch.admin import users_set_disabled

    config = load_config(args.config)
    asyncio.run(users_set_disabled(config, args.name, args.disabled, datetime.now(UTC)))
    state = "disabled; its sessions and API tokens stopped" if args.disabled else "enabled"
    print(f"{args.name} {state}", file=sys.stderr)
    return EXIT_OK
