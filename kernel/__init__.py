"""Linkwatch's kernel: what every other package shares and nothing of ours is imported by.

Domain types (`kernel.domain`), the configuration and its loading (`kernel.config`,
`kernel.configfile`), durations, money, errors, logs, the formatting of figures for
people and the SQL statement loader. It imports no other package of ours; the packages
depend on it one way: kernel <- probes <- collector <- sla <- notify <- portal <- the
command line and daemon in `linkwatch/`.
"""

from kernel.domain import LinkStatus, Outcome, ProbeResult, Sample
from kernel.errors import ConfigError, ConfigProblem, DatabaseError, LinkwatchError

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
