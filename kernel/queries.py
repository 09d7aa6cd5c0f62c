"""Named SQL statements, kept as `.sql` files beside the code that runs them.

Queries are files so that they can be read, diffed and run in psql as they are;
parameters are always bound by psycopg, never formatted into the text. Each package that
talks SQL has a `queries` module whose `query(name)` reads `<package>/sql/<name>.sql`:
the loader below, made once per package.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import resources


def loader(package: str) -> Callable[[str], str]:
    """`query(name)`: the text of `<package>/sql/<name>.sql`, read once."""

    @cache
    def query(name: str) -> str:
        return (resources.files(package) / "sql" / f"{name}.sql").read_text(encoding="utf-8")

    return query
