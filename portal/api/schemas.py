"""The JSON Schemas of what the API answers: the components of its OpenAPI document, and
what the property-based tests hold every response to. (What its parameters take is
`portal.api.patterns`.)

Objects are closed (`additionalProperties: false`) and every property is always present,
null where there is no value, so a field added to a handler without being described
here fails the tests. The SLA record and the ledger record are described field by field
from `sla.records.FIELDS` and `sla.ledger.export_fields()`: a field added there is
documented (loosely) at once, and a test asks for its exact type.

Pure data: no I/O.
"""

from __future__ import annotations

from typing import Any

from collector.incident_reports import CAUSE_CATEGORIES
from kernel.domain import LinkStatus
from portal.api.openapi import JsonSchema
from portal.api.patterns import CURSOR, WINDOW_PATTERN
from portal.reads import BLIND_SPANS_BACK, BLIND_SPANS_SHOWN
from sla.ledger import STATUSES, export_fields
from sla.records import FIELDS

STRING: JsonSchema = {"type": "string"}
INTEGER: JsonSchema = {"type": "integer"}
NUMBER: JsonSchema = {"type": "number"}
BOOLEAN: JsonSchema = {"type": "boolean"}
TIME: JsonSchema = {"type": "string", "format": "date-time"}

DECIMAL: JsonSchema = {
    "type": "string",
    "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
    "description": "An exact decimal, as a string (never a float): percentages are "
    "truncated, money is in the currency's minor units.",
}
SECONDS: JsonSchema = {"type": "number", "description": "Seconds, exact to the microsecond."}
WINDOW: JsonSchema = {"type": "string", "pattern": WINDOW_PATTERN}
STATUS: JsonSchema = {"type": "string", "enum": [status.value for status in LinkStatus]}
PROBE_STATUS: JsonSchema = {
    "type": "string",
    "enum": [status.value for status in LinkStatus if status is not LinkStatus.MAINTENANCE],
}


def nullable(schema: JsonSchema) -> JsonSchema:
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    kind = schema["type"]
    kinds = [*kind, "null"] if isinstance(kind, list) else [kind, "null"]
    out = {**schema, "type": kinds}
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


def closed(description: str, /, **properties: JsonSchema) -> JsonSchema:
    """An object with exactly these properties, all present."""
    return {
        "type": "object",
        "description": description,
        "additionalProperties": False,
        "required": list(properties),
        "properties": properties,
    }


def ref(name: str) -> JsonSchema:
    return {"$ref": f"#/components/schemas/{name}"}


def array(items: JsonSchema) -> JsonSchema:
    return {"type": "array", "items": items}


def page(item: str) -> JsonSchema:
    return closed(
        f"One page of {item} items. Ask again with `cursor` set to `next_cursor` for the "
        "next page; `next_cursor` is null on the last page.",
        items=array(ref(item)),
        next_cursor=nullable(CURSOR),
    )


# --- SLA and ledger records ----------------------------------------------------------------

