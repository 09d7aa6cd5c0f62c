"""The notify package's named SQL statements: `query(name)` is `notify/sql/<name>.sql`
(see kernel.queries)."""

from kernel.queries import loader

query = loader("notify")
