"""Printing a report's HTML to PDF with headless Chromium, the browser a customer reads it in.

The PDF is the same HTML document the portal serves, printed by Chromium's own
print-to-PDF: the report's print stylesheet (`@page` margin boxes for the page numbers
and the running header, rows that never split, table headers repeated) lays it out, so
the file and the browser's print preview agree. Chromium runs as a separate program
(Debian's `chromium`) with a throw-away profile, one print per process, under a deadline.

It never fetches anything: the document is a local file with its stylesheet inline, and
the browser starts with its background traffic off. A missing browser is a
`PdfEngineMissing` naming what to install, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
from pathlib import Path

from kernel.errors import LinkwatchError

log = logging.getLogger(__name__)

# The names Chromium goes by on Debian (chromium) and elsewhere.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = (
    "PDF reports are printed by Chromium, which is not installed: "
    "install it (on Debian: apt-get install chromium) and try again"
)
DEADLINE_S = 60.0  # a month's report prints in about a second; far past that it is stuck
CONCURRENCY = 2  # each print is a whole browser: a few at a time on a small machine

# Headless, no sandbox (it cannot start as root with one), and nothing sent anywhere:
# the report needs no network, so names resolve to nothing and no update is looked for.
ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--no-pdf-header-footer",  # the report's own @page boxes say what each page needs
)


class PdfError(LinkwatchError):
    """The report could not be printed to PDF; the message says why."""


class PdfEngineMissing(PdfError):
    """No Chromium to print with: the message names what to install."""


def find_browser() -> str | None:
    """The Chromium program on PATH, or None."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found is not None:
            return found
    return None


def require_browser() -> str:
    """The Chromium program on PATH; `PdfEngineMissing` naming what to install if none."""
    found = find_browser()
    if found is None:
        raise PdfEngineMissing(INSTALL_HINT)
    return found


class PdfPrinter:
    """Prints HTML documents to PDF, at most `concurrency` at a time."""

    def __init__(self, *, concurrency: int = CONCURRENCY, deadline_s: float = DEADLINE_S) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._deadline_s = deadline_s

    async def print_pdf(self, html: str) -> bytes:
        """`html` (a self-contained document) as a PDF.

        Raises `PdfEngineMissing` when Chromium is not installed, `PdfError` when it
        fails or overruns the deadline."""
        browser = require_browser()  # looked up each time: installing it needs no restart
        async with self._slots:
            workdir = await asyncio.to_thread(tempfile.mkdtemp, prefix="linkwatch-pdf-")
            try:
                return await self._print(browser, Path(workdir), html)
            finally:
                await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def _print(self, browser: str, workdir: Path, html: str) -> bytes:
        document = workdir / "report.html"
        output = workdir / "report.pdf"
        await asyncio.to_thread(document.write_text, html, "utf-8")
        command = [
            browser,
            *ARGS,
            f"--user-data-dir={workdir / 'profile'}",  # its own: prints never share a browser
            f"--print-to-pdf={output}",
            document.as_uri(),
        ]
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its helpers in one group, to end them together
            )
        except OSError as exc:
            raise PdfError(f"cannot start {browser} to print the PDF: {exc}") from None
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), self._deadline_s)
        except TimeoutError:
            _end(process)
            await process.wait()
            raise PdfError(
                f"{browser} did not print the PDF within {self._deadline_s:g} s"
            ) from None
        except BaseException:
            _end(process)
            raise
        pdf = await asyncio.to_thread(_read, output)
        if process.returncode != 0 or not pdf.startswith(b"%PDF-"):
            last = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            log.warning("pdf print failed browser=%s status=%s", browser, process.returncode)
            raise PdfError(
                f"{browser} could not print the PDF (exit status {process.returncode}): {last[0]}"
            )
        log.debug("pdf printed browser=%s bytes=%d", browser, len(pdf))
        return pdf


def _end(process: asyncio.subprocess.Process) -> None:
    """Stop a browser and the helpers it started (one process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