# The report record's fields as `sla.records.record` writes them (seconds as numbers,
# percentages and money as decimal strings), which is what `linkwatch report sla
# --format json` prints.
SLA_FIELDS: dict[str, JsonSchema] = {
    "contract": STRING,
    "customer": STRING,
    "link": {
        "type": "string",
        "description": "The link id, or group:<contract> for a redundant group.",
    },
    "window": WINDOW,
    "window_start": TIME,
    "window_end": TIME,
    "window_s": SECONDS,
    "excluded_s": SECONDS,
    "unknown_s": SECONDS,
    "down_s": SECONDS,
    "eligible_s": SECONDS,
    "coverage_pct": nullable(DECIMAL),
    "availability_pct": nullable(DECIMAL),
    "target_pct": DECIMAL,
    "met": nullable(BOOLEAN),
    "budget_s": SECONDS,
    "budget_used_pct": nullable(DECIMAL),
    "incidents": INTEGER,
    "credit_steps": INTEGER,
    "credit_pct": DECIMAL,
    "credit_amount": DECIMAL,
    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    "status": {"type": "string", "enum": list(STATUSES)},
    "budget_remaining_s": SECONDS,
    "burn_rate": nullable(DECIMAL),
    "budget_warning_pct": nullable(INTEGER),
    "objectives_met": nullable(BOOLEAN),
    "needs_review": {
        **BOOLEAN,
        "description": "Whether a person must look before the credit is approved: coverage "
        "is under the review floor or under the contract's min_coverage.",
    },
    "review_reason": nullable(STRING),
    "withheld_credit_amount": {
        **nullable(DECIMAL),
        "description": "Under the contract's min_coverage: the credit its rules give, not "
        "credited automatically (credit_amount is 0 until a person decides).",
    },
    "restore_pct": {
        **DECIMAL,
        "description": "Credit percent from outages restored later than the contract's "
        "restore term allows (within credit_pct, before the overall cap); 0 without one.",
    },
    "restores_over": {
        **INTEGER,
        "description": "Outages billed in this window (those that ended in it) that took "
        "longer than the restore term allows.",
    },
    "restores_continuing": {
        **INTEGER,
        "description": "Outages still running at the window's end (under a restore term): "
        "billed in the window they end in.",
    },
    "outside_hours_s": {
        **SECONDS,
        "description": "Of excluded_s: the time outside the contract's covered hours (or on "
        "its holidays); 0 for a contract measured every hour.",
    },
    "customer_caused_s": {
        **SECONDS,
        "description": "Outage time attributed to the customer (beyond qualifying "
        "maintenance): part of excluded_s when the contract's customer_caused is exclude, "
        "counted in down_s when it is count.",
    },
    "credit_before_annual_cap": {
        **nullable(DECIMAL),
        "description": "Under an annual credit cap: the window's credit by its own rules; "
        "credit_amount is what is paid, at most annual_cap_remaining. Null without one.",
    },
    "annual_cap_amount": {
        **nullable(DECIMAL),
        "description": "The annual cap in money: its percent of the fee times the "
        "contract's windows starting in the window's calendar year.",
    },
    "annual_cap_remaining": {
        **nullable(DECIMAL),
        "description": "What the earlier windows of the year (and earlier links of this "
        "window) left of the annual cap, as the ledger credits them.",
    },
    "quality_down_s": {
        **nullable(SECONDS),
        "description": "Of down_s: available time in slots whose mean loss or RTT was over "
        "the contract's quality limit (no outage). Null: the contract has no such term.",
    },
    "objectives": array(
        closed(
            "A performance objective of the window: latency and loss, then those on any "
            "stored metric.",
            name=STRING,
            limit=DECIMAL,
            unit=STRING,
            measured={
                **nullable(DECIMAL),
                "description": "Truncated to four decimals; null: no sample to measure on.",
            },
            samples={
                **nullable(INTEGER),
                "description": "Samples measured (objectives on a metric; null otherwise).",
            },
            met=nullable(BOOLEAN),
            credit_pct=DECIMAL,
        )
    ),
}

# The ledger keeps the fields added to the record after its first release as JSON, with
# decimals as strings, and rows written before a field existed have none of it.
_LEDGER_LATER: dict[str, JsonSchema] = {
    "budget_remaining_s": {"type": ["number", "string", "null"]},
    "burn_rate": nullable(DECIMAL),
    "budget_warning_pct": nullable(INTEGER),
    "objectives_met": nullable(BOOLEAN),
    "needs_review": BOOLEAN,
    "review_reason": nullable(STRING),
    "withheld_credit_amount": nullable(DECIMAL),
    "restore_pct": nullable(DECIMAL),
    "restores_over": nullable(INTEGER),
    "restores_continuing": nullable(INTEGER),
    "outside_hours_s": {"type": ["number", "string", "null"]},
    "customer_caused_s": {"type": ["number", "string", "null"]},
    "credit_before_annual_cap": nullable(DECIMAL),
    "annual_cap_amount": nullable(DECIMAL),
    "annual_cap_remaining": nullable(DECIMAL),
    "quality_down_s": {"type": ["number", "string", "null"]},
    "objectives": {"type": ["array", "null"]},
}
LEDGER_OWN_FIELDS: dict[str, JsonSchema] = {
    "id": INTEGER,
    "kind": {"type": "string", "enum": ["window", "adjustment"]},
    "parent": nullable(INTEGER),
    "amount": {
        **DECIMAL,
        "description": "What this row credits: the credit, or an "
        "adjustment's difference (may be negative).",
    },
    "reason": nullable(STRING),
    "invoice_ref": nullable(STRING),
    "approved_by": nullable(STRING),
    "approved_at": nullable(TIME),
    "applied_by": nullable(STRING),
    "applied_at": nullable(TIME),
    "approval_note": nullable(STRING),
    "approved_at_utc": nullable(TIME),
    "applied_at_utc": nullable(TIME),
    "timezone": {"type": "string", "description": "The customer's zone, of the local times."},
}


