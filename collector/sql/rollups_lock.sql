-- Serialises everything that materializes rollups on plain PostgreSQL, held until the
-- transaction ends. Two recomputations of one bucket from different snapshots must not
-- race (the older one could commit last), and a refresh must see the watermark as it is
-- after any materialization that could have missed its samples.
SELECT pg_advisory_xact_lock(%(key)s)
