"""The collector package's named SQL statements: `query(name)` is `collector/sql/<name>.sql`
(see linkwatch.queries)."""

from linkwatch.queries import loader

query = loader("collector")
