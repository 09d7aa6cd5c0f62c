-- A fresh id for a window created in the portal or the API.
SELECT 'mw-' || nextval('maintenance_window_number')::text
