-- The cheapest round trip: does the server answer at all?
SELECT 1
