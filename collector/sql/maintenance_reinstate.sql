-- A source lists these windows again: any cancellation of theirs is lifted.
UPDATE maintenance_windows
SET cancelled_at = NULL
WHERE source = %(source)s AND id = ANY(%(ids)s::text[]) AND cancelled_at IS NOT NULL
RETURNING id
