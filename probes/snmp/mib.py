"""The MIB objects the SNMP poller reads, and how their values read as text.

``sysUpTime`` and the IF-MIB columns (ifTable, ifXTable) a poll asks for, which of them
are counters and with what modulus, the naming columns interfaces are found by, and the
agent's error-status names. Pure data and pure functions: nothing here does I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from probes.snmp.wire import Missing, Value, encode_oid, null_varbind

Oid = tuple[int, ...]

SYS_UPTIME: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)
IF_DESCR: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 2)
IF_SPEED: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 5)
IF_ADMIN_STATUS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 7)
IF_OPER_STATUS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 8)
IF_IN_OCTETS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 10)
IF_IN_DISCARDS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 13)
IF_IN_ERRORS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 14)
IF_OUT_OCTETS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 16)
IF_OUT_DISCARDS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 19)
IF_OUT_ERRORS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 20)
IF_NAME: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1)
IF_HC_IN_OCTETS: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6)
IF_HC_OUT_OCTETS: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 10)
IF_HIGH_SPEED: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 15)
IF_ALIAS: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 18)

NAME_COLUMNS: Mapping[str, Oid] = {"descr": IF_DESCR, "name": IF_NAME, "alias": IF_ALIAS}

# (metric, column, counter modulus, octets?): the rate is delta / seconds, x 8 for octets.
# Octets come from the 64-bit ifXTable counters where the interface has them, else from
# ifTable's 32-bit ones (many older ports and whole devices have only those).
COUNTERS: tuple[tuple[str, Oid, int, bool], ...] = (
    ("in_bps", IF_HC_IN_OCTETS, 1 << 64, True),
    ("out_bps", IF_HC_OUT_OCTETS, 1 << 64, True),
    ("in_bps", IF_IN_OCTETS, 1 << 32, True),
    ("out_bps", IF_OUT_OCTETS, 1 << 32, True),
    ("in_errors_per_s", IF_IN_ERRORS, 1 << 32, False),
    ("out_errors_per_s", IF_OUT_ERRORS, 1 << 32, False),
    ("in_discards_per_s", IF_IN_DISCARDS, 1 << 32, False),
    ("out_discards_per_s", IF_OUT_DISCARDS, 1 << 32, False),
)
WIDE = (IF_HC_IN_OCTETS, IF_HC_OUT_OCTETS, IF_HIGH_SPEED)  # read where ifXTable has them
NARROW = (IF_IN_OCTETS, IF_OUT_OCTETS)  # read where it has not
ALWAYS = (
    IF_OPER_STATUS,
    IF_ADMIN_STATUS,
    IF_SPEED,
    IF_IN_ERRORS,
    IF_OUT_ERRORS,
    IF_IN_DISCARDS,
    IF_OUT_DISCARDS,
)
INTERFACE_COLUMNS: tuple[Oid, ...] = (*ALWAYS, *WIDE)  # an interface with 64-bit counters

ERROR_STATUS = {
    1: "tooBig",
    2: "noSuchName",
    3: "badValue",
    4: "readOnly",
    5: "genErr",
    6: "noAccess",
    16: "authorizationError",
}


def error_status_name(status: int) -> str:
    return ERROR_STATUS.get(status, str(status))


@functools.lru_cache(maxsize=1 << 16)
def encoded(oid: Oid) -> tuple[bytes, bytes]:
    """(OID content bytes, request varbind) — cached, an interface's OIDs recur each poll."""
    content = encode_oid(oid)
    return content, null_varbind(content)


def dotted(oid: Oid) -> str:
    return ".".join(map(str, oid))


def text(value: Value) -> str:
    if isinstance(value, bytes):
        # Some agents NUL-terminate ifDescr; names in config never carry the NUL.
        value = value.rstrip(b"\x00")
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            # DisplayString is ASCII by the MIB; what is not UTF-8 is in practice a
            # Latin-1 alias typed on the device ("Müller GmbH"), and must still match.
            return value.decode("latin-1")
    return "" if value is None or isinstance(value, Missing) else str(value)


def show(value: Value) -> str:
    if isinstance(value, Missing):
        return {
            Missing.NO_SUCH_OBJECT: "noSuchObject",
            Missing.NO_SUCH_INSTANCE: "noSuchInstance",
            Missing.END_OF_MIB_VIEW: "endOfMibView",
        }[value]
    return repr(value)
