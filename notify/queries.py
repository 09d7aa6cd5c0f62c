"""The notify package's named SQL statements: `query(name)` is `notify/sql/<name>.sql`
(see linkwatch.queries)."""

from linkwatch.queries import loader

query = loader("notify")
