-- A validate's update of its verification keeps its number's run of wrong
-- codes (number_failures) in the same statement, so nothing is added to the
-- validate's round trips and no path that updates a verification can forget
-- it.
CREATE FUNCTION verifyd_keep_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.state = 'Verified' THEN
		DELETE FROM number_failures WHERE account_id = NEW.account_id AND phone_number = NEW.phone_number;
	ELSE
		INSERT INTO number_failures (account_id, phone_number, failures, last)
		VALUES (NEW.account_id, NEW.phone_number, 1, NEW.updated)
		ON CONFLICT (account_id, phone_number)
		DO UPDATE SET failures = number_failures.failures + 1, last = GREATEST(number_failures.last, excluded.last);
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER verifications_keep_run AFTER UPDATE OF attempts, state ON verifications
FOR EACH ROW WHEN (NEW.state = 'Verified' AND OLD.state <> 'Verified' OR NEW.attempts > OLD.attempts)
EXECUTE FUNCTION verifyd_keep_run();
