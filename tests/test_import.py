"""Importing samples from another monitor's CSV: all or nothing, errors by line."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import pwd
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.database import Database
from collector.embedded import EmbeddedPostgres
from collector.importer import FileCheck, _copy_text, check_file, file_rows, import_samples
from kernel.config import Link
from kernel.domain import SampleTimes
from tests.helpers import linkwatch

LINKS = [
    Link.model_validate(
        {
            "id": "acme-hq",
            "customer": "acme",
            "probes": [{"id": "icmp", "kind": "icmp", "host": "127.0.0.1"}],
        }
    )
]
HEADER = "time,link,probe,outcome,rtt_ms,loss_pct"
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
TIMES = SampleTimes(horizon=timedelta(days=3660), skew=timedelta(minutes=5))


def _lines(*lines: str) -> list[bytes]:
    return [f"{line}\n".encode() for line in lines]


def _check(*lines: str) -> list[tuple[int, str]]:
    return [(e.line, e.message) for e in check_file(_lines(*lines), LINKS, TIMES, NOW).problems]


def test_a_good_file_parses_every_field() -> None:
    check = FileCheck()
    rows = list(
        file_rows(
            _lines(
                "time,link,probe,outcome,rtt_ms,loss_pct,jitter_ms,error",
                "2026-11-24T10:00:00+01:00,acme-hq,icmp,up,12.5,0,0.8,",
                "2026-11-24T09:00:30Z,acme-hq,icmp,DOWN,,100,,no reply",
                "",
            ),
            LINKS,
            TIMES,
            NOW,
            check,
        )
    )
    assert check.ok
    at = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    # link, probe, time, outcome, rtt, rtt min, rtt max, jitter, loss, error, line
    assert rows == [
        ("acme-hq", "icmp", at, "up", 12.5, None, None, 0.8, 0.0, None, 2),
        ("acme-hq", "icmp", at.replace(second=30), "down", None, None, None, None, 100.0,
         "no reply", 3),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("row", "message"),
    [
        pytest.param(
            "2026-11-24T10:00:00,acme-hq,icmp,up,1,0",
            "time '2026-11-24T10:00:00' has no UTC offset; add one, e.g."
            " 2026-11-24T10:00:00+01:00 or 2026-11-24T10:00:00Z",
            id="naive-time",
        ),
        pytest.param(
            "yesterday,acme-hq,icmp,up,1,0",
            "time 'yesterday' is not ISO 8601, e.g. 2026-11-24T10:00:00+01:00",
            id="bad-time",
        ),
        pytest.param(
            "2026-11-24T10:00:00Z,acme-dc,icmp,up,1,0",
            "unknown link 'acme-dc'; it must be defined in the config",
            id="link",
        ),
        pytest.param(
            "2026-11-24T10:00:00Z,acme-hq,snmp,up,1,0",
            "link 'acme-hq' has no probe 'snmp'; its probes: icmp",
            id="probe",
        ),
        pytest.param(
            "2026-11-24T10:00:00Z,acme-hq,icmp,flaky,1,0",
            "outcome 'flaky' is not one of up, degraded, down, unknown",
            id="outcome",
        ),
        pytest.param(
            "2026-11-24T10:00:00Z,acme-hq,icmp,up,fast,0",
            "rtt_ms 'fast' is not a number",
            id="not-a-number",
        ),
        pytest.param(
            "2026-11-24T10:00:00Z,acme-hq,icmp,up,-3,0",
            "rtt_ms '-3' must be a finite number of at least 0",
            id="negative",
        ),
        pytest.param(
            "2026-11-24T10:00:00Z,acme-hq,icmp,up,1,140",
            "loss_pct 140.0 is above 100",
            id="loss-over-100",
        ),
        pytest.param(
            "2026-11-24T10:00:00Z,acme-hq,icmp,up,1",
            "5 fields, expected 6 as in the header",
            id="short-row",
        ),
    ],
)
def test_each_bad_row_is_reported_with_its_line(row: str, message: str) -> None:
    good = "2026-11-24T09:00:00Z,acme-hq,icmp,up,1,0"
    assert _check(HEADER, good, row, good) == [(3, message)]


def test_a_bad_header_is_reported_on_line_one() -> None:
    assert _check("when,link,probe,outcome,rtt_ms,loss_pct,colour") == [
        (1, "missing column(s) time; required: time, link, probe, outcome, rtt_ms, loss_pct"),
        (
            1,
            "unknown column(s) when, colour; allowed: time, link, probe, outcome, rtt_ms,"
            " loss_pct, rtt_min_ms, rtt_max_ms, jitter_ms, error",
        ),
    ]


def test_empty_files_are_errors() -> None:
    assert check_file([], LINKS, TIMES, NOW).problems[0].message.startswith("the file is empty")
    assert _check(HEADER) == [(1, "the file has a header but no rows")]


@pytest.mark.parametrize(
    ("time", "message"),
    [
        pytest.param(
            "9999-12-31T23:59:59+00:00",
            "time '9999-12-31T23:59:59+00:00' is in the future: more than 5 min after now"
            " (2026-11-25T12:00:00Z; collector.clock_skew)",
            id="year-9999",
        ),
        pytest.param(
            "2099-01-01T00:00:00Z",
            "time '2099-01-01T00:00:00Z' is in the future: more than 5 min after now"
            " (2026-11-25T12:00:00Z; collector.clock_skew)",
            id="year-2099",
        ),
        pytest.param(
            "2026-11-25T12:05:01Z",
            "time '2026-11-25T12:05:01Z' is in the future: more than 5 min after now"
            " (2026-11-25T12:00:00Z; collector.clock_skew)",
            id="just-past-the-skew",
        ),
        pytest.param(
            "0001-01-01T00:00:00+00:00",
            "time '0001-01-01T00:00:00+00:00' is older than 3660 d before now, the oldest a"
            " sample may be (2016-11-17T12:00:00Z; collector.sample_horizon)",
            id="year-1",
        ),
        pytest.param(
            "9999-12-31T23:00:00-05:00",
            "time '9999-12-31T23:00:00-05:00' is past the year 9999",
            id="past-the-last-date",
        ),
    ],
)
def test_a_time_outside_the_accepted_range_is_a_bad_row(time: str, message: str) -> None:
    within_skew = "2026-11-25T12:04:59Z,acme-hq,icmp,up,1,0"  # a clock a little ahead
    assert _check(HEADER, within_skew, f"{time},acme-hq,icmp,up,1,0") == [(3, message)]


def test_a_byte_order_mark_is_not_part_of_the_first_column() -> None:
    lines = _lines(HEADER, "2026-11-24T09:00:00Z,acme-hq,icmp,up,1,0")
    lines[0] = codecs.BOM_UTF8 + lines[0]
    check = FileCheck()
    assert len(list(file_rows(lines, LINKS, TIMES, NOW, check))) == 1
    assert check.ok


def test_bytes_that_are_not_text_are_named_by_line() -> None:
    good = b"2026-11-24T09:00:00Z,acme-hq,icmp,up,1,0\n"
    lines = [
        HEADER.encode() + b"\n",
        good,
        good.replace(b"09:00", b"09:01"),
        b"2026-11-24T09:02:00Z,acme-hq,icmp,up,1,\x000\n",
        b"2026-11-24T09:03:00Z,acme-hq,icmp,down,,100\xe9\n",
    ]
    problems = check_file(lines, LINKS, TIMES, NOW).problems
    assert [(e.line, e.message) for e in problems] == [
        (4, "a NUL byte at column 40; a CSV file holds text only"),
        (5, "not UTF-8 text: byte 0xe9 at column 44; save the file as UTF-8"),
        (5, "loss_pct '100\ufffd' is not a number"),
    ]
    utf16 = [("\ufeff" + HEADER + "\n").encode("utf-16-le")]
    assert [(e.line, e.message) for e in check_file(utf16, LINKS, TIMES, NOW).problems] == [
        (1, "the file is UTF-16 text; save it as UTF-8")
    ]


def _config(directory: Path) -> Path:
    config = directory / "linkwatch.yaml"
    config.write_text(
        f"""\
