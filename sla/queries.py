"""Named SQL statements of the SLA package, loaded from the `.sql` files next to it.

Parameters are always bound by psycopg, never formatted into the text.
"""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def query(name: str) -> str:
    """Return the text of ``sla/sql/<name>.sql``."""
    return (resources.files(__package__) / "sql" / f"{name}.sql").read_text(encoding="utf-8")
