"""The one exception hierarchy of Linkwatch.

Every error a user can cause or fix (a bad config, an unreachable database) is a
`LinkwatchError` whose message says what is wrong and what to do; the CLI prints it
without a traceback. Programming errors are not wrapped and propagate as they are.
"""

from __future__ import annotations

from dataclasses import dataclass


class LinkwatchError(Exception):
    """Base of every error Linkwatch reports to a user."""

    exit_code = 1  # the command line's exit status for it; 2 means "fix your input"


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One mistake in a configuration file."""

    path: str  # e.g. "links[0].probes[1].interval"
    message: str  # what is wrong and what is allowed
    line: int | None = None  # 1-based line in the YAML file, when known

    def render(self, source: str | None = None) -> str:
        where = source or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        prefix = f"{where}: " if where else ""
        return f"{prefix}{self.path or '(top level)'}: {self.message}"


class ConfigError(LinkwatchError):
    """A configuration file is invalid; carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: list[ConfigProblem], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        count = len(problems)
        header = f"{source or 'configuration'}: {count} problem{'s' if count != 1 else ''}"
        lines = [header, *(f"  {p.render(source)}" for p in problems)]
        super().__init__("\n".join(lines))


class DatabaseError(LinkwatchError):
    """The database cannot be reached, started or migrated."""


class NoDatabase(DatabaseError):
    """Nothing has been stored where the config points: no database, or one without
    Linkwatch's tables. Commands that only read say so rather than create one."""