def _record(description: str, fields: tuple[str, ...], known: dict[str, JsonSchema]) -> JsonSchema:
    # A field the record gained without a schema here is still documented, as "any".
    return closed(description, **{name: known.get(name, {}) for name in fields})


def sla_record_schema() -> JsonSchema:
    return _record(
        "One contract (and link, or redundant group) over one window: the SLA report's "
        "record, field for field as billing systems read it.",
        FIELDS,
        SLA_FIELDS,
    )


def credit_schema() -> JsonSchema:
    return _record(
        "A ledger row: the report record's fields (as the ledger stored them) plus the "
        "ledger's own. Times are in the customer's zone.",
        export_fields(),
        {**SLA_FIELDS, **_LEDGER_LATER, **LEDGER_OWN_FIELDS},
    )


def availability_schema() -> JsonSchema:
    record = sla_record_schema()
    properties = {
        **record["properties"],
        "contractual": {
            "type": "boolean",
            "description": "Whether the window is of the contract's own kind. Only then "
            "is the credit one the contract pays; otherwise the figures are for reading.",
        },
    }
    return {**record, "required": list(properties), "properties": properties}


# --- everything else ---------------------------------------------------------------------

MAINTENANCE_REF = closed(
    "The maintenance window in progress for the link.", id=STRING, description=STRING
)
LINK_PROPERTIES: dict[str, JsonSchema] = {
    "id": STRING,
    "customer": STRING,
    "customer_name": STRING,
    "description": STRING,
    "status": {
        **STATUS,
        "description": "What the customer sees: maintenance when an "
        "announced window is in progress, else what the probes measure.",
    },
    "measured_status": PROBE_STATUS,
    "since": nullable(TIME),
    "since_exact": {
        **BOOLEAN,
        "description": "False: the status began at or before "
        "`since` (only recent samples were read).",
    },
    "maintenance": nullable(ref("MaintenanceInProgress")),
}
RTT_MEANING = (
    "Milliseconds. ICMP: the echoes' mean round trip; TCP: the handshake; HTTP: the whole "
    "response, from the start of the check to the body read (the response time)."
)
PROBE = closed(
    "One probe's current state; of a link measured from several sites, one entry per "
    "probe and site (`id` is `probe@site` for the sites other than the monitor's own).",
    id=STRING,
    probe={**STRING, "description": "The configured probe it measures."},
    site={**STRING, "description": "The site (vantage point) it is measured from."},
    kind=STRING,
    availability={**BOOLEAN, "description": "Whether it counts toward availability."},
    status=PROBE_STATUS,
    since=nullable(TIME),
    since_exact=BOOLEAN,
    last_observed_at=nullable(TIME),
    rtt_ms=nullable({**NUMBER, "description": RTT_MEANING}),
    loss_pct=nullable(NUMBER),
    error=nullable(STRING),
)
VANTAGE = closed(
    "The sites a link is measured from, and how many must see it down for it to be down "
    "(null: measured from the monitor's own site alone).",
    sites=array(STRING),
    quorum={"type": "integer", "minimum": 1},
)
INCIDENT = closed(
    "One outage of a link (a confirmed DOWN), with its real start even when it began "
    "before the range asked for.",
    link=STRING,
    starts_at=TIME,
    ends_at=nullable(TIME),
    running=BOOLEAN,
    duration_s=nullable(SECONDS),
    seen_until=nullable(TIME),
    probes=array(
        closed("A probe that saw the outage.", probe=STRING, starts_at=TIME, error=nullable(STRING))
    ),
)
SERIES_POINT = closed(
    "One probe of the link over one UTC hour or day.",
    probe=STRING,
    bucket_start=TIME,
    bucket_end=TIME,
    samples_up=INTEGER,
    samples_degraded=INTEGER,
    samples_down=INTEGER,
    samples_unknown=INTEGER,
    samples_expected=nullable(NUMBER),
    rtt_mean_ms=nullable({**NUMBER, "description": RTT_MEANING}),
    rtt_p95_ms=nullable({**NUMBER, "description": RTT_MEANING}),
    loss_mean_pct=nullable(NUMBER),
    jitter_mean_ms=nullable(NUMBER),
)
TERMS = closed(
    "The contract's terms in force now (plan, contract and versions merged).",
    target_pct=DECIMAL,
    window={"type": "string", "enum": ["week", "month", "quarter", "year"]},
    fee=DECIMAL,
    currency=STRING,
    credit=closed(
        "How the credit is worked out.",
        step_pct=DECIMAL,
        per_step_pct=DECIMAL,
        rounding={"type": "string", "enum": ["ceil", "floor"]},
        cap_pct=DECIMAL,
        bands=array(
            closed(
                "Availability below a level earns a credit.", below_pct=DECIMAL, credit_pct=DECIMAL
            )
        ),
        incidents=nullable(
            closed(
                "N or more outages of at least a duration earn an extra credit.",
                count=INTEGER,
                min_duration_s=NUMBER,
                credit_pct=DECIMAL,
            )
        ),
    ),
    minimum_credit=DECIMAL,
    unknown={"type": "string", "enum": ["exclude", "count_as_up", "count_as_down"]},
    maintenance_notice_s=NUMBER,
    grace_s=NUMBER,
    budget_warnings_pct=array(INTEGER),
    latency=nullable(
        closed(
            "A latency objective.",
            p95_ms=nullable(NUMBER),
            mean_ms=nullable(NUMBER),
            credit_pct=DECIMAL,
        )
    ),
    loss=nullable(closed("A loss objective.", max_pct=NUMBER, credit_pct=DECIMAL)),
    customer_caused={
        "type": "string",
        "enum": ["exclude", "count"],
        "description": "What outage time attributed to the customer does: excluded like "
        "announced maintenance, or counted as downtime.",
    },
    availability_decimals={
        "type": "integer",
        "minimum": 0,
        "maximum": 4,
        "description": "Decimals of the availability people read (pages, reports, e-mails), "
        "truncated, never rounded up; the API's availability_pct fields keep four.",
    },
)
CONTRACT = closed(
    "A contract and its terms in force now.",
    id=STRING,
    customer=STRING,
    links=array(STRING),
    group={"type": "string", "enum": ["none", "redundant"]},
    plan=nullable(STRING),
    effective_from=nullable(TIME),
    terms=nullable(ref("Terms")),
)
MAINTENANCE = closed(
    "Planned work. Only the links and customers the caller may see are listed.",
    id=STRING,
    description=STRING,
    starts_at=TIME,
    ends_at=TIME,
    announced_at=TIME,
    cancelled_at={
        **nullable(TIME),
        "description": "When it was cancelled: before starts_at it covers nothing, "
        "otherwise it covers only the time until then. Null while in force.",
    },
    everything={**BOOLEAN, "description": "The window covers every link."},
    link_ids=array(STRING),
    customer_ids=array(STRING),
    reference={**STRING, "description": "The ticket or change number; empty when none."},
    impact={
        "type": "string",
        "enum": ["OUTAGE", "DEGRADED", "REDUCED-REDUNDANCY", "NO-IMPACT"],
        "description": "What the work does to the service (BCOP maintnote IMPACT).",
    },
    sequence={
        **INTEGER,
        "description": "How often it was rescheduled; each time is a new announcement.",
    },
)
MAINTENANCE_WORK_SCHEMAS: dict[str, JsonSchema] = {
    "MaintenanceChange": closed(
        "One thing done to a maintenance window, oldest first.",
        at=TIME,
        by=STRING,
        action={"type": "string", "enum": ["created", "rescheduled", "cancelled"]},
        starts_at={**TIME, "description": "The window's start after the action."},
        ends_at={**TIME, "description": "The window's end after the action."},
        previous_starts_at={**nullable(TIME), "description": "A reschedule: the old start."},
        previous_ends_at={**nullable(TIME), "description": "A reschedule: the old end."},
        sequence=INTEGER,
        note=STRING,
    ),
    "MaintenanceDetail": closed(
        "A maintenance window, where it came from and what was done to it.",
        window=ref("Maintenance"),
        source={
            "type": "string",
            "enum": ["portal", "config", "demo"],
            "description": "portal: created here or through the API, and changed only "
            "here; config and demo windows are imported from their file and changed there.",
        },
        editable={**BOOLEAN, "description": "Whether it can still be rescheduled or cancelled."},
        history={
            **nullable(array(ref("MaintenanceChange"))),
            "description": "Who did what to it, for staff; null for customers.",
        },
    ),
}
BLIND_SPAN = closed(
    "A span in which the site was blind: its canaries failed, so what its probes saw fail "
    "was recorded as unknown.",
    starts_at=TIME,
    ends_at={**nullable(TIME), "description": "Null while the site is still blind."},
    reason=STRING,
)
AGENT = closed(
    "A probe agent (`linkwatch agent`) of the site. Ages are by the database server's "
    "clock, which stamps heartbeats and judges leases.",
    id={**STRING, "description": "<site>/<name>."},
    host=STRING,
    pid=INTEGER,
    version=STRING,
    live={
        **BOOLEAN,
        "description": "Its lease is held: a heartbeat within collector.agent_lease, "
        "and not stopped.",
    },
    started_at=TIME,
    heartbeat_at=TIME,
    heartbeat_age_s={**SECONDS, "description": "Seconds since its last heartbeat."},
    stopped_at={**nullable(TIME), "description": "When it stopped (SIGTERM); null if not."},
    spool_bytes={**INTEGER, "description": "Its disk spool's size, in bytes."},
    queued={**INTEGER, "description": "Samples waiting in its spool for the database."},
    blind_since={**nullable(TIME), "description": "Since when its canaries fail, if they do."},
    canaries_failing=INTEGER,
    last_sample_at={**nullable(TIME), "description": "Its newest sample stored."},
    sample_lag_s={
        **nullable(SECONDS),
        "description": "Seconds from its newest sample stored to now.",
    },
)
SITE = closed(
    "A site (vantage point) links are measured from, as operations see it.",
    id=STRING,
    name=STRING,
    home={**BOOLEAN, "description": "This monitor's own site, measured by `linkwatch run`."},
    configured={
        **BOOLEAN,
        "description": "False for a site the config no longer has, still named by agents or "
        "blind spans in the database.",
    },
    state={
        "type": "string",
        "enum": ["sees", "blind", "silent"],
        "description": "blind: its canaries fail now; silent: a site of agents with no live "
        "agent, so nothing measures its links there; sees: neither.",
    },
    blind=nullable(
        closed("The blind span open now.", since=TIME, reason=STRING),
    ),
    blind_spans={
        **array(ref("BlindSpan")),
        "description": f"Its blind spans open now or ended in the last "
        f"{BLIND_SPANS_BACK.days} days, newest first, at most {BLIND_SPANS_SHOWN}.",
    },
    canaries=array(closed("A canary: a target that should always answer.", id=STRING, kind=STRING)),
    blind_when={
        **INTEGER,
        "description": "Failing canaries from which the site is blind (0: no canaries, "
        "never blind).",
    },
    agents=array(ref("Agent")),
    live_agents=INTEGER,
    links={**INTEGER, "description": "Links measured from the site."},
    measurements={**INTEGER, "description": "Probes taken of them there."},
)
ATTRIBUTION = closed(
    "Part of a link's outage attributed to the customer, with who said why and when, and "
    "its withdrawal if it was withdrawn (it then no longer counts, and stays on record).",
    id=INTEGER,
    link=STRING,
    outage_start=TIME,
    starts_at=TIME,
    ends_at=TIME,
    duration_s=SECONDS,
    reason=STRING,
    created_by=STRING,
    created_at=TIME,
    in_force=BOOLEAN,
    withdrawn_by=nullable(STRING),
    withdrawn_at=nullable(TIME),
    withdrawn_reason=nullable(STRING),
)
ACKNOWLEDGEMENT = closed(
    "An outage acknowledged by operations: who, when, the note, and the time to "
    "acknowledge from the outage's confirmed start.",
    link=STRING,
    outage_start=TIME,
    acknowledged_by=STRING,
    acknowledged_at=TIME,
    note=STRING,
    tta_s=SECONDS,
)
_FIGURE: JsonSchema = {
    "type": ["string", "null"],
    "pattern": r"^([0-9]+(\.[0-9]+)?|never)$",
    "description": "Exact decimal seconds; never: an outage never acknowledged; null: none.",
}
_OPERATIONS_SUMMARY = closed(
    "One contract's (or every link's) outages of the month.",
    name=STRING,
    customer=nullable(STRING),
    objective_s=nullable(SECONDS),
    outages=INTEGER,
    acknowledged=INTEGER,
    never_acknowledged=INTEGER,
    with_objective=INTEGER,
    within_objective=INTEGER,
    running=INTEGER,
    tta_median_s=_FIGURE,
    tta_p90_s=_FIGURE,
    tta_worst_s=_FIGURE,
    ttr_median_s=_FIGURE,
    ttr_p90_s=_FIGURE,
    ttr_worst_s=_FIGURE,
)
OPERATIONS_REPORT = closed(
    "Time to acknowledge and to restore the outages that began in a month (UTC).",
    month=STRING,
    contracts=array(_OPERATIONS_SUMMARY),
    overall=_OPERATIONS_SUMMARY,
    outages=array(
        closed(
            "One outage of the month.",
            link=STRING,
            start=TIME,
            end=nullable(TIME),
            acknowledged_by=nullable(STRING),
            tta_s=_FIGURE,
            ttr_s=_FIGURE,
        )
    ),
)
ME = closed(
    "The token's user.",
    name=STRING,
    role={"type": "string", "enum": ["customer", "ops", "billing", "admin"]},
    customer=nullable(STRING),
)

