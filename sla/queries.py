"""The sla package's named SQL statements: `query(name)` is `sla/sql/<name>.sql`
(see linkwatch.queries)."""

from linkwatch.queries import loader

query = loader("sla")
