"""The raw config data as the checks read it: paths into it, and its lists and mappings.

Anything not a list or mapping where one is expected is left to field validation, which
reports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Path_ = tuple[str | int, ...]


def _render_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _mappings(value: object) -> list[tuple[int, dict[str, Any]]]:
    """The mappings of a YAML list, with their indexes (anything else is left to the
    field validation, which reports it)."""
    listed = value if isinstance(value, list) else []
    return [(i, item) for i, item in enumerate(listed) if isinstance(item, dict)]


def _list(value: object) -> Sequence[object]:
    return value if isinstance(value, list) else []
