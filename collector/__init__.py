"""Storage for Linkwatch: the database, its schema and migrations, sample writes and the
spool, state derivation and the reads of what it owns (samples, states, rollups,
maintenance windows, the outbox).

The database connection and every migration are here. The other packages that talk SQL
(sla: the ledger; notify: deliveries; portal: accounts and sessions) run it on their own
tables, from their own `sql/` folder, through a `collector.Database`; callers get domain
types and `kernel.errors.DatabaseError`, never a raw psycopg exception. Nothing here
probes a network target or computes SLA figures.
"""

from collector.database import Database, connect
from collector.embedded import EmbeddedPostgres
from collector.migrate import migrate, timescaledb_enabled
from collector.settings import StorageSettings
from collector.status import current_link_states, link_status, probe_state
from collector.stored import (
    MaintenanceSync,
    latest_sample_time,
    maintenance_windows,
    sync_maintenance,
    upsert_maintenance,
)
from collector.writer import SampleWriter, write_samples

__all__ = [
    "Database",
    "EmbeddedPostgres",
    "MaintenanceSync",
    "SampleWriter",
    "StorageSettings",
    "connect",
    "current_link_states",
    "latest_sample_time",
    "link_status",
    "maintenance_windows",
    "migrate",
    "probe_state",
    "sync_maintenance",
    "timescaledb_enabled",
    "upsert_maintenance",
    "write_samples",
]
