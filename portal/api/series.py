"""A link's measurements per hour or day (/links/{link_id}/series), read from the
rollups through `PortalReads`.

A series is one answer, not pages, so its span is bounded (`SERIES`), and the document
says by how much. The link is checked with `portal.api.access` before anything is read.
"""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from aiohttp import web

from collector.rollups import BUCKETS, Bucket, Rollup
from portal.api.access import visible_link
from portal.api.endpoints import DATA, FROM, LINK_ID, TO, Body, endpoint
from portal.api.formats import finite, iso
from portal.api.openapi import Param
from portal.api.params import time_range
from portal.api.patterns import DURATION_MAX_CHARS, DURATION_PATTERN
from portal.api.schemas import ref
from portal.auth import Account
from portal.keys import CLOCK, READS
from portal.params import choice

# A series is one answer, not pages: its span is bounded, so that one is never more than
# 31 * 24 hourly or 400 daily points a probe.
SERIES: dict[str, tuple[timedelta, timedelta]] = {  # bucket: (default span, longest)
    "hour": (timedelta(hours=24), timedelta(days=31)),
    "day": (timedelta(days=30), timedelta(days=400)),
}

HOURS_AT_MOST = SERIES["hour"][1].days
DAYS_AT_MOST = SERIES["day"][1].days


def _point(rollup: Rollup) -> Body:
    return {
        "probe": rollup.probe_id,
        "bucket_start": iso(rollup.bucket_start),
        "bucket_end": iso(rollup.bucket_end),
        "samples_up": rollup.samples_up,
        "samples_degraded": rollup.samples_degraded,
        "samples_down": rollup.samples_down,
        "samples_unknown": rollup.samples_unknown,
        "samples_expected": finite(rollup.samples_expected),
        "rtt_mean_ms": finite(rollup.rtt_mean_ms),
        "rtt_p95_ms": finite(rollup.rtt_p95_ms),
        "loss_mean_pct": finite(rollup.loss_mean_pct),
        "jitter_mean_ms": finite(rollup.jitter_mean_ms),
    }


@endpoint(
    "GET",
    "/links/{link_id}/series",
    "getLinkSeries",
    "The link's measurements per hour or day",
    description="RTT mean and p95, loss, jitter and samples by outcome, per probe and UTC "
    "bucket, for the buckets starting in [from, to). `to` defaults to now; `from` to "
    "`range` before `to`, and `range` to 24h for hours or 30d for days. A series is one "
    "answer, not pages, so it is bounded: from `from` (or `to` - `range`) to `to` spans "
    f"at most {HOURS_AT_MOST} days with bucket=hour and {DAYS_AT_MOST} days with "
    "bucket=day, and `from` and `range` are not given together; either is a 400 that "
    "says so. A `to` at or before `from` answers no buckets.",
    response=ref("Series"),
    params=(
        LINK_ID,
        FROM,
        TO,
        Param(
            "range",
            {"type": "string", "pattern": DURATION_PATTERN, "maxLength": DURATION_MAX_CHARS},
            "How far back from `to`, instead of `from`: a duration more than zero, such as "
            "6h, 7d, 30d or 1h30m (units ms, s, m, h, d, w; at most three decimals); at most "
            f"{HOURS_AT_MOST} days with bucket=hour, {DAYS_AT_MOST} with bucket=day.",
        ),
        Param(
            "bucket",
            {"type": "string", "enum": list(BUCKETS), "default": "hour"},
            "The bucket width.",
        ),
    ),
    errors=(400, 404, *DATA),
)
async def link_series(request: web.Request, user: Account) -> Body:
    link = visible_link(request, user)
    bucket = cast(Bucket, choice(request.query, "bucket", BUCKETS, "hour"))
    span, longest = SERIES[bucket]
    app = request.app
    now = app[CLOCK]()
    note = f" with bucket={bucket}"
    if bucket == "hour":
        note += f" (bucket=day allows {DAYS_AT_MOST} days)"
    start, end = time_range(
        request, now, before=span, longest=longest, longest_note=note, span_param=True
    )
    intervals = {(link.id, probe.id): probe.interval for probe in link.probes}

    found = await app[READS].rollups(
        link.id, start, end, bucket, probe_intervals=intervals, now=now
    )
    return {
        "link": link.id,
        "bucket": bucket,
        "from": iso(start),
        "to": iso(end),
        "items": [_point(rollup) for rollup in found],
    }
