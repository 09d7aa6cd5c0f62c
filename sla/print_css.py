"""Text put into a report's print stylesheet (the running header of every printed page).

A customer's name is theirs to choose, so in a CSS string every character but letters,
digits and a few harmless ones is written as a hex escape: no quote, backslash or `<`
can end the string or the `<style>` element it stands in.
"""

from __future__ import annotations

from markupsafe import Markup

_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,-")


def css_string(text: str) -> Markup:
    """`text` as a double-quoted CSS string, safe inside an HTML `<style>` element."""
    # Six hex digits and a space: the space ends the escape and is consumed with it.
    body = "".join(c if c in _PLAIN else f"\\{ord(c):06x} " for c in text)
    return Markup(f'"{body}"')  # noqa: S704 - every character is escaped or a plain one
