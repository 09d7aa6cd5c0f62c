"""The collector package's named SQL statements: `query(name)` is `collector/sql/<name>.sql`
(see kernel.queries)."""

from kernel.queries import loader

query = loader("collector")