data_dir: {directory}
customers: [{{id: acme, name: ACME}}]
links:
  - {{id: acme-hq, customer: acme, probes: [{{id: icmp, kind: icmp, host: 127.0.0.1}}]}}
"""
    )
    return config


def test_a_rejected_file_counts_its_bad_rows_not_its_problems(tmp_path: Path) -> None:
    config = _config(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        HEADER + "\n"
        "2026-11-24T10:00:00Z,acme-hq,icmp,sideways,fast,0\n"  # two problems
        "2026-11-24T10:01:00Z,acme-hq,icmp,up,1.5,0\n"
        "2026-11-24T10:02:00Z,acme-dc,icmp,up,1.5,0\n"
        "2026-11-24T10:03:00,acme-hq,icmp,up,1.5,0\n"
        "2026-11-24T10:04:00Z,acme-hq,snmp,up,1.5,0\n"
        "2026-11-24T10:05:00Z,acme-hq,icmp,up,1.5,140\n"
    )
    result = linkwatch("import", "samples", "--config", str(config), str(bad))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == f"linkwatch: {bad}: 5 bad rows (6 problems); nothing was imported"
    assert [line.split(": ")[0] for line in lines[1:]] == [
        f"  {bad}:2",
        f"  {bad}:2",
        f"  {bad}:4",
        f"  {bad}:5",
        f"  {bad}:6",
        f"  {bad}:7",
    ]
    assert not (tmp_path / "postgres").exists()  # rejected before any database was opened


def _stored(directory: Path) -> int:
    import psycopg

    with EmbeddedPostgres(directory) as server, psycopg.connect(server.url) as conn:
        row = conn.execute("SELECT count(*) FROM samples").fetchone()
    assert row is not None
    return int(row[0])


def test_import_command_is_all_or_nothing_and_idempotent(pg_data_dir: Path) -> None:
    config = _config(pg_data_dir)
    good = pg_data_dir / "good.csv"
    good.write_text(
        HEADER
        + "\n"
        + "".join(f"2026-11-24T09:{m:02d}:00Z,acme-hq,icmp,up,1.5,0\n" for m in range(30))
    )
    first = linkwatch("import", "samples", "--config", str(config), str(good))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"{good}: imported 30 samples, 30 new (0 already stored)"
    again = linkwatch("import", "samples", "--config", str(config), str(good))
    assert again.stdout.strip() == f"{good}: imported 30 samples, 0 new (30 already stored)"

    bad = pg_data_dir / "bad.csv"
    bad.write_text(
        HEADER + "\n"
        "2026-11-24T10:00:00Z,acme-hq,icmp,up,1.5,0\n"
        "2026-11-24T10:01:00Z,acme-hq,icmp,sideways,1.5,0\n"
        "2026-11-24T10:02:00Z,acme-hq,icmp,up,1.5,0\n"
        "2026-11-24T10:03:00,acme-hq,icmp,up,1.5,0\n"
    )
    rejected = linkwatch("import", "samples", "--config", str(config), str(bad))
    assert rejected.returncode == 2
    assert rejected.stderr.splitlines() == [
        f"linkwatch: {bad}: 2 bad rows; nothing was imported",
        f"  {bad}:3: outcome 'sideways' is not one of up, degraded, down, unknown",
        f"  {bad}:5: time '2026-11-24T10:03:00' has no UTC offset; add one, e.g."
        " 2026-11-24T10:03:00+01:00 or 2026-11-24T10:03:00Z",
    ]
    assert _stored(pg_data_dir) == 30  # none of the bad file's good rows either


def _rows(minutes: range, outcome: str = "up") -> str:
    rtt, loss = ("", "100") if outcome == "down" else ("1.5", "0")
    return "".join(
        f"2026-11-24T09:{m:02d}:00Z,acme-hq,icmp,{outcome},{rtt},{loss}\n" for m in minutes
    )


def _down_intervals(directory: Path) -> list[tuple[datetime, datetime | None]]:
    import psycopg

    with EmbeddedPostgres(directory) as server, psycopg.connect(server.url) as conn:
        rows = conn.execute(
            "SELECT starts_at, ends_at FROM link_states WHERE status = 'down' ORDER BY 1"
        ).fetchall()
    return [(start, end) for start, end in rows]


def test_a_correction_is_refused_whole_unless_replace_then_recorded_and_derived(
    pg_data_dir: Path,
) -> None:
    config = _config(pg_data_dir)
    first = pg_data_dir / "first.csv"
    first.write_text(HEADER + "\n" + _rows(range(30)))
    assert (
        linkwatch(
            "--log-level", "error", "import", "samples", "--config", str(config), str(first)
        ).returncode
        == 0
    )
    # The other monitor's corrected export: 09:10 to 09:14 were down, and five more minutes.
    corrected = pg_data_dir / "corrected.csv"
    corrected.write_text(
        HEADER + "\n" + _rows(range(10)) + _rows(range(10, 15), "down") + _rows(range(15, 35))
    )

    refused = linkwatch(
        "--log-level", "error", "import", "samples", "--config", str(config), str(corrected)
    )
    assert refused.returncode == 2
    lines = refused.stderr.splitlines()
    assert lines[0] == (
        f"linkwatch: {corrected}: 5 rows differ from the samples stored for the same link,"
        " probe and time; nothing was imported. To store the file's values instead, run again"
        " with --replace (each replacement is recorded in data_dir/import-audit.log with who,"
        " when and the file)"
    )
    assert lines[1] == (
        f"  {corrected}:12: acme-hq icmp at 2026-11-24T09:10:00Z: outcome stored up, file down;"
        " rtt_ms stored 1.5, file empty; loss_pct stored 0.0, file 100.0"
    )
    assert [line.split(": ")[0] for line in lines[1:]] == [
        f"  {corrected}:{n}" for n in range(12, 17)
    ]
    assert _stored(pg_data_dir) == 30  # not even the five new rows
    assert not (pg_data_dir / "import-audit.log").exists()
    assert _down_intervals(pg_data_dir) == []

    replaced = linkwatch(
        "--log-level",
        "error",
        "import",
        "samples",
        "--config",
        str(config),
        str(corrected),
        "--replace",
    )
    assert replaced.returncode == 0, replaced.stderr
    out = replaced.stdout.splitlines()
    assert out[0] == f"{corrected}: imported 35 samples, 5 new, 5 replaced (25 already stored)"
    assert out[1] == f"replacement recorded in {pg_data_dir / 'import-audit.log'}"
    assert "acme-hq: " in out[3]
    assert "down 0:00:00 -> 0:05:00" in out[3]
    assert _stored(pg_data_dir) == 35
    # The outage the correction reveals starts at its first down sample and ends at the
    # next up one.
    assert _down_intervals(pg_data_dir) == [
        (datetime(2026, 11, 24, 9, 10, tzinfo=UTC), datetime(2026, 11, 24, 9, 15, tzinfo=UTC))
    ]
    (entry,) = [
        json.loads(line) for line in (pg_data_dir / "import-audit.log").read_text().splitlines()
    ]
    assert entry["action"] == "samples replaced"
    assert entry["file"] == str(corrected)
    assert entry["sha256"] == hashlib.sha256(corrected.read_bytes()).hexdigest()
    assert (entry["replaced"], entry["new"], entry["unchanged"]) == (5, 5, 25)
    assert entry["links"] == ["acme-hq"]
    assert (entry["from"], entry["to"]) == ("2026-11-24T09:10:00Z", "2026-11-24T09:14:00Z")
    assert entry["user"].startswith(pwd.getpwuid(os.geteuid()).pw_name)
    assert entry["host"] == socket.gethostname()
    assert entry["at"].endswith("Z")

    again = linkwatch(
        "--log-level",
        "error",
        "import",
        "samples",
        "--config",
        str(config),
        str(corrected),
        "--replace",
    )
    assert again.stdout.splitlines() == [
        f"{corrected}: imported 35 samples, 0 new (35 already stored)"
    ]
    assert len((pg_data_dir / "import-audit.log").read_text().splitlines()) == 1


def test_a_replacement_that_cannot_be_recorded_is_not_made(pg_data_dir: Path) -> None:
    config = _config(pg_data_dir)
    first = pg_data_dir / "first.csv"
    first.write_text(HEADER + "\n" + _rows(range(5)))
    assert (
        linkwatch(
            "--log-level", "error", "import", "samples", "--config", str(config), str(first)
        ).returncode
        == 0
    )
    (pg_data_dir / "import-audit.log").mkdir()  # where the record must go, unwritable
    corrected = pg_data_dir / "corrected.csv"
    corrected.write_text(HEADER + "\n" + _rows(range(2), "down") + _rows(range(2, 8)))
    result = linkwatch(
        "--log-level",
        "error",
        "import",
        "samples",
        "--config",
        str(config),
        str(corrected),
        "--replace",
    )
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"linkwatch: {pg_data_dir / 'import-audit.log'}: cannot record the replacement"
    )
    assert "nothing was imported" in result.stderr
    assert "Traceback" not in result.stderr
    assert _stored(pg_data_dir) == 5
    assert _down_intervals(pg_data_dir) == []


def test_a_sample_dated_in_year_9999_is_refused_with_its_line(tmp_path: Path) -> None:
    # As a user met it: the row was stored, and the daemon could not start any more.
    config = _config(tmp_path)
    data = tmp_path / "export.csv"
    data.write_text(
        HEADER + "\n2026-11-24T09:00:00Z,acme-hq,icmp,up,1.5,0\n"
        "9999-12-31T23:59:59+00:00,acme-hq,icmp,down,,100\n"
    )
    result = linkwatch("import", "samples", "--config", str(config), str(data))
    assert result.returncode == 2
    first, second = result.stderr.splitlines()
    assert first == f"linkwatch: {data}: 1 bad row; nothing was imported"
    assert second.startswith(
        f"  {data}:3: time '9999-12-31T23:59:59+00:00' is in the future: more than 5 min after"
        " now ("
    )
    assert not (tmp_path / "postgres").exists()


def test_rows_giving_one_sample_two_values_are_refused_naming_both_lines(
    pg_data_dir: Path,
) -> None:
    config = _config(pg_data_dir)
    data = pg_data_dir / "export.csv"
    data.write_text(
        HEADER + "\n" + _rows(range(3)) + "2026-11-24T10:00:00+01:00,acme-hq,icmp,up,1.5,0\n"
        "2026-11-24T09:01:00Z,acme-hq,icmp,down,,100\n"  # line 6: line 3 said up
    )
    result = linkwatch(
        "--log-level", "error", "import", "samples", "--config", str(config), str(data)
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"linkwatch: {data}: 1 row gives a sample other values than an earlier row of the file;"
        " nothing was imported",
        f"  {data}:6: the same sample (acme-hq icmp at 2026-11-24T09:01:00Z) as line 3, with"
        " other values; keep one of the two rows",
    ]
    assert _stored(pg_data_dir) == 0
    # The same sample twice with the same values (line 5 repeats line 2) is one sample.
    data.write_text(HEADER + "\n" + _rows(range(3)) + _rows(range(1)))
    result = linkwatch("import", "samples", "--config", str(config), str(data))
    assert result.stdout.strip() == f"{data}: imported 3 samples, 3 new (0 already stored)"


@dataclass(frozen=True)
class _FailingProbe:
    """A probe whose states cannot be derived: anything going wrong past the samples."""

    id: str = "icmp"
    interval: timedelta = timedelta(minutes=1)
    stale_after: timedelta | None = None
    availability: bool = True

    @property
    def confirm(self) -> int:
        raise RuntimeError("deriving failed")


@dataclass(frozen=True)
class _Link:
    id: str
    customer: str
    probes: tuple[Any, ...]
    quorum: int = 1


async def test_samples_and_their_states_are_stored_together_or_not_at_all(
    database: Database,
) -> None:
    good = _Link("acme-hq", "acme", (LINKS[0].probes[0],))
    failing = _Link("acme-dc", "acme", (_FailingProbe(),))
    staged = io.BytesIO()
    lines = _lines(HEADER, *[r.replace("acme-hq", link) for link in ("acme-hq", "acme-dc")
                             for r in _rows(range(5)).splitlines()])  # fmt: skip
    assert check_file(lines, [good, failing], TIMES, NOW, staged).ok

    with pytest.raises(RuntimeError, match="deriving failed"):
        await import_samples(database, staged, [good, failing])
    async with database.connection() as conn:
        counts = await (
            await conn.execute(
                "SELECT (SELECT count(*) FROM samples), (SELECT count(*) FROM link_states)"
            )
        ).fetchone()
    assert counts == (0, 0)  # not even the good link's samples or states

    report = await import_samples(
        database, staged, [good, _Link("acme-dc", "acme", LINKS[0].probes)]
    )
    assert (report.rows, report.stored) == (10, 10)
    async with database.connection() as conn:
        links = await (
            await conn.execute("SELECT DISTINCT link_id FROM link_states ORDER BY 1")
        ).fetchall()
    assert links == [("acme-dc",), ("acme-hq",)]


_CELLS = {
    "time": st.sampled_from(
        [
            "2026-11-24T09:00:00Z",
            "2026-11-24T10:00:00.5+01:00",
            " 2026-11-25T12:04:00Z ",
            "2026-11-25T12:06:00Z",
            "2026-11-25T12:05:00Z",  # the last moment the skew allows
            "2016-11-17T12:00:00Z",  # the first the horizon allows
            "2016-11-17T11:59:59.999999Z",
            "2026-11-24T09:00:00",
            "9999-12-31T23:00:00-05:00",
            "0001-01-01T00:00:00Z",
            "yesterday",
            "",
        ]
    ),
    "link": st.sampled_from(["acme-hq", " acme-hq", "acme-dc", ""]),
    "probe": st.sampled_from(["icmp", "snmp", "ICMP"]),
    "outcome": st.sampled_from(["up", "DOWN", " degraded ", "unknown", "flaky", ""]),
    "number": st.sampled_from(
        ["", "1.5", " 2 ", "0", "-0", "-1", "nan", "inf", "1e400", "1e-5", "1_0", "x", "100", "150"]
    ),
    "error": st.text(alphabet="ab\t\\\n\r ,\"'é", max_size=6),
}


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            _CELLS["time"],
            _CELLS["link"],
            _CELLS["probe"],
            _CELLS["outcome"],
            _CELLS["number"],
            _CELLS["number"],
            _CELLS["number"],
            _CELLS["error"],
        ),
        max_size=6,
    )
)
def test_the_fast_way_through_a_row_agrees_with_the_full_check(
    rows: list[tuple[str, ...]],
) -> None:
    # Good rows take a short way to the staged COPY text; it must accept exactly what
    # the full check accepts, and stage it exactly as that would.
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["time", "link", "probe", "outcome", "rtt_ms", "jitter_ms", "loss_pct", "error"]
    )
    writer.writerows(rows)
    lines = list(io.BytesIO(out.getvalue().encode()))  # split as a file is read
    slow = FileCheck()
    expected = "".join(_copy_text(row) for row in file_rows(lines, LINKS, TIMES, NOW, slow))
    staged = io.BytesIO()
    fast = check_file(lines, LINKS, TIMES, NOW, staged)
    assert staged.getvalue().decode() == expected
    if rows:
        assert fast.problems == slow.problems
    else:
        assert [e.message for e in fast.problems] == ["the file has a header but no rows"]


def test_deleting_samples_names_a_wrong_link_probe_or_range(tmp_path: Path) -> None:
    config = _config(tmp_path)
    for args, message in [
        (["--link", "acme-dc"], "linkwatch: --link 'acme-dc' is not a link in the config"),
        (
            ["--link", "acme-hq", "--probe", "snmp"],
            "linkwatch: --probe 'snmp': link acme-hq has no such probe; its probes: icmp",
        ),
        (
            ["--link", "acme-hq", "--to", "2026-01-01T00:00:00Z"],
            "linkwatch: --to 2026-01-01T00:00:00Z is not after --from 2026-11-01T00:00:00Z",
        ),
    ]:
        result = linkwatch(
            "db", "delete-samples", "--config", str(config),
            "--from", "2026-11-01T00:00:00Z", *args,
        )  # fmt: skip
        assert (result.returncode, result.stderr.strip()) == (2, message)
    assert not (tmp_path / "postgres").exists()


def test_a_file_of_many_bad_rows_counts_them_all_and_shows_the_first() -> None:
    rows = ["2026-11-24T09:00:00Z,acme-hq,icmp,sideways,fast,0"] * 1500
    check = check_file(_lines(HEADER, *rows), LINKS, TIMES, NOW)
    assert (check.bad_rows, check.problem_count) == (1500, 3000)  # two problems a row
    assert len(check.problems) == 1000
    assert check.problems[-1].line == 501
