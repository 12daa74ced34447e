-- SMPP's UNKNOWN fails a part only provisionally: the part's next final
-- receipt replaces it, where a definitive one stands for good. A part (and
-- a receipt kept before its carrier id was known) notes whether its receipt
-- is provisional. A part failed provisionally has had no definitive
-- receipt yet, so it still counts in its message's parts_left; parts_unsure
-- counts those parts. While any is, the message's failure is provisional
-- and a later receipt may still settle it; a definitive failure ends that
-- (parts_unsure 0), and every other message that left Submitted is final.
-- Rows from before this step are all definitive.
ALTER TABLE message_parts ADD COLUMN provisional boolean NOT NULL DEFAULT false;
ALTER TABLE messages ADD COLUMN parts_unsure integer NOT NULL DEFAULT 0;
