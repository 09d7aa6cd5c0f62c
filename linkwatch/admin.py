"""One-shot administrative commands that need the database: import, state rebuilds,
statistics. Each opens the database (starting the embedded one if configured so), does
its work and closes it again; nothing here runs probes or serves pages.
"""

from __future__ import annotations

from pathlib import Path

from collector import connect
from collector.importer import ImportReport, import_samples, parse_samples_csv
from linkwatch.config import Config
from linkwatch.daemon import storage_settings
from linkwatch.errors import LinkwatchError

MAX_ERRORS_SHOWN = 100


class ImportRejected(LinkwatchError):
    """A sample file had bad rows; nothing from it was stored."""

    exit_code = 2


async def import_file(config: Config, path: Path) -> ImportReport:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            parsed = parse_samples_csv(handle, config.links)
    except (OSError, UnicodeDecodeError) as exc:
        raise LinkwatchError(f"{path}: cannot read the file: {exc}") from None
    if parsed.errors:
        shown = [f"  {path}:{e.line}: {e.message}" for e in parsed.errors[:MAX_ERRORS_SHOWN]]
        more = len(parsed.errors) - len(shown)
        if more:
            shown.append(f"  ... and {more} more")
        count = len(parsed.errors)
        raise ImportRejected(
            f"{path}: {count} bad row{'s' if count != 1 else ''}; nothing was imported\n"
            + "\n".join(shown)
        )
    db = await connect(storage_settings(config))
    try:
        return await import_samples(db, parsed.samples)
    finally:
        await db.close()
