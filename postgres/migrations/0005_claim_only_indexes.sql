-- The queue's index (queued messages by when they are due) and the
-- orphan receipts' index (receipts whose part is not known yet, by age)
-- are partial, and so tiny: a statement whose conditions imply one's
-- predicate may be planned as a scan of it, and the Store's statements are
-- planned once per connection, often while the tables are still new and
-- empty. A finish that looks its messages up by request id (state =
-- 'Queued') was planned as a scan of the whole queue for every message,
-- which a queue backed up by a burst made quadratic. Each predicate now
-- names a column its only intended user names too (the claim and the
-- purge), which the lookups by key never imply.
DROP INDEX messages_due;
CREATE INDEX messages_due ON messages (GREATEST(next_attempt, lease_until)) WHERE state = 'Queued' AND lease_until >= 0;

DROP INDEX message_parts_orphans;
CREATE INDEX message_parts_orphans ON message_parts (updated) WHERE request_id IS NULL AND part = 0;