# --- the compliance rate --------------------------------------------------------------

_SHARE: JsonSchema = {
    **DECIMAL,
    "description": "Percent of the windows met, truncated to two places; null: no window.",
}
COMPLIANCE_SCHEMAS: dict[str, JsonSchema] = {
    "ComplianceRate": closed(
        "The share of windows met over the last `count` windows of one kind that have "
        "ended, in each contract's zone, and over the `count` windows before them.",
        window={"type": "string", "enum": ["week", "month", "quarter", "year"]},
        count=INTEGER,
        label={**STRING, "description": "How a person names the period: last 4 weeks."},
        met=INTEGER,
        windows={**INTEGER, "description": "Windows counted: met or missed (not n/a)."},
        share_pct=nullable(_SHARE),
        previous_met=INTEGER,
        previous_windows=INTEGER,
        previous_share_pct=nullable(_SHARE),
        change_pts=nullable(
            {
                **DECIMAL,
                "description": "share_pct minus previous_share_pct, in percentage points, "
                "truncated toward zero; null when either period has no window.",
            }
        ),
        trend={"type": ["string", "null"], "enum": ["up", "down", "flat", None]},
    ),
    "ComplianceScope": closed(
        "The rates of all contracts, of one plan (id null: contracts without a plan) or "
        "of one customer; a rate per period of each window kind the scope's contracts use.",
        scope={"type": "string", "enum": ["overall", "plan", "customer"]},
        id=nullable(STRING),
        name=STRING,
        rates=array(ref("ComplianceRate")),
    ),
    "Compliance": closed(
        "The compliance rate of every scope the caller may see.",
        as_of=TIME,
        items=array(ref("ComplianceScope")),
    ),
}


