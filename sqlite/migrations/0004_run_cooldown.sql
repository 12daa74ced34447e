-- A run of wrong codes is over once a whole cooldown has passed since its
-- last wrong code, and the count then starts again. A create judged that,
-- but a wrong code on a request created before the run ended added to the
-- old run, and could lock its number out for another whole cooldown. Each
-- verification now keeps the cooldown it was created under (0: failures
-- off, or created before this step), and such a wrong code starts a new
-- run of one.
ALTER TABLE verifications ADD COLUMN run_cooldown INTEGER NOT NULL DEFAULT 0;

DROP TRIGGER verifications_wrong_code;

CREATE TRIGGER verifications_wrong_code AFTER UPDATE OF attempts ON verifications
WHEN new.attempts > old.attempts AND new.state <> 'Verified'
BEGIN
	INSERT INTO number_failures (account_id, phone_number, failures, last)
	VALUES (new.account_id, new.phone_number, 1, new.updated)
	ON CONFLICT (account_id, phone_number) DO UPDATE SET
		failures = iif(new.run_cooldown > 0 AND excluded.last - last >= new.run_cooldown, 1, failures + 1),
		last = max(last, excluded.last);
END;
