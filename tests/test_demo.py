"""The demo as a first-time user meets it, and the history it generates."""

from __future__ import annotations

import asyncio
import re
import signal
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import psycopg

from kernel.config import load_config
from kernel.domain import Outcome
from linkwatch.demo import STEP, generate_history
from sla.windows import window_containing
from tests.helpers import (
    REPO,
    board_statuses,
    browser,
    free_port,
    login,
    start_linkwatch,
    stop,
    stopped_after,
    text_of,
    wait_for,
)

CONFIG = load_config(REPO / "config" / "demo.yaml")
NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
HISTORY = generate_history(CONFIG, NOW - timedelta(weeks=8), NOW)


def test_history_is_deterministic_so_reruns_store_nothing_twice() -> None:
    later = generate_history(CONFIG, NOW - timedelta(weeks=3), NOW + timedelta(hours=5))
    overlap = {s for s in later.samples if s.observed_at < NOW}
    assert overlap <= set(HISTORY.samples)
    earlier_windows = {m for m in later.maintenance if m.ends_at <= NOW}
    assert earlier_windows <= set(HISTORY.maintenance)


def test_history_is_dense_enough_to_leave_no_false_unknown_time() -> None:
    # Samples further apart than a probe's stale_after would make unknown time that no
    # real monitor gap caused.
    for link in CONFIG.links:
        for probe in link.probes:
            assert probe.stale_after_effective > STEP, (link.id, probe.id)


def test_history_covers_eight_weeks_of_every_probe_on_a_minute_grid() -> None:
    per_probe = Counter((s.link_id, s.probe_id) for s in HISTORY.samples)
    assert set(per_probe) == {(link.id, p.id) for link in CONFIG.links for p in link.probes}
    expected = timedelta(weeks=8) / STEP
    # Monitor gaps leave a few hours out; everything else is there.
    assert all(0.97 * expected < n <= expected for n in per_probe.values()), per_probe
    assert all(s.observed_at.second == 0 for s in HISTORY.samples)
    assert min(s.observed_at for s in HISTORY.samples) >= NOW - timedelta(weeks=8)


def test_history_has_outages_breaches_gaps_and_maintenance() -> None:
    down_minutes: dict[tuple[str, str], int] = defaultdict(int)
    for s in HISTORY.samples:
        if s.outcome is Outcome.DOWN:
            week = s.observed_at.isocalendar()
            down_minutes[(s.link_id, f"{week.year}-W{week.week:02d}")] += 1
    # A weekly 99.5 % target allows 50.4 minutes down: some link-weeks breach it.
    assert sum(1 for minutes in down_minutes.values() if minutes > 50.4) >= 3
    assert len(down_minutes) >= 20  # outages are spread over links and weeks
    assert any(s.outcome is Outcome.DEGRADED for s in HISTORY.samples if s.link_id == "acme-hq")

    # The monitor was offline now and then: minutes with no sample from any probe.
    minutes = {s.observed_at for s in HISTORY.samples}
    grid = {NOW - timedelta(weeks=8) + i * STEP for i in range(int(timedelta(weeks=8) / STEP))}
    grid = {m.replace(second=0, microsecond=0) for m in grid}
    assert len(grid - minutes) >= 60

    notice = {m.starts_at - m.announced_at for m in HISTORY.maintenance}
    assert timedelta(days=7) in notice  # announced in time: excluded from the window
    assert any(n < timedelta(hours=72) for n in notice)  # too late to be excluded
    assert all(m.link_ids for m in HISTORY.maintenance)


