"""The portal package's named SQL statements: `query(name)` is `portal/sql/<name>.sql`
(see kernel.queries)."""

from kernel.queries import loader

query = loader("portal")
