"""Linkwatch: availability monitoring, SLA computation and service credits for ISP links.

This package holds what every other part shares: domain types, configuration loading,
errors and the command line. Its domain and config modules import no other package of
ours; only the command line, which wires the parts together, reaches into them.
"""

from linkwatch.domain import LinkStatus, Outcome, ProbeResult, Sample
from linkwatch.errors import ConfigError, ConfigProblem, DatabaseError, LinkwatchError

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "DatabaseError",
    "LinkStatus",
    "LinkwatchError",
    "Outcome",
    "ProbeResult",
    "Sample",
    "__version__",
]
