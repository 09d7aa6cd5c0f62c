-- Which probe agent took a sample (`<site>/<name>`, linkwatch/agent.py); NULL for samples
-- of `linkwatch run` and imports. The site is in the probe id (`probe@site`). Nullable
-- with no default, so adding it rewrites nothing (a TimescaleDB columnstore included).
ALTER TABLE samples ADD COLUMN agent_id text NULL;
