-- The fingerprint of the server key the database is written under
-- (otp.Keyring.Fingerprint). serve refuses to start with another key: every
-- stored MAC and sealed text would be worthless under it, so each right
-- code would be refused and each queued text fail.
CREATE TABLE server_key (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	fingerprint BLOB    NOT NULL
) STRICT;
