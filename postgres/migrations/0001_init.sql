-- Times are bigint Unix milliseconds (UTC), like the SQLite store's, except a
-- limit bucket's tat, which is Unix nanoseconds: verifyd.Limit.Take is exact
-- and so is what it keeps. There are no foreign keys to accounts: every
-- insert would take a KEY SHARE lock on its account's row, and thousands of
-- concurrent creates for one account would turn that into a multixact storm.

CREATE TABLE accounts (
	id            bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name          text    NOT NULL UNIQUE,
	secret_digest bytea,
	password_hash text    NOT NULL,
	disabled      boolean NOT NULL,
	settings      jsonb   NOT NULL, -- verifyd.Settings
	created       bigint  NOT NULL
);

CREATE TABLE verifications (
	id            text    PRIMARY KEY,
	account_id    bigint  NOT NULL,
	phone_number  text    NOT NULL,
	country       text    NOT NULL,
	number_status text    NOT NULL,
	state         text    NOT NULL,
	code_mac      bytea,
	attempts      integer NOT NULL,
	max_attempts  integer NOT NULL,
	created       bigint  NOT NULL,
	valid_until   bigint  NOT NULL,
	verified      bigint,           -- NULL until verified
	updated       bigint  NOT NULL
);

-- The purge deletes by account (each has its own retention) and age.
CREATE INDEX verifications_account_created ON verifications (account_id, created);

-- The outbox, which is also the delivery queue.
CREATE TABLE messages (
	request_id   text    PRIMARY KEY REFERENCES verifications (id) ON DELETE CASCADE,
	account_id   bigint  NOT NULL,
	to_number    text    NOT NULL,
	from_id      text    NOT NULL,
	sealed       bytea,             -- NULL once handed over, expired or withdrawn
	state        text    NOT NULL,
	attempts     integer NOT NULL,
	next_attempt bigint  NOT NULL,
	deadline     bigint  NOT NULL,
	lease_until  bigint  NOT NULL,  -- 0 when not leased
	carrier_id   text    NOT NULL,  -- the first part's, once submitted
	error        text    NOT NULL,
	created      bigint  NOT NULL,
	updated      bigint  NOT NULL
);

-- A queued message is due once both its next attempt and any lease have
-- passed: one expression orders the due ones first, and the partial index
-- holds only queued rows, so a claim reads only what it takes.
CREATE INDEX messages_due ON messages (GREATEST(next_attempt, lease_until)) WHERE state = 'Queued';

-- One row per carrier id: a part of a submitted message, or a receipt whose
-- part is not known yet (request_id NULL). Keeping both in one table keyed
-- by the carrier id makes a receipt and the submit it races with meet on
-- the same unique key, so neither can miss the other.
CREATE TABLE message_parts (
	carrier_id text    PRIMARY KEY,
	request_id text    REFERENCES messages (request_id) ON DELETE CASCADE,
	part       integer NOT NULL,
	state      text    NOT NULL,
	error      text    NOT NULL,
	updated    bigint  NOT NULL
);

CREATE INDEX message_parts_request ON message_parts (request_id, part);
CREATE INDEX message_parts_orphans ON message_parts (updated) WHERE request_id IS NULL;

-- One GCRA theoretical arrival time per send limit bucket. Some buckets
-- (an account's country, a busy prefix) are charged by nearly every create:
-- tat has no index and pages keep room, so a charge is a HOT update that
-- adds no index entry, and a hot bucket's key does not pile up dead entries
-- that every later lock has to step over. The purge scans instead.
CREATE TABLE limit_buckets (
	key text   PRIMARY KEY,
	tat bigint NOT NULL -- Unix nanoseconds
) WITH (fillfactor = 50);

CREATE TABLE inbox_messages (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	request_id text   NOT NULL,
	to_number  text   NOT NULL,
	from_id    text   NOT NULL,
	sealed     bytea,
	created    bigint NOT NULL
);

CREATE INDEX inbox_messages_to ON inbox_messages (to_number, created, id);
CREATE INDEX inbox_messages_created ON inbox_messages (created, id);

CREATE TABLE idempotent_requests (
	account_id bigint  NOT NULL,
	key        text    NOT NULL,
	body_hash  bytea   NOT NULL,
	done       boolean NOT NULL,
	status     integer NOT NULL,
	response   bytea,
	created    bigint  NOT NULL,
	PRIMARY KEY (account_id, key)
);

CREATE INDEX idempotent_requests_created ON idempotent_requests (created);
