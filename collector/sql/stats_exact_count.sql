-- An exact row count of one table. {relation} is an identifier composed with
-- psycopg.sql.Identifier (identifiers cannot be bound parameters); nothing else is ever
-- put into this text.
SELECT count(*) FROM {relation}
