-- Abuse and SMS pumping: runs of wrong codes per number, and the
-- conversion watch's counts and blocks.

-- The current run of consecutive wrong codes of each number of an account:
-- a wrong code adds one, a right code deletes the row. Keyed by account
-- first, so the purge walks one account's rows by its key.
CREATE TABLE number_failures (
	account_id   INTEGER NOT NULL,
	phone_number TEXT    NOT NULL,
	failures     INTEGER NOT NULL,
	last         INTEGER NOT NULL, -- the last wrong code
	PRIMARY KEY (account_id, phone_number)
) STRICT, WITHOUT ROWID;

-- Sends and verified sends per account, number prefix and hour of creation,
-- tallied from verifications once their outcome is final.
CREATE TABLE watch_counts (
	account_id INTEGER NOT NULL,
	prefix     TEXT    NOT NULL,
	country    TEXT    NOT NULL,
	hour       INTEGER NOT NULL, -- created / 3,600,000
	sends      INTEGER NOT NULL,
	verified   INTEGER NOT NULL,
	PRIMARY KEY (account_id, prefix, country, hour)
) STRICT, WITHOUT ROWID;

CREATE INDEX watch_counts_hour ON watch_counts (hour);

-- How far each account's verifications have been tallied: everything
-- created before tallied_until is counted.
CREATE TABLE watch_tallies (
	account_id    INTEGER PRIMARY KEY,
	tallied_until INTEGER NOT NULL
) STRICT;

-- Prefixes and countries the watch found converting too little. key is
-- verifyd.BlockKey of the other columns.
CREATE TABLE watch_blocks (
	key        TEXT    PRIMARY KEY,
	account_id INTEGER NOT NULL,
	kind       TEXT    NOT NULL,
	subject    TEXT    NOT NULL,
	country    TEXT    NOT NULL,
	started    INTEGER NOT NULL,
	until      INTEGER NOT NULL,
	sends      INTEGER NOT NULL,
	verified   INTEGER NOT NULL,
	mode       TEXT    NOT NULL
) STRICT, WITHOUT ROWID;
