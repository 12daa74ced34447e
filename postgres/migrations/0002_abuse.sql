-- Abuse and SMS pumping: runs of wrong codes per number, and the
-- conversion watch's counts and blocks. Times are Unix milliseconds.

-- The current run of consecutive wrong codes of each number of an account:
-- a wrong code adds one, a right code deletes the row.
CREATE TABLE number_failures (
	account_id   bigint  NOT NULL,
	phone_number text    NOT NULL,
	failures     integer NOT NULL,
	last         bigint  NOT NULL, -- the last wrong code
	PRIMARY KEY (account_id, phone_number)
);

-- Sends and verified sends per account, number prefix and hour of creation,
-- tallied from verifications once their outcome is final.
CREATE TABLE watch_counts (
	account_id bigint  NOT NULL,
	prefix     text    NOT NULL,
	country    text    NOT NULL,
	hour       bigint  NOT NULL, -- created / 3,600,000
	sends      integer NOT NULL,
	verified   integer NOT NULL,
	PRIMARY KEY (account_id, prefix, country, hour)
);

CREATE INDEX watch_counts_hour ON watch_counts (hour);

-- How far each account's verifications have been tallied: everything
-- created before tallied_until is counted.
CREATE TABLE watch_tallies (
	account_id    bigint PRIMARY KEY,
	tallied_until bigint NOT NULL
);

-- Prefixes and countries the watch found converting too little. key is
-- verifyd.BlockKey of the other columns.
CREATE TABLE watch_blocks (
	key        text    PRIMARY KEY,
	account_id bigint  NOT NULL,
	kind       text    NOT NULL,
	subject    text    NOT NULL,
	country    text    NOT NULL,
	started    bigint  NOT NULL,
	until      bigint  NOT NULL,
	sends      integer NOT NULL,
	verified   integer NOT NULL,
	mode       text    NOT NULL
);
