"""The portal package's named SQL statements: `query(name)` is `portal/sql/<name>.sql`
(see linkwatch.queries)."""

from linkwatch.queries import loader

query = loader("portal")
