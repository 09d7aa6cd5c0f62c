"""Probes measure links; they never write to the database.

One module per probe kind, one signature (``async def probe_x(spec, ctx) -> ProbeResult``),
one registry from kind to function. A target's failure is data (``outcome=down`` with a
short ``error``); a failure of the monitor itself is ``unknown``.
"""

from probes.context import ProbeContext, detect_context
from probes.registry import PROBES, ProbeFunction, unsupported_probes
from probes.scheduler import Scheduler, apply_thresholds

__all__ = [
    "PROBES",
    "ProbeContext",
    "ProbeFunction",
    "Scheduler",
    "apply_thresholds",
    "detect_context",
    "unsupported_probes",
]
