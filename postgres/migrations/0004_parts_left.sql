-- A submitted message counts the parts still waiting for a final receipt,
-- and keeps the time of the latest delivered one, so that a receipt settles
-- its message by updating the message's row alone: the update waits for
-- any other receipt of the same message and then counts from what that one
-- wrote, instead of re-reading every part under a separate lock.
ALTER TABLE messages
	ADD COLUMN parts_left   integer NOT NULL DEFAULT 0,
	ADD COLUMN delivered_at bigint  NOT NULL DEFAULT 0;

UPDATE messages m SET
	parts_left = (SELECT count(*) FROM message_parts p WHERE p.request_id = m.request_id AND p.state = 'Submitted'),
	delivered_at = COALESCE((SELECT max(updated) FROM message_parts p WHERE p.request_id = m.request_id AND p.state = 'Delivered'), 0)
WHERE m.state = 'Submitted';

-- An orphan receipt (no request id yet) is found by its carrier id alone;
-- only adopted parts need finding by message (when a message is deleted).
DROP INDEX message_parts_request;
CREATE INDEX message_parts_request ON message_parts (request_id) WHERE request_id IS NOT NULL;
