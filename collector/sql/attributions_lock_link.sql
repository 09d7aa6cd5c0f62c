-- One writer per link at a time, so that two overlapping attributions cannot both pass
-- the overlap check: held until the transaction ends.
SELECT pg_advisory_xact_lock(hashtextextended('outage_attributions:' || %(link_id)s, 0))
