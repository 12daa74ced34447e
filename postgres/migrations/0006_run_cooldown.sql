-- A run of wrong codes is over once a whole cooldown has passed since its
-- last wrong code, and the count then starts again. A create judged that,
-- but a wrong code on a request created before the run ended added to the
-- old run, and could lock its number out for another whole cooldown. Each
-- verification now keeps the cooldown it was created under (0: failures
-- off, or created before this step), and such a wrong code starts a new
-- run of one.
ALTER TABLE verifications ADD COLUMN run_cooldown bigint NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION verifyd_keep_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.state = 'Verified' THEN
		DELETE FROM number_failures WHERE account_id = NEW.account_id AND phone_number = NEW.phone_number;
	ELSE
		INSERT INTO number_failures (account_id, phone_number, failures, last)
		VALUES (NEW.account_id, NEW.phone_number, 1, NEW.updated)
		ON CONFLICT (account_id, phone_number)
		DO UPDATE SET
			failures = CASE WHEN NEW.run_cooldown > 0 AND excluded.last - number_failures.last >= NEW.run_cooldown
				THEN 1 ELSE number_failures.failures + 1 END,
			last = GREATEST(number_failures.last, excluded.last);
	END IF;
	RETURN NULL;
END
$$;
