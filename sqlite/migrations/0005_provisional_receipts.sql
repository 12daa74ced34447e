-- SMPP's UNKNOWN fails a part only provisionally: the part's next final
-- receipt replaces it, where a definitive one stands for good. A part, and
-- a receipt kept before its carrier id was known, note whether theirs is
-- provisional; a message failed by a provisional receipt notes it too, so
-- that a later receipt may still settle it (every other message that left
-- Submitted is final). Rows from before this step are all definitive.
ALTER TABLE message_parts ADD COLUMN provisional INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orphan_receipts ADD COLUMN provisional INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN provisional INTEGER NOT NULL DEFAULT 0;
