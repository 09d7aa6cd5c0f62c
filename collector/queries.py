"""Named SQL statements, loaded from the `.sql` files next to this module.

Queries are files so they can be read, diffed and run in psql as they are; parameters are
always bound by psycopg, never formatted into the text.
"""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def query(name: str) -> str:
    """Return the text of ``collector/sql/<name>.sql``."""
    return (resources.files(__package__) / "sql" / f"{name}.sql").read_text(encoding="utf-8")
