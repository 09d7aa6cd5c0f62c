-- Whether the central schema holds what an agent needs (it never migrates it itself).
SELECT to_regclass('agents') IS NOT NULL AND to_regclass('samples_announced') IS NOT NULL
