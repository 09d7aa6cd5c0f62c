SELECT status, count(*) FROM deliveries GROUP BY status