# --- incidents staff report to customers ------------------------------------------------

_CAUSE_CATEGORIES = list(CAUSE_CATEGORIES)
INCIDENT_REPORT_SCHEMAS: dict[str, JsonSchema] = {
    "IncidentReportOutage": closed(
        "An outage the incident covers, named as /links/{link_id}/incidents lists it.",
        link=STRING,
        outage_start=TIME,
    ),
    "IncidentReportUpdate": closed(
        "An update staff posted, as its customers were told it; `links` are the caller's "
        "links it concerned.",
        id=INTEGER,
        posted_at=TIME,
        posted_by=nullable({**STRING, "description": "Staff only; null for customers."}),
        body=STRING,
        closes=BOOLEAN,
        links=array(STRING),
    ),
    "IncidentReport": closed(
        "One shared failure as staff report it: its outages (the caller's links only), "
        "its updates oldest first, and, once resolved, its cause.",
        id=INTEGER,
        title=STRING,
        open=BOOLEAN,
        opened_at=TIME,
        opened_by=nullable({**STRING, "description": "Staff only; null for customers."}),
        closed_at=nullable(TIME),
        cause_category=nullable({"type": "string", "enum": _CAUSE_CATEGORIES}),
        cause=nullable(STRING),
        outages=array(ref("IncidentReportOutage")),
        updates=array(ref("IncidentReportUpdate")),
    ),
    "IncidentReportPage": page("IncidentReport"),
}


