package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"verifyd"
)

// purgeChunk is how many rows one purge write deletes. The purge is many
// small writes rather than one large one, so creates and validates keep
// flowing between them.
const purgeChunk = 500

// bucketScanChunk is how many limit buckets (or runs of wrong codes) one
// purge write looks at.
const bucketScanChunk = 2000

// orphanReceiptAge is how long a receipt waits for its carrier id.
const orphanReceiptAge = 24 * time.Hour

// PurgeVerifications deletes verifications (and their messages) created
// before their account's retention ended, limit buckets that ran out, runs
// of wrong codes that their account's cooldown ended, conversion counts
// older than the watch window, blocks that ended, receipts that waited a
// day for their carrier id in vain, idempotency records past their 24 hours
// and dev inbox messages past InboxRetention, all as of now. It returns how
// many verifications went, and every step's failure.
func (s *Store) PurgeVerifications(ctx context.Context, now time.Time) (int, error) {
	accounts, err := s.ListAccounts(ctx)
	if err != nil {
		return 0, err
	}
	// Each step goes on past another's failure, so that a step failing at
	// every purge does not leave every other kind of row to grow; all the
	// failures are returned. Once ctx is done nothing more can succeed.
	var (
		total int
		errs  []error
	)
	step := func(err error) bool {
		errs = append(errs, err)
		return ctx.Err() == nil
	}
	for _, a := range accounts {
		n, err := s.purgeChunks(ctx, `DELETE FROM verifications WHERE vid IN (
			SELECT vid FROM verifications WHERE account_id = ? AND created < ? LIMIT ?)`,
			a.ID, ms(now.Add(-a.Settings.Retention())))
		total += n
		if !step(err) {
			return total, errors.Join(errs...)
		}
	}
	if !step(s.purgeBuckets(ctx, now)) {
		return total, errors.Join(errs...)
	}
	for _, a := range accounts {
		_, cooldown, _ := a.Settings.Failures()
		if !step(s.purgeRuns(ctx, a.ID, now.Add(-cooldown))) {
			return total, errors.Join(errs...)
		}
	}
	for _, q := range []struct {
		query string
		arg   int64
	}{
		{`DELETE FROM watch_counts WHERE (account_id, prefix, country, hour) IN (
			SELECT account_id, prefix, country, hour FROM watch_counts WHERE hour < ? LIMIT ?)`,
			hourOf(now.Add(-verifyd.WatchWindow))},
		{`DELETE FROM watch_blocks WHERE key IN (
			SELECT key FROM watch_blocks WHERE until <= ? LIMIT ?)`, ms(now)},
		{`DELETE FROM orphan_receipts WHERE carrier_id IN (
			SELECT carrier_id FROM orphan_receipts WHERE at < ? LIMIT ?)`, ms(now.Add(-orphanReceiptAge))},
		{`DELETE FROM idempotent_requests WHERE (account_id, key) IN (
			SELECT account_id, key FROM idempotent_requests WHERE created < ? LIMIT ?)`, ms(now.Add(-idempotencyWindow))},
		{`DELETE FROM inbox_messages WHERE id IN (
			SELECT id FROM inbox_messages WHERE created < ? LIMIT ?)`, ms(now.Add(-verifyd.InboxRetention))},
	} {
		if _, err := s.purgeChunks(ctx, q.query, q.arg); !step(err) {
			break
		}
	}
	return total, errors.Join(errs...)
}

// purgeRuns deletes the account's runs of wrong codes whose last wrong
// code came at or before ended. There is no index on last (every wrong code
// would move an entry in it), so the purge walks the account's runs in key
// order a chunk per write, from where the last write stopped: a delete that
// looked for ended runs from the first of the account's runs at every write
// read the runs still going again each time, and held the writer longer at
// every write of a large purge.
func (s *Store) purgeRuns(ctx context.Context, accountID int64, ended time.Time) error {
	after := ""
	for {
		var (
			scanned int
			last    sql.NullString
		)
		err := s.w.write(ctx, func(t *tx) error {
			if err := t.queryRow(`SELECT count(*), max(phone_number) FROM (
				SELECT phone_number FROM number_failures WHERE account_id = ? AND phone_number > ?
				ORDER BY phone_number LIMIT ?)`, accountID, after, bucketScanChunk).
				Scan(&scanned, &last); err != nil {
				return err
			}
			_, err := t.exec(`DELETE FROM number_failures
				WHERE account_id = ? AND phone_number > ? AND phone_number <= ? AND last <= ?`,
				accountID, after, last.String, ms(ended))
			return err
		})
		if err != nil || scanned < bucketScanChunk {
			return err
		}
		after = last.String
	}
}

// purgeBuckets deletes the limit buckets whose tat has passed, walking the
// table in key order a chunk per write, since no index on tat exists.
func (s *Store) purgeBuckets(ctx context.Context, now time.Time) error {
	after := ""
	for {
		var (
			scanned int
			last    sql.NullString
		)
		err := s.w.write(ctx, func(t *tx) error {
			if err := t.queryRow(`SELECT count(*), max(key) FROM (
				SELECT key FROM limit_buckets WHERE key > ? ORDER BY key LIMIT ?)`, after, bucketScanChunk).
				Scan(&scanned, &last); err != nil {
				return err
			}
			_, err := t.exec("DELETE FROM limit_buckets WHERE key > ? AND key <= ? AND tat <= ?",
				after, last.String, ms(now))
			return err
		})
		if err != nil || scanned < bucketScanChunk {
			return err
		}
		after = last.String
	}
}

// purgeChunks runs a chunked DELETE (its last parameter the chunk size)
// until a chunk comes back short, and returns how many rows went.
func (s *Store) purgeChunks(ctx context.Context, query string, args ...any) (int, error) {
	args = append(args, purgeChunk)
	total := 0
	for {
		var n int64
		err := s.w.write(ctx, func(t *tx) error {
			res, err := t.exec(query, args...)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, err
		}
		total += int(n)
		if n < purgeChunk {
			return total, nil
		}
	}
}
