-- Serialises every writer of the ledger (refresh, approve, apply) across connections and
-- processes until the transaction ends: a refresh computes and writes under it, so an
-- older computation can never overwrite a newer one.
SELECT pg_advisory_xact_lock(%(key)s)
