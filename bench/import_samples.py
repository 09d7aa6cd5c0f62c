"""Import of a large CSV file: `linkwatch import samples` against `psql \\copy` of the
same file into a plain table (the floor of getting the bytes into PostgreSQL at all).

    .venv/bin/python -m bench.import_samples [--rows 1000000] [--links 100]

Writes a file of `--rows` samples (one ICMP probe per link, every 30 s, 1 % down) to a
temporary directory and imports it into a fresh embedded PostgreSQL with the command a
user runs, recording its wall time and peak memory (the process's maximum resident set);
then `\\copy`s the same file into a table of the same columns with no checks, no
deduplication and no state derivation. The ratio is how many times longer the import
takes than that floor.
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.embedded import EmbeddedPostgres

HEADER = "time,link,probe,outcome,rtt_ms,loss_pct,jitter_ms,error"


def write_file(path: Path, rows: int, links: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    per_link = rows // links
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30 * (per_link + 10))
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER + "\n")
        for step in range(per_link):
            at = (start + timedelta(seconds=30 * step)).isoformat().replace("+00:00", "Z")
            for link in range(links):
                if rng.random() < 0.01:
                    out.write(f"{at},link-{link:04d},icmp,down,,100,,no reply (5/5 lost)\n")
                else:
                    rtt = rng.uniform(0.2, 40)
                    out.write(f"{at},link-{link:04d},icmp,up,{rtt:.3f},0,0.1,\n")


def write_config(path: Path, data_dir: Path, links: int) -> None:
    lines = [f"data_dir: {data_dir}", "customers: [{id: acme, name: ACME}]", "links:"]
    lines += [
        f"  - {{id: link-{i:04d}, customer: acme,"
        " probes: [{id: icmp, kind: icmp, host: 127.0.0.1, interval: 30s}]}"
        for i in range(links)
    ]
    path.write_text("\n".join(lines) + "\n")


def run_import(config: Path, data: Path) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of `linkwatch import samples`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    began = time.perf_counter()
    command = ["--log-level", "warning", "import", "samples", "--config", str(config)]
    result = subprocess.run(
        [sys.executable, "-m", "linkwatch", *command, str(data)],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - began
    if result.returncode != 0:
        raise SystemExit(f"import failed: {result.stderr}")
    print(f"  {result.stdout.strip()}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest of any child so far: the import is the first.
    return elapsed, max(peak, before) / 1024


def psql_copy(data_dir: Path, data: Path) -> float:
    with EmbeddedPostgres(data_dir / "postgres") as server:
        psql = str(server.binaries.bin_dir / "psql")
        table = (
            "CREATE TABLE IF NOT EXISTS copy_anchor (time text, link text, probe text, "
            "outcome text, rtt_ms float8, loss_pct float8, jitter_ms float8, error text)"
        )
        subprocess.run([psql, server.url, "-q", "-c", table], check=True)
        began = time.perf_counter()
        command = f"\\copy copy_anchor FROM '{data}' WITH (FORMAT csv, HEADER true)"
        subprocess.run([psql, server.url, "-q", "-c", command], check=True)
        return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--links", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="linkwatch-bench-import-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)  # as root, the embedded server's own account must enter it
        data, config = workdir / "samples.csv", workdir / "linkwatch.yaml"
        write_file(data, args.rows, args.links)
        write_config(config, workdir, args.links)
        size = data.stat().st_size / 1e6
        print(f"{args.rows:,} rows, {args.links} links, {size:.0f} MB")
        seconds, peak_mib = run_import(config, data)
        anchor = psql_copy(workdir, data)
    print(f"linkwatch import samples: {seconds:.1f} s, {args.rows / seconds:,.0f} rows/s,")
    print(f"  peak memory {peak_mib:,.0f} MiB")
    print(f"psql \\copy (anchor):      {anchor:.1f} s, {args.rows / anchor:,.0f} rows/s")
    print(f"ratio: {seconds / anchor:.1f}x the anchor's time")


if __name__ == "__main__":
    main()
