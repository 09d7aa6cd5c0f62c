-- The server's shared_buffers in bytes (any user may read it).
SELECT pg_size_bytes(current_setting('shared_buffers'))
