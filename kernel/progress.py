"""How far a long command has come, told to the person waiting at a terminal.

The long commands (`import samples`, `db rebuild-states`, `credits refresh`) run in
stages (checking a file, storing it, deriving states, computing windows), each with a
known amount of work. The code doing the work reports to a `Progress`: `stage()` when a
stage begins, `update()` as it goes, `finish()` when the command is done (`abandon()` when it
fails). `Progress`
itself reports nowhere, so library code takes one by default and costs nothing when
nobody watches; `progress_for(stream)` gives a `TerminalProgress` when the stream is a
terminal (one line, rewritten at most ten times a second; each finished stage left as a
line with its time; a log line written to the same terminal goes above it) and a silent
one otherwise, so output that goes to a file or a pipe
holds no progress at all.

Updates may come from a worker thread (the file check runs in one); a stage's updates
come from one thread at a time. Imports no package of ours but the kernel's own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TextIO

from kernel.formatting import count_of

_BYTES = "bytes"
_MB = 1_000_000


class Progress:
    """A long command's progress, reported nowhere (the default for library code).

    As a context manager: `finish()` when the block ends, `abandon()` when it raises."""

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.finish()
        else:
            self.abandon()

    def stage(self, what: str, total: int | None = None, unit: str = "") -> None:
        """A stage begins: `what` it does, and how much work (`total` of `unit`, e.g.
        bytes or samples; None where the amount is not known)."""

    def update(self, done: int) -> None:
        """How much of the stage's work is done so far (not an increment)."""

    def finish(self) -> None:
        """The command is done: the last stage ends."""

    def abandon(self) -> None:
        """The command failed: the stage under way is not reported as done."""


class TerminalProgress(Progress):
    """Progress on a terminal's line: "storing samples  42 %  22 of 53 MB  3 s"."""

    def __init__(
        self,
        stream: TextIO,
        *,
        clock: Callable[[], float] = time.monotonic,
        every: float = 0.1,
    ) -> None:
        self._stream = stream
        self._clock = clock
        self._every = every
        self._what: str | None = None
        self._total: int | None = None
        self._unit = ""
        self._done = 0
        self._began = 0.0
        self._shown = -float("inf")
        self._handlers: list[logging.StreamHandler[Any]] = []

    def __enter__(self) -> TerminalProgress:
        # Log lines to this terminal go above the progress line, not into it.
        self._handlers = [
            h
            for h in logging.getLogger().handlers
            if isinstance(h, logging.StreamHandler) and h.stream is self._stream
        ]
        for handler in self._handlers:
            handler.setStream(_Above(self))
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        for handler in self._handlers:
            handler.setStream(self._stream)
        self._handlers = []
        super().__exit__(kind, *rest)

    def stage(self, what: str, total: int | None = None, unit: str = "") -> None:
        self._end_stage()
        self._what, self._total, self._unit, self._done = what, total, unit, 0
        self._began = self._clock()
        self._shown = -float("inf")
        self._show()

    def update(self, done: int) -> None:
        if self._what is None:
            return
        self._done = done
        if self._clock() - self._shown >= self._every:
            self._show()

    def finish(self) -> None:
        self._end_stage()

    def abandon(self) -> None:
        if self._what is not None:
            self._write("")  # an error message follows on a clean line
            self._what = None

    def _end_stage(self) -> None:
        if self._what is None:
            return
        seconds = self._clock() - self._began
        amount = _amount(self._done if self._total is None else self._total, None, self._unit)
        self._write(f"{self._what}: {amount}{', ' if amount else ''}{seconds:.1f} s\n")
        self._what = None

    def _show(self) -> None:
        self._shown = now = self._clock()
        parts = [self._what or ""]
        if self._total:
            parts.append(f"{min(100, 100 * self._done // self._total):3d} %")
        parts.append(_amount(self._done, self._total, self._unit))
        parts.append(f"{now - self._began:.0f} s")
        self._write("  ".join(part for part in parts if part))

    def _write(self, text: str) -> None:
        # Back to the line's start and clear it: the line is rewritten in place.
        self._stream.write("\r\x1b[K" + text)
        self._stream.flush()

    def _above(self, text: str) -> None:
        """Write a line of someone else's above the progress line, and draw it again."""
        self._write(text)
        if self._what is not None and text.endswith("\n"):
            self._show()


class _Above:
    """The stream a log handler writes to while progress is shown on its terminal."""

    def __init__(self, progress: TerminalProgress) -> None:
        self._progress = progress

    def write(self, text: str) -> int:
        self._progress._above(text)
        return len(text)

    def flush(self) -> None:
        self._progress._stream.flush()


def _amount(done: int, total: int | None, unit: str) -> str:
    """ "22 of 53 MB", "1,204 of 5,000 samples", "1,204 samples"; nothing without a unit
    (the percentage says it all)."""
    if not unit:
        return ""
    if unit == _BYTES:
        shown = f"{done / _MB:,.0f}"
        return f"{shown} of {total / _MB:,.0f} MB" if total is not None else f"{shown} MB"
    if total is not None:
        return f"{done:,} of {count_of(total, unit.removesuffix('s'), unit)}"
    return count_of(done, unit.removesuffix("s"), unit)


def progress_for(stream: TextIO) -> Progress:
    """A terminal's progress on `stream` when it is one; otherwise a silent one."""
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):  # no such method, or the stream is closed
        terminal = False
    return TerminalProgress(stream) if terminal else Progress()
