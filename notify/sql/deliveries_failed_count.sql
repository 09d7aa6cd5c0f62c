SELECT count(*) FROM deliveries WHERE status = 'failed'
