-- A validate's update of its verification keeps its number's run of wrong
-- codes (number_failures): the triggers run inside that update, so in its
-- transaction. Triggers rather than statements from Go: one more statement
-- through the driver cost a validate about a sixth of its time on the
-- writer, the triggers next to nothing.
CREATE TRIGGER verifications_wrong_code AFTER UPDATE OF attempts ON verifications
WHEN new.attempts > old.attempts AND new.state <> 'Verified'
BEGIN
	INSERT INTO number_failures (account_id, phone_number, failures, last)
	VALUES (new.account_id, new.phone_number, 1, new.updated)
	ON CONFLICT (account_id, phone_number) DO UPDATE SET failures = failures + 1, last = max(last, excluded.last);
END;

CREATE TRIGGER verifications_right_code AFTER UPDATE OF state ON verifications
WHEN new.state = 'Verified' AND old.state <> 'Verified'
BEGIN
	DELETE FROM number_failures WHERE account_id = new.account_id AND phone_number = new.phone_number;
END;
