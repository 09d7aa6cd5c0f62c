"""Query-string parameters read the same way by the pages and the API: a value outside
what is allowed is a 400 that names the parameter, the value and what is allowed."""

from __future__ import annotations

from collections.abc import Mapping

from portal.middleware import bad_request


def choice(query: Mapping[str, str], name: str, allowed: Mapping[str, object] | tuple[str, ...],
           default: str) -> str:  # fmt: skip
    value = query.get(name, default)
    if value not in allowed:
        raise bad_request(f"{name}={value!r} is not allowed; use one of {', '.join(allowed)}")
    return value
