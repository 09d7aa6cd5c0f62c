"""Helpers for tests that drive Linkwatch as a user would: files, processes, HTTP."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from html import unescape
from pathlib import Path

import aiohttp
import pytest
from argon2 import PasswordHasher

# Cheap parameters: the tests check behaviour, not the hash's strength.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def linkwatch(
    *args: str,
    stdin: str | None = None,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the `linkwatch` command as a user would, in a fresh process (with `env` as its
    whole environment, when given)."""
    return subprocess.run(
        [sys.executable, "-m", "linkwatch", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
        cwd=REPO,
        check=False,
        env=env,
    )


def start_linkwatch(*args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "linkwatch", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )


@contextmanager
def stopped_after(
    proc: subprocess.Popen[bytes], log: Path, *, timeout_s: float = 60
) -> Iterator[subprocess.Popen[bytes]]:
    """Keep `proc` (a `linkwatch` daemon whose output goes to `log`) running for the
    block, then stop it as an operator would: SIGTERM, and it must exit 0 within
    `timeout_s` (a block that stopped the process itself and collected its exit status
    has checked it already). A block that fails kills the process and prints its log, so
    that the failure report shows what the daemon said."""
    try:
        yield proc
    except BaseException:
        _kill(proc)
        print(f"--- output of pid {proc.pid}, {log} ---\n{_read(log)}", file=sys.stderr)
        raise
    if proc.returncode is None:
        stop(proc, log, timeout_s=timeout_s)


def stop(
    proc: subprocess.Popen[bytes],
    log: Path,
    sig: signal.Signals = signal.SIGTERM,
    *,
    timeout_s: float = 60,
) -> None:
    """Send `sig` to `proc` and require a clean exit (status 0) within `timeout_s`."""
    proc.send_signal(sig)
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill(proc)
        pytest.fail(f"still running {timeout_s:g} s after {sig.name}, killed:\n{_read(log)}")
    assert code == 0, _read(log)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _read(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else "(no log written)"


def browser() -> aiohttp.ClientSession:
    """A client that keeps cookies for 127.0.0.1, as a browser does (aiohttp's default
    jar ignores cookies from IP addresses)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(session: aiohttp.ClientSession, base: str, user: str, password: str) -> str:
    """Sign in through the login form (CSRF token included); return the link board."""
    async with session.get(f"{base}/login") as response:
        form = await response.text()
    match = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert match, form
    data = {"csrf_token": match.group(1), "username": user, "password": password, "next": "/links"}
    async with session.post(f"{base}/login", data=data) as response:
        assert response.status == 200, await response.text()
        return await response.text()


def text_of(html: str) -> str:
    """What a reader sees of `html`: tags dropped, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def words(html: str) -> str:
    """What a reader sees of `html` with its figures' units still attached: SVG left out,
    tags dropped, entities decoded, runs of spaces and newlines collapsed, but the
    no-break space between a number and its unit kept."""
    text = re.sub(r"<svg.*?</svg>", " ", html, flags=re.DOTALL)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"[ \t\r\n]+", " ", unescape(text))


def _rows(html: str) -> list[str]:
    return re.findall(r"<tr\b.*?</tr>", html, flags=re.S)


def board_row(html: str, link_id: str) -> str:
    """The links board's table row of `link_id`, from `<tr` to `</tr>`."""
    (row,) = [r for r in _rows(html) if f'<a class="link-id" href="/links/{link_id}">' in r]
    return row


def table_row(html: str, marker: str) -> str:
    """The one table row of `html` that contains `marker`, from `<tr` to `</tr>`."""
    (row,) = [r for r in _rows(html) if marker in r]
    return row


def cell(row: str, label: str) -> str:
    """What a reader sees of the cell of `row` whose `data-label` is `label` (the column
    name a narrow screen shows beside it), no-break spaces kept."""
    found = re.search(rf'<td data-label="{re.escape(label)}"[^>]*>(.*?)</td>', row, flags=re.S)
    assert found, f"no {label!r} cell in the row"
    return words(found.group(1)).strip()


def heading(html: str) -> str:
    """What a reader sees of the page's `<h1>`."""
    found = re.search(r"<h1\b[^>]*>(.*?)</h1>", html, flags=re.S)
    assert found, "no <h1> in the page"
    return text_of(found.group(1))


def probe_row(html: str, probe_id: str) -> str:
    """The row of `probe_id` in a link page's table of probes, from `<tr` to `</tr>`."""
    table = element(html, "table", "probes")
    (row,) = [r for r in _rows(table) if f'<td data-label="Probe">{probe_id}</td>' in r]
    return row


def element(html: str, tag: str, css_class: str) -> str:
    """The first `tag` element carrying `css_class`, from its start tag to its own end
    tag (elements of the same tag nested inside it included)."""
    found = elements(html, tag, css_class)
    assert found, f"no <{tag} class={css_class!r}> in the page"
    return found[0]


def elements(html: str, tag: str, css_class: str) -> list[str]:
    """Every `tag` element carrying `css_class`, in page order, each as `element` gives it."""
    starts = re.finditer(
        rf'<{tag}\b[^>]*\bclass="(?:[^"]*\s)?{re.escape(css_class)}(?:\s[^"]*)?"', html
    )
    return [_through_end_tag(html, tag, s.start(), f"<{tag} class={css_class!r}>") for s in starts]


def element_by_id(html: str, tag: str, element_id: str) -> str:
    """The `tag` element whose id is `element_id`, from its start tag to its own end tag."""
    start = re.search(rf'<{tag}\b[^>]*\bid="{re.escape(element_id)}"', html)
    assert start, f"no <{tag} id={element_id!r}> in the page"
    return _through_end_tag(html, tag, start.start(), f"<{tag} id={element_id!r}>")


def section(html: str, label: str) -> str:
    """The one `<section>` that `label` names: the id of the heading that labels it
    (`aria-labelledby`) or its own `aria-label`; from its start tag to its own end tag."""
    starts = list(re.finditer(rf'<section\b[^>]*\baria-label(?:ledby)?="{re.escape(label)}"', html))
    assert len(starts) == 1, f"{len(starts)} sections labelled {label!r} in the page"
    return _through_end_tag(html, "section", starts[0].start(), f"<section {label!r}>")


def _through_end_tag(html: str, tag: str, start: int, what: str) -> str:
    """`html` from the start tag at `start` to the end tag that closes it."""
    depth = 0
    for match in re.finditer(rf"<(/?){tag}\b[^>]*>", html[start:]):
        depth += -1 if match.group(1) else 1
        if depth == 0:
            return html[start : start + match.end()]
    raise AssertionError(f"{what} is never closed")


def board_statuses(page: str) -> list[tuple[str, str]]:
    """(link id, status) of each row of the links board, in the order shown."""
    return [
        (link, status)
        for status, link in re.findall(
            r'<tr class="row-(\w+)">.*?<a class="link-id" href="/links/[^"]+">([^<]+)</a>',
            page,
            flags=re.S,
        )
    ]


def wait_for(
    what: str,
    check: Callable[[], bool],
    timeout_s: float,
    proc: subprocess.Popen[bytes],
    log: Path,
) -> None:
    """Poll `check` until it holds; fail with the process log if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"linkwatch exited with {proc.returncode} while waiting for {what}:\n"
                f"{log.read_text()}"
            )
        if check():
            return
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()}")


async def until(
    what: str, check: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path, within_s: float
) -> None:
    """`wait_for` for a test on the event loop: poll `check` without blocking the loop."""
    deadline = time.monotonic() + within_s
    while not check():
        if proc.poll() is not None:
            output = await asyncio.to_thread(log.read_text)
            pytest.fail(f"linkwatch exited with {proc.returncode} waiting for {what}:\n{output}")
        if time.monotonic() > deadline:
            output = await asyncio.to_thread(log.read_text)
            pytest.fail(f"timed out waiting for {what}:\n{output}")
        await asyncio.sleep(0.2)


def _timescaledb_bindir() -> Path | None:
    """A PostgreSQL bin directory whose installation has the timescaledb extension:
    LINKWATCH_TEST_TIMESCALEDB_BINDIR if set, else the newest /usr/lib/postgresql/*/bin."""
    from collector.embedded import BINDIR_ENV, find_binaries
    from kernel.errors import DatabaseError

    override = os.environ.get("LINKWATCH_TEST_TIMESCALEDB_BINDIR")
    candidates = [Path(override)] if override else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    saved = os.environ.get(BINDIR_ENV)
    try:
        for candidate in candidates:
            os.environ[BINDIR_ENV] = str(candidate)
            try:
                if find_binaries().timescaledb:
                    return candidate
            except DatabaseError:
                continue
    finally:
        if saved is None:
            os.environ.pop(BINDIR_ENV, None)
        else:
            os.environ[BINDIR_ENV] = saved
    return None


TIMESCALEDB_BINDIR = _timescaledb_bindir()
NO_TIMESCALEDB = TIMESCALEDB_BINDIR is None
TIMESCALEDB_SKIP_REASON = (
    "the timescaledb extension is not installed for any PostgreSQL here (looked at "
    "LINKWATCH_TEST_TIMESCALEDB_BINDIR and /usr/lib/postgresql/*/bin)"
)
