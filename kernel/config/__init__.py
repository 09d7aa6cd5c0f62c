"""Configuration: YAML in, validated models out, every mistake reported at once.

The file is read into plain data by kernel.configfile (bounded in size, values, depth
and time; a duplicate key or a value no setting can take is a problem there). Loading
(`loading`) then goes in three passes over that data: ``${VAR}`` expansion from the
environment, field validation by the pydantic models (strict: unknown keys are errors),
then the cross-references between sections (`references`: a link's customer, a
contract's links, ...). All problems from all passes are collected and raised together
as one `ConfigError`, each naming its path, the YAML line, the bad value (cut short if
long) and what is allowed. One mistake never hides another: a rule across an item's
fields (`fields._rule`) is judged whenever the fields it reads are valid, and the
contracts' terms whenever their own section is. Whatever the file holds, loading raises
nothing but `ConfigError`. Values are bounded by what they mean (durations, amounts,
percentages), so that nothing done with a valid config later overflows or loses
precision. This package never touches the network or the database.

The models, by job: `fields` (field types and the strict base model), `sections` (the
top-level sections and the root `Config`), `links` (links and probe specs), `contracts`,
`notifications`, `sites` (the monitor's vantage point and its canaries). What callers
use is exported here.
"""

from kernel.config.contracts import Contract, ResolvedTerms
from kernel.config.links import (
    RESPONSE_TIME_KINDS,
    AnyProbe,
    HttpProbe,
    IcmpProbe,
    Link,
    SnmpInterface,
    SnmpProbe,
    TcpProbe,
    Thresholds,
)
from kernel.config.loading import load_config, parse_config
from kernel.config.notifications import (
    EVENT_GROUPS,
    AnyChannel,
    EmailChannel,
    Route,
    WebhookChannel,
)
from kernel.config.sections import Config, Customer, PortalConfig, ProbingConfig
from kernel.config.sites import SiteConfig

__all__ = [
    "EVENT_GROUPS",
    "RESPONSE_TIME_KINDS",
    "AnyChannel",
    "AnyProbe",
    "Config",
    "Contract",
    "Customer",
    "EmailChannel",
    "HttpProbe",
    "IcmpProbe",
    "Link",
    "PortalConfig",
    "ProbingConfig",
    "ResolvedTerms",
    "Route",
    "SiteConfig",
    "SnmpInterface",
    "SnmpProbe",
    "TcpProbe",
    "Thresholds",
    "WebhookChannel",
    "load_config",
    "parse_config",
]
