"""A stored row that state derivation fails on, against a real `linkwatch run`: the process
starts and runs on, every other link gets its states, the NOC page and `linkwatch db stats`
(another process) name the link, and once staff delete the row the report clears."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import psycopg

from collector.database import Database
from collector.embedded import EmbeddedPostgres
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

NOC_PASSWORD = "noc-password"
# What an import once accepted and stored: a time at the very end of year 9999, after
# which no status can be held (deriving its probe raised OverflowError, and the state
# catch-up took `linkwatch run` down with it at every start).
FAR_FUTURE = "9999-12-31 23:59:59.999999+00"


def write_config(directory: Path, url: str, port: int) -> Path:
    hashed = FAST_HASHER.hash(NOC_PASSWORD)
    config = directory / "linkwatch.yaml"
    config.write_text(
        f"""\
database: {{url: "{url}"}}
data_dir: {directory / "data"}
portal: {{listen: "127.0.0.1:{port}", refresh: 1s}}
notifications: {{evaluate_every: 1s}}
customers:
  - {{id: acme, name: Acme Corp}}
links:
  - id: good
    customer: acme
    probes: [{{id: ping, kind: icmp, host: 127.0.0.1, interval: 1s, timeout: 300ms, count: 1}}]
  - id: bad
    customer: acme
    probes: [{{id: ping, kind: icmp, host: 127.0.0.1, interval: 1s, timeout: 300ms, count: 1}}]
users:
  - {{name: noc, role: ops, password_hash: "{hashed}"}}
"""
    )
    return config


def count(url: str, sql: str, *params: object) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return int(row[0])


def states_of(url: str, link_id: str) -> int:
    return count(url, "SELECT count(*) FROM link_states WHERE link_id = %s", link_id)


def failures(url: str) -> int:
    return count(url, "SELECT count(*) FROM state_failures")


def noc_notices(page: str) -> list[str]:
    found = re.findall(r'<p class="notice" role="alert">(.*?)</p>', page, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", n).split()) for n in found]


async def test_a_row_no_state_can_be_derived_from_stops_neither_start_up_nor_other_links(
    database: Database, embedded_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    url = embedded_postgres.url
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO samples (link_id, probe_id, observed_at, outcome)"
            " VALUES ('bad', 'ping', %s, 'up')",
            (FAR_FUTURE,),
        )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, url, port)
    log = tmp_path / "linkwatch.log"
    proc = start_linkwatch("run", "--config", str(config), log=log)
    with stopped_after(proc, log):
        await asyncio.to_thread(
            wait_for, "states of the good link", lambda: states_of(url, "good") > 0, 60, proc, log
        )
        await asyncio.to_thread(
            wait_for, "the failure recorded", lambda: failures(url) == 1, 30, proc, log
        )
        await asyncio.sleep(3)  # live batches keep touching the bad link meanwhile
        assert proc.poll() is None, log.read_text()
        assert states_of(url, "bad") == 0

        async with browser() as noc:
            await login(noc, base, "noc", NOC_PASSWORD)
            async with noc.get(f"{base}/noc") as response:
                assert response.status == 200
                notices = noc_notices(await response.text())
            [notice] = [n for n in notices if "cannot be derived" in n]
            assert notice.startswith("The states of bad cannot be derived from its samples")
            assert "probe ping: ValueError: the sample of probe ping at 9999-12-31T23:59" in notice

            stats = await asyncio.to_thread(linkwatch, "db", "stats", "--config", str(config))
            assert stats.returncode == 0, stats.stderr
            assert re.search(r"^States +1 probe cannot be derived", stats.stdout, re.M)
            assert re.search(r"^  link bad  probe ping  since \d{4}-", stats.stdout, re.M)

            # The row deleted as staff would (no SQL), the bad link derives again, and the
            # report clears.
            deleted = await asyncio.to_thread(
                linkwatch,
                "--log-level", "error",
                "db", "delete-samples", "--config", str(config),
                "--link", "bad", "--probe", "ping", "--from", "2100-01-01T00:00:00Z",
            )  # fmt: skip
            assert deleted.returncode == 0, deleted.stderr
            assert deleted.stdout.splitlines() == [
                "deleted 1 sample of bad probe ping (9999-12-31T23:59:59.999999Z to"
                " 9999-12-31T23:59:59.999999Z)",
                f"recorded in {tmp_path / 'data' / 'import-audit.log'}",
            ]
            (entry,) = [
                json.loads(line)
                for line in (tmp_path / "data" / "import-audit.log").read_text().splitlines()
            ]
            assert (entry["action"], entry["link"], entry["deleted"]) == (
                "samples deleted",
                "bad",
                1,
            )
            await asyncio.to_thread(
                wait_for,
                "the bad link derived again",
                lambda: failures(url) == 0 and states_of(url, "bad") > 0,
                30,
                proc,
                log,
            )
            for _ in range(20):  # the page is cached for up to a second
                async with noc.get(f"{base}/noc") as response:
                    if not any(
                        "cannot be derived" in n for n in noc_notices(await response.text())
                    ):
                        break
                await asyncio.sleep(0.5)
            else:
                raise AssertionError("the NOC page still names the bad link")
        stats = await asyncio.to_thread(linkwatch, "db", "stats", "--config", str(config))
        assert re.search(r"^States +derived for every probe$", stats.stdout, re.M), stats.stdout

    output = log.read_text()
    assert "Traceback" not in output
    failed = [line for line in output.splitlines() if "link states cannot be derived" in line]
    assert len(failed) == 1, failed  # once, however many batches touched it meanwhile
    assert " ERROR " in failed[0]
    assert "link=bad probe=ping " in failed[0]
    assert "link states derived again link=bad probe=ping" in output