async def test_demo_command_brings_up_history_probes_and_portal(pg_data_dir: Path) -> None:
    port = free_port()
    log = pg_data_dir / "demo.log"
    proc = start_linkwatch(
        "demo",
        "--data-dir",
        str(pg_data_dir),
        "--listen",
        f"127.0.0.1:{port}",
        "--weeks",
        "6",
        log=log,
    )
    with stopped_after(proc, log):
        await asyncio.to_thread(
            wait_for,
            "the demo banner",
            lambda: "Stop with Ctrl-C." in log.read_text(),
            90,
            proc,
            log,
        )
        banner = log.read_text()
        assert f"Linkwatch demo is running: http://127.0.0.1:{port}/" in banner
        logins = dict(re.findall(r"^\s{4}(\S+)\s+(\S+-demo)\s", banner, flags=re.M))
        assert logins["noc"] == "noc-demo"
        assert logins["acme"] == "acme-demo"

        # The first page views show every feature at once, not after minutes of probing.
        base = f"http://127.0.0.1:{port}"
        async with browser() as session:
            board = await login(session, base, "noc", logins["noc"])
            assert ("globex-backup", "down") in board_statuses(board)  # down now
            noc = text_of(await _page(session, f"{base}/noc"))
            assert "Acknowledged by noc" in noc
            assert "Compliance" in noc
            notifications = await _page(session, f"{base}/noc/notifications?status=all")
            assert "No notification routes are configured" not in notifications
            assert "globex-it (globex-hook, webhook)" in text_of(notifications)
            maintenance = text_of(await _page(session, f"{base}/noc/maintenance"))
            assert re.search(r"Upcoming .*\(in \d+ d", maintenance)
            assert "Core network software update" in maintenance  # the weekly series
        async with browser() as session:
            home = text_of(await login(session, base, "acme", logins["acme"]))
            assert "Planned maintenance Core router software upgrade" in home
            owed = re.search(r"Credits owed ([\d.]+) EUR", home)
            assert owed is not None
            assert float(owed.group(1)) > 0  # last week's breach of acme-hq's target
            assert "Track record Your contracts:" in home
        async with browser() as session:
            home = text_of(await login(session, base, "globex", logins["globex"]))
            assert "Incident #1: Backup line down at the edge router Open" in home

        url = re.search(r"database: (\S+)", banner)
        assert url is not None
        with psycopg.connect(url.group(1)) as conn:
            oldest = conn.execute("SELECT min(observed_at) FROM samples").fetchone()
            windows = conn.execute(
                "SELECT count(*) FROM maintenance_windows WHERE source = 'demo'"
            ).fetchone()
        assert oldest is not None
        assert oldest[0] < datetime.now(UTC) - timedelta(days=13)
        assert windows is not None
        assert windows[0] > 0

        # The history's windows get their ledger rows in the background: every window of
        # every contract from the one the history begins in to the running one.
        expected = _windows_since(oldest[0], datetime.now(UTC))
        await asyncio.to_thread(
            wait_for,
            "the ledger rows of the history",
            lambda: expected <= _ledger_windows(url.group(1)),
            120,
            proc,
            log,
        )
        # Computed from the derived states, not before them: a window the history covers
        # whole was measured (the generated monitor gaps are a few hours at most).
        with psycopg.connect(url.group(1)) as conn:
            covered = conn.execute(
                "SELECT min(coverage_pct) FROM ledger WHERE kind = 'window'"
                " AND window_start >= %s AND window_end <= now()",
                [oldest[0]],
            ).fetchone()
        assert covered is not None
        assert covered[0] > 90

        async with browser() as session:
            board = await login(session, base, "acme", logins["acme"])
            assert {link for link, _ in board_statuses(board)} == {"acme-hq", "acme-branch"}
        async with browser() as session:
            board = await login(session, base, "noc", logins["noc"])
            assert len(board_statuses(board)) == len(CONFIG.links)

        stop(proc, log, signal.SIGINT)  # Ctrl-C, as the banner says
    assert "Traceback" not in log.read_text()


async def _page(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as response:
        assert response.status == 200, url
        return await response.text()


def _windows_since(first: datetime, now: datetime) -> set[tuple[str, str]]:
    """(contract, window label) of every demo contract's windows from `first` to `now`."""
    found = set()
    for contract in CONFIG.contracts:
        terms = contract.terms_at(now, CONFIG.plans)
        assert terms is not None
        window = window_containing(terms.window, CONFIG.customer(contract.customer).tz, first)
        while window.start.astimezone(UTC) <= now:
            found.add((contract.id, window.label))
            window = window.next()
    return found


def _ledger_windows(url: str) -> set[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT contract_id, window_label FROM ledger WHERE kind = 'window'"
        ).fetchall()
    return {(contract, label) for contract, label in rows}
