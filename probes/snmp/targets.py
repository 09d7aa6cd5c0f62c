"""What a probe asks of the SNMP poller and what it gets back.

`DeviceKey` says which requests may share a GET, a `Ref` how a probe names its
interface, a `Reading` is one poll's answer for one probe, and an `SnmpFailure` a poll
that measured nothing, carrying whose problem that is (``down`` for no reply,
``unknown`` for the monitor's: credentials, an interface not found, an agent error).
Plain values and the wording of failures: nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kernel.config import SnmpInterface, SnmpProbe
from kernel.domain import Outcome


class SnmpFailure(Exception):
    """A poll that measured no interface state; `outcome` says whose problem it is."""

    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


@dataclass(frozen=True, slots=True)
class DeviceKey:
    """Requests with equal keys may share a GET."""

    host: str
    port: int
    version: str
    community: str | None
    user: str | None
    auth_protocol: str
    auth_key: str | None
    priv_protocol: str
    priv_key: str | None
    timeout_s: float
    retries: int

    @classmethod
    def from_spec(cls, spec: SnmpProbe) -> DeviceKey:
        host = spec.host
        if host.startswith("["):
            host = host[1 : host.index("]")]
        elif host.count(":") == 1:
            host = host.split(":")[0]
        return cls(
            host=host,
            port=spec.port,
            version=spec.version,
            community=spec.community,
            user=spec.user,
            auth_protocol=spec.auth_protocol,
            auth_key=spec.auth_key,
            priv_protocol=spec.priv_protocol,
            priv_key=spec.priv_key,
            timeout_s=spec.timeout.total_seconds(),
            retries=spec.retries,
        )

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


Ref = tuple[str, int | str]
"""How a probe names its interface: ("index", 3), ("alias", "CID-1001"), ..."""


def interface_ref(interface: SnmpInterface | None) -> Ref | None:
    if interface is None:
        return None
    if interface.index is not None:
        return ("index", interface.index)
    for kind in ("name", "descr", "alias"):
        value = getattr(interface, kind)
        if value is not None:
            return (kind, value)
    raise ValueError("SnmpInterface names no interface")  # config validation prevents it


def describe_ref(ref: Ref) -> str:
    return f"ifIndex {ref[1]}" if ref[0] == "index" else f"if{ref[0].capitalize()} {ref[1]!r}"


@dataclass(frozen=True, slots=True)
class Reading:
    """One poll's answer for one probe."""

    device: str
    round_trip_ms: float  # of the GET that carried this interface
    uptime_s: float | None  # the agent's sysUpTime
    if_index: int | None = None  # None: the probe names no interface
    oper_status: int | None = None  # IF-MIB ifOperStatus: 1 up, 2 down, ... 7 lowerLayerDown
    admin_status: int | None = None  # 1 up, 2 down, 3 testing
    metrics: Mapping[str, float] = field(default_factory=dict)


def timeout_failure(key: DeviceKey) -> SnmpFailure:
    tries = key.retries + 1
    hint = " (device unreachable, or the community is wrong)" if key.version == "2c" else ""
    return SnmpFailure(
        Outcome.DOWN,
        f"timeout: no reply from {key} after {tries} x {key.timeout_s:g}s{hint}",
    )


def usm_failure(key: DeviceKey, problem: str, check: str) -> SnmpFailure:
    return SnmpFailure(
        Outcome.UNKNOWN,
        f"authentication failed at {key} for user {key.user!r}: {problem}; check {check}",
    )
