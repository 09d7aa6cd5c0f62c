-- Measurements beyond reachability, per sample: SNMP interface rates and the like, as a
-- JSON object of numbers, e.g. {"in_bps": 1.2e6, "out_bps": 3.4e5, "if_index": 3}.
-- NULL for samples that carry none (every probe kind but SNMP, and all older samples).
-- A nullable column without a default: on TimescaleDB, compressed chunks take it as is.
ALTER TABLE samples ADD COLUMN IF NOT EXISTS metrics jsonb NULL;
