-- Whether Linkwatch's tables exist in this database (the migrations' own table first).
SELECT to_regclass('schema_migrations') IS NOT NULL
