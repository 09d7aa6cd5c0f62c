"""The long commands show how far they have come on a terminal, and only there.

The renderer's rules with a fake clock; the commands (`import samples`, `db
rebuild-states`, `credits refresh`) with their error stream on a real pseudo-terminal,
as a person at a shell sees them, and on a pipe, as a script sees them.
"""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from kernel.progress import Progress, TerminalProgress, progress_for
from tests.helpers import REPO, linkwatch

CLEAR = "\r\x1b[K"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _shown(text: str) -> list[str]:
    """What a terminal shows at each rewrite of its line."""
    return [part for part in text.split(CLEAR) if part]


def test_a_stage_is_shown_with_its_share_and_left_as_a_line_when_done() -> None:
    screen, clock = _Terminal(), _Clock()
    progress = TerminalProgress(screen, clock=clock)
    progress.stage("checking the file", 53_000_000, "bytes")
    progress.update(10_000_000)  # within a tenth of a second of the last: not drawn
    clock.now += 1.5
    progress.update(22_000_000)
    clock.now += 1.0
    progress.stage("deriving states", 4_000, "samples")
    clock.now += 0.5
    progress.update(1_204)
    progress.finish()
    assert _shown(screen.getvalue()) == [
        "checking the file    0 %  0 of 53 MB  0 s",
        "checking the file   41 %  22 of 53 MB  2 s",
        "checking the file: 53 MB, 2.5 s\n",
        "deriving states    0 %  0 of 4,000 samples  0 s",
        "deriving states   30 %  1,204 of 4,000 samples  0 s",
        "deriving states: 4,000 samples, 0.5 s\n",
    ]


def test_a_stage_without_an_amount_shows_its_time_and_a_failure_is_not_called_done() -> None:
    screen, clock = _Terminal(), _Clock()
    with TerminalProgress(screen, clock=clock) as progress:
        progress.stage("storing the samples")
        clock.now += 4.2
        progress.stage("computing windows", 3, "windows")
        progress.update(1)
    assert _shown(screen.getvalue())[:3] == [
        "storing the samples  0 s",
        "storing the samples: 4.2 s\n",
        "computing windows    0 %  0 of 3 windows  0 s",
    ]
    assert screen.getvalue().endswith("computing windows: 3 windows, 0.0 s\n")

    failed = _Terminal()
    try:
        with TerminalProgress(failed, clock=clock) as progress:
            progress.stage("checking the file", 100, "bytes")
            raise ValueError("a bad row")
    except ValueError:
        pass
    # The line is cleared for the error message; the stage is not reported as done.
    assert failed.getvalue().endswith(CLEAR)
    assert "checking the file:" not in failed.getvalue()


def test_progress_goes_nowhere_but_a_terminal() -> None:
    piped = io.StringIO()
    quiet = progress_for(piped)
    assert type(quiet) is Progress
    quiet.stage("checking the file", 10, "bytes")
    quiet.update(5)
    quiet.finish()
    assert piped.getvalue() == ""
    assert isinstance(progress_for(_Terminal()), TerminalProgress)


def _on_a_terminal(*args: str) -> tuple[int, str, str]:
    """Run `linkwatch` with its error stream on a pseudo-terminal: exit status, standard
    output, and what the terminal received."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "linkwatch", *args],
        stdout=subprocess.PIPE,
        stderr=terminal,
        cwd=REPO,
    )
    os.close(terminal)
    received = b""
    while True:
        try:
            data = os.read(controller, 65536)
        except OSError:  # the terminal's last writer is gone
            break
        if not data:
            break
        received += data
    os.close(controller)
    assert process.stdout is not None
    out = process.stdout.read().decode()
    # A terminal ends each line with a carriage return as well.
    return process.wait(timeout=120), out, received.decode().replace("\r\n", "\n")


def test_long_commands_show_their_stages_on_a_terminal_and_nothing_on_a_pipe(
    pg_data_dir: Path,
) -> None:
    config = pg_data_dir / "linkwatch.yaml"
    config.write_text(
        f"data_dir: {pg_data_dir}\n"
        "customers: [{id: acme, name: ACME}]\n"
        "links: [{id: hq, customer: acme, probes: [{id: icmp, kind: icmp, host: 127.0.0.1}]}]\n"
        "contracts: [{id: gold, customer: acme, links: [hq], target: 99.5, window: week}]\n"
    )
    samples = pg_data_dir / "samples.csv"
    samples.write_text(
        "time,link,probe,outcome,rtt_ms,loss_pct\n"
        + "".join(
            f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:00Z,hq,icmp,up,1.5,0\n"
            for day in (23, 24)
            for hour in range(24)
            for minute in range(60)
        )
    )
    c = str(config)
    status, out, shown = _on_a_terminal("import", "samples", "--config", c, str(samples))
    assert status == 0, shown
    assert out.strip() == f"{samples}: imported 2,880 samples, 2,880 new (0 already stored)"
    lines = shown.replace(CLEAR, "\n").splitlines()
    size = f"{samples.stat().st_size / 1e6:.0f} MB"
    assert f"checking the file    0 %  0 of {size}  0 s" in lines
    # Each finished stage stays as a line: "what: amount, seconds".
    done = [line for line in lines if ": " in line and line.endswith(" s")]
    stages = [line.split(":")[0] for line in done]
    assert stages == [
        "checking the file",
        "opening the database",
        "loading the rows",
        "storing the samples",
        "deriving states",
        "rolling up",
        "computing windows",
        "writing ledger rows",
    ]
    assert done[0].startswith(f"checking the file: {size}, ")
    assert done[4].startswith("deriving states: 2,880 samples, ")

    status, out, shown = _on_a_terminal(
        "db", "rebuild-states", "--config", c,
        "--from", "2026-11-23T00:00:00Z", "--to", "2026-11-25T00:00:00Z",
    )  # fmt: skip
    assert status == 0, shown
    assert out.startswith("rebuilt states from 2026-11-23T00:00:00+00:00"), out
    rewrites = _shown(shown)
    assert "deriving states    0 %  0 s" in rewrites
    assert any(line.startswith("deriving states: ") for line in rewrites)
    # The log's lines go above the progress line, never into it.
    logged = [line for line in rewrites if " INFO " in line]
    assert logged
    assert all(line.startswith("20") for line in logged), logged

    status, out, shown = _on_a_terminal("credits", "refresh", "--config", c)
    assert status == 0, shown
    # How many weeks there are depends on today's date: from the samples' week to now.
    assert out.startswith("ledger: "), out
    finished = [line for line in _shown(shown) if line.endswith(" s\n")]
    assert re.fullmatch(r"computing windows: \d+ windows, \d+\.\d s\n", finished[-2]), shown
    assert re.fullmatch(r"writing ledger rows: [1-9]\d* rows?, \d+\.\d s\n", finished[-1]), shown

    # The same commands into a pipe: the output a script reads holds no progress.
    piped = linkwatch("credits", "refresh", "--config", c)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.startswith("ledger: "), piped.stdout
    assert "\r" not in piped.stderr
    assert "computing windows" not in piped.stderr
