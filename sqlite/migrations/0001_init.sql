-- Times are integer Unix milliseconds, UTC. Tables keyed by a request id
-- are WITHOUT ROWID: the id is the only key they are ever looked up by.

CREATE TABLE accounts (
	id            INTEGER PRIMARY KEY,
	name          TEXT    NOT NULL UNIQUE,
	secret_digest BLOB,
	password_hash TEXT    NOT NULL,
	disabled      INTEGER NOT NULL,
	settings      TEXT    NOT NULL, -- verifyd.Settings as JSON
	created       INTEGER NOT NULL
) STRICT;

CREATE TABLE verifications (
	id            TEXT    PRIMARY KEY,
	account_id    INTEGER NOT NULL REFERENCES accounts (id),
	phone_number  TEXT    NOT NULL,
	country       TEXT    NOT NULL,
	number_status TEXT    NOT NULL,
	state         TEXT    NOT NULL,
	code_mac      BLOB,
	attempts      INTEGER NOT NULL,
	max_attempts  INTEGER NOT NULL,
	created       INTEGER NOT NULL,
	valid_until   INTEGER NOT NULL,
	verified      INTEGER,
	updated       INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The purge deletes by account (each has its own retention) and age.
CREATE INDEX verifications_account_created ON verifications (account_id, created);

-- The outbox, which is also the delivery queue.
CREATE TABLE messages (
	request_id   TEXT    PRIMARY KEY REFERENCES verifications (id) ON DELETE CASCADE,
	account_id   INTEGER NOT NULL,
	to_number    TEXT    NOT NULL,
	from_id      TEXT    NOT NULL,
	sealed       BLOB,             -- NULL once handed over, expired or withdrawn
	state        TEXT    NOT NULL,
	attempts     INTEGER NOT NULL,
	next_attempt INTEGER NOT NULL,
	deadline     INTEGER NOT NULL,
	lease_until  INTEGER NOT NULL, -- 0 when not leased
	error        TEXT    NOT NULL,
	created      INTEGER NOT NULL,
	updated      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- A queued message is due once both its next attempt and any lease have
-- passed; one expression keeps the due ones first and the rest out of the
-- way, so a claim reads only what it takes.
CREATE INDEX messages_due ON messages (max(next_attempt, lease_until)) WHERE state = 'Queued';

-- The carrier's ids, one per part of a submitted message.
CREATE TABLE message_parts (
	carrier_id TEXT    PRIMARY KEY,
	request_id TEXT    NOT NULL REFERENCES messages (request_id) ON DELETE CASCADE,
	part       INTEGER NOT NULL,
	state      TEXT    NOT NULL,
	error      TEXT    NOT NULL,
	updated    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX message_parts_request ON message_parts (request_id, part);

-- Receipts that arrived before their carrier id was recorded.
CREATE TABLE orphan_receipts (
	carrier_id TEXT    PRIMARY KEY,
	state      TEXT    NOT NULL,
	error      TEXT    NOT NULL,
	at         INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX orphan_receipts_at ON orphan_receipts (at);

-- One GCRA theoretical arrival time per send limit bucket.
CREATE TABLE limit_buckets (
	key TEXT    PRIMARY KEY,
	tat INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX limit_buckets_tat ON limit_buckets (tat);

CREATE TABLE inbox_messages (
	id         INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: the inbox page polls by id
	request_id TEXT    NOT NULL,
	to_number  TEXT    NOT NULL,
	from_id    TEXT    NOT NULL,
	sealed     BLOB,
	created    INTEGER NOT NULL
) STRICT;

CREATE INDEX inbox_messages_to ON inbox_messages (to_number, created);
CREATE INDEX inbox_messages_created ON inbox_messages (created);

CREATE TABLE idempotent_requests (
	account_id INTEGER NOT NULL,
	key        TEXT    NOT NULL,
	body_hash  BLOB    NOT NULL,
	done       INTEGER NOT NULL,
	status     INTEGER NOT NULL,
	response   BLOB,
	created    INTEGER NOT NULL,
	PRIMARY KEY (account_id, key)
) STRICT, WITHOUT ROWID;

CREATE INDEX idempotent_requests_created ON idempotent_requests (created);