def schemas() -> dict[str, JsonSchema]:
    link = closed("A link and its current status.", **LINK_PROPERTIES)
    detail = closed(
        "A link, its current status and each probe's.",
        **LINK_PROPERTIES,
        probes=array(ref("Probe")),
        vantage=nullable(VANTAGE),
        contracts=array(STRING),
    )
    found: dict[str, Any] = {
        "Me": ME,
        "MaintenanceInProgress": MAINTENANCE_REF,
        "Link": link,
        "LinkDetail": detail,
        "Probe": PROBE,
        "Incident": INCIDENT,
        "SlaRecord": sla_record_schema(),
        "AvailabilityRecord": availability_schema(),
        "Availability": closed(
            "Each contract of the link over a window.",
            link=STRING,
            items=array(ref("AvailabilityRecord")),
        ),
        "SeriesPoint": SERIES_POINT,
        "Series": closed(
            "Measurements of the link per bucket, per probe; buckets with no sample are left out.",
            **{
                "link": STRING,
                "bucket": {"type": "string", "enum": ["hour", "day"]},
                "from": TIME,
                "to": TIME,
                "items": array(ref("SeriesPoint")),
            },
        ),
        "Terms": TERMS,
        "Contract": CONTRACT,
        "Credit": credit_schema(),
        "Maintenance": MAINTENANCE,
        "BlindSpan": BLIND_SPAN,
        "Agent": AGENT,
        "Site": SITE,
        "SiteList": closed("Every site, in one answer.", items=array(ref("Site"))),
        "Attribution": ATTRIBUTION,
        "Acknowledgement": ACKNOWLEDGEMENT,
        "AcknowledgementPage": page("Acknowledgement"),
        "OperationsReport": OPERATIONS_REPORT,
    }
    found.update(COMPLIANCE_SCHEMAS)
    from portal.api.recurring import SERIES_SCHEMAS  # it builds on this module's helpers

    found.update(SERIES_SCHEMAS)
    found.update(INCIDENT_REPORT_SCHEMAS)
    found.update(MAINTENANCE_WORK_SCHEMAS)
    for item in (
        "Link", "Incident", "Contract", "SlaRecord", "Credit", "Maintenance", "Attribution"
    ):  # fmt: skip
        found[f"{item}Page"] = page(item)
    return found
