"""What the API's parameters take: the patterns `portal.api.params` checks every
parameter against, exactly as the OpenAPI document states them. A value they allow is
read, a value they refuse is a 400, so the document promises exactly what is accepted.

They use only what ECMA-262 and Python's `re` read alike (classes, groups, alternation,
counts), so a client validating against the document and the API agree. Pure data.
"""

from __future__ import annotations

from portal.api.openapi import JsonSchema

# Years 1970 to 9998: nothing measured predates the epoch, and 9998 keeps every time in
# any UTC offset, and the end of every window, within the years Python and PostgreSQL hold.
YEARS = "1970 to 9998"
_YEAR = r"(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
_DATE = _YEAR + r"-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
# No leap second (:60): Python's datetime has none. Fractions beyond the microsecond are cut.
_CLOCK = r"[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?"
_OFFSET = r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
DATE_PATTERN = f"^{_DATE}$"
DATE_TIME_PATTERN = f"^{_DATE}{_CLOCK}{_OFFSET}$"
# An RFC 3339 time with its UTC offset, or a date meaning its midnight UTC.
MOMENT: JsonSchema = {
    "anyOf": [
        {"type": "string", "format": "date-time", "pattern": DATE_TIME_PATTERN},
        {"type": "string", "format": "date", "pattern": DATE_PATTERN},
    ],
    "description": f"An RFC 3339 time with its UTC offset (2026-11-24T08:00:00Z, "
    f"2026-11-24T09:00:00.5+01:00; at most nine decimals of a second), or a date meaning "
    f"its midnight UTC (2026-11-24), in the years {YEARS}.",
}
# Window labels as the SLA engine names them: an ISO week, a calendar month, a quarter or
# a year. W53 is in the pattern for the years that have one; in a year of 52 weeks it
# names no window (404).
WINDOW_PATTERN = f"^{_YEAR}(-(W(0[1-9]|[1-4][0-9]|5[0-3])|0[1-9]|1[0-2]|Q[1-4]))?$"
# A positive duration as config files write them (6h, 7d, 1h30m): at least one part is
# not zero, and at most three decimals, so the shortest is 0.001ms, one microsecond.
_UNIT = "(ms|s|m|h|d|w)"
_ZERO_PART = rf"0+(\.0{{1,3}})?{_UNIT}"
_NONZERO_FRACTION = r"([1-9][0-9]{0,2}|0[1-9][0-9]?|00[1-9])"
_NONZERO_PART = rf"([0-9]*[1-9][0-9]*(\.[0-9]{{1,3}})?|[0-9]+\.{_NONZERO_FRACTION}){_UNIT}"
_ANY_PART = rf"[0-9]+(\.[0-9]{{1,3}})?{_UNIT}"
DURATION_PATTERN = f"^({_ZERO_PART})*{_NONZERO_PART}({_ANY_PART})*$"
DURATION_MAX_CHARS = 40
# Ids of links, customers and contracts, as the config allows them.
ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
# A page cursor: the base64url payload, a dot, and its 18-byte signature in base64url.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{24}$"
CURSOR_MAX_CHARS = 2000
CURSOR: JsonSchema = {
    "type": "string",
    "pattern": CURSOR_PATTERN,
    "maxLength": CURSOR_MAX_CHARS,
    "description": "An opaque page token, made only by the API: pass it back unchanged.",
}
# White space as Unicode's White_Space property lists it, spelled out: regex engines
# disagree on `\s` (Python's also takes \x1c-\x1f, ECMA-262's also takes U+FEFF).
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_WHITE_SPACE_CLASS = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Text a person writes (an approval note, an invoice reference): not only white space,
# and no NUL character, which PostgreSQL's text cannot hold.
PERSON_TEXT_PATTERN = rf"^[^\x00]*[^\x00{_WHITE_SPACE_CLASS}][^\x00]*$"
