-- Times are integer Unix milliseconds, UTC.

CREATE TABLE accounts (
	id            INTEGER PRIMARY KEY,
	name          TEXT    NOT NULL UNIQUE,
	secret_digest BLOB,
	password_hash TEXT    NOT NULL,
	disabled      INTEGER NOT NULL,
	settings      TEXT    NOT NULL, -- verifyd.Settings as JSON
	created       INTEGER NOT NULL
) STRICT;

-- A request id is a random UUID, so a table keyed by it takes every insert
-- on a random page, and a group commit writes one page per create. Rows are
-- therefore stored in creation order (vid) and found by id through a narrow
-- index, and the message of a verification shares its vid.
CREATE TABLE verifications (
	vid           INTEGER PRIMARY KEY,
	id            TEXT    NOT NULL UNIQUE,
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
) STRICT;

-- The purge deletes by account (each has its own retention) and age.
CREATE INDEX verifications_account_created ON verifications (account_id, created);

-- The outbox, which is also the delivery queue.
CREATE TABLE messages (
	vid          INTEGER PRIMARY KEY REFERENCES verifications (vid) ON DELETE CASCADE,
	request_id   TEXT    NOT NULL,
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
) STRICT;

-- A queued message is due once both its next attempt and any lease have
-- passed; one expression keeps the due ones first and the rest out of the
-- way, so a claim reads only what it takes.
CREATE INDEX messages_due ON messages (max(next_attempt, lease_until)) WHERE state = 'Queued';

-- The carrier's ids, one per part of a submitted message.
CREATE TABLE message_parts (
	carrier_id TEXT    PRIMARY KEY,
	vid        INTEGER NOT NULL REFERENCES messages (vid) ON DELETE CASCADE,
	part       INTEGER NOT NULL,
	state      TEXT    NOT NULL,
	error      TEXT    NOT NULL,
	updated    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX message_parts_vid ON message_parts (vid, part);

-- Receipts that arrived before their carrier id was recorded.
CREATE TABLE orphan_receipts (
	carrier_id TEXT    PRIMARY KEY,
	state      TEXT    NOT NULL,
	error      TEXT    NOT NULL,
	at         INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX orphan_receipts_at ON orphan_receipts (at);

-- One GCRA theoretical arrival time per send limit bucket. The key is
-- stored behind its last field (the number, prefix or country), so that
-- the buckets of one number and of its prefix share a page. There is no
-- index on tat: every create would move entries in it, while only the
-- purge reads it, walking the table in key order.
CREATE TABLE limit_buckets (
	key TEXT    PRIMARY KEY,
	tat INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

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
