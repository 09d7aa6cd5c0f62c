"""Plain settings for the storage layer.

The CLI builds `StorageSettings` from the validated configuration; this module must never
import `kernel.config`, so the storage layer keeps working however the config models
change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

TimescaleMode = Literal["auto", "require", "off"]


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """Where the samples live and how long they are kept.

    `url` None means "start the embedded PostgreSQL in `data_dir`". `timescaledb` "auto"
    uses the extension when the server has it, "require" refuses to run without it, "off"
    never creates it.
    """

    url: str | None
    data_dir: Path
    timescaledb: TimescaleMode = "auto"
    # 13 months and a bit: credit disputes reach back a full year plus a billing cycle.
    retention: timedelta = timedelta(days=395)
    compress_after: timedelta = timedelta(days=7)
    # TimescaleDB chunk length; None sizes it from ingest_samples_per_s and the server's
    # shared_buffers (collector.chunking).
    chunk_interval: timedelta | None = None
    # Samples a second the configured probes take; None where no config says (tools).
    ingest_samples_per_s: float | None = None
    pool_min_size: int = 1
    pool_max_size: int = 10
