"""The sla package's named SQL statements: `query(name)` is `sla/sql/<name>.sql`
(see kernel.queries)."""

from kernel.queries import loader

query = loader("sla")
