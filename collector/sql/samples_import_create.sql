-- The staging table of one import: every row of the file with its line, dropped when
-- the import's transaction ends. Constraints and metrics are the samples table's; the
-- file's repeats are kept here and resolved by the statements that read it.
CREATE TEMPORARY TABLE samples_import (
    LIKE samples,
    line integer NOT NULL
) ON COMMIT DROP
