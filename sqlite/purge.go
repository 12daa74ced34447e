package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"verifyd"
)

// purgeChunk is how many rows one purge write deletes. The purge is many
// small writes rather than one large one, so creates and validates keep
// flowing between them.
const purgeChunk = 500

// bucketScanChunk is how many limit buckets one purge write looks at.
const bucketScanChunk = 2000

// orphanReceiptAge is how long a receipt waits for its carrier id.
const orphanReceiptAge = 24 * time.Hour

// PurgeVerifications deletes verifications (and their messages) created
// before their account's retention ended, limit buckets that ran out, what
// the abuse rules no longer need (purgeAbuse), receipts that waited a day
// for their carrier id in vain, idempotency records past their 24 hours and
// dev inbox messages past InboxRetention, all as of now. It returns how many
// verifications went.
func (s *Store) PurgeVerifications(ctx context.Context, now time.Time) (int, error) {
	cutoffs, err := s.retentionCutoffs(ctx, now)
	if err != nil {
		return 0, err
	}
	total := 0
	for id, cutoff := range cutoffs {
		n, err := s.purgeChunks(ctx, `DELETE FROM verifications WHERE vid IN (
			SELECT vid FROM verifications WHERE account_id = ? AND created < ? LIMIT ?)`, id, ms(cutoff))
		total += n
		if err != nil {
			return total, err
		}
	}
	if err := s.purgeBuckets(ctx, now); err != nil {
		return total, err
	}
	if err := s.purgeAbuse(ctx, now); err != nil {
		return total, err
	}
	for _, q := range []struct {
		query string
		arg   time.Time
	}{
		{`DELETE FROM orphan_receipts WHERE carrier_id IN (
			SELECT carrier_id FROM orphan_receipts WHERE at < ? LIMIT ?)`, now.Add(-orphanReceiptAge)},
		{`DELETE FROM idempotent_requests WHERE (account_id, key) IN (
			SELECT account_id, key FROM idempotent_requests WHERE created < ? LIMIT ?)`, now.Add(-idempotencyWindow)},
		{`DELETE FROM inbox_messages WHERE id IN (
			SELECT id FROM inbox_messages WHERE created < ? LIMIT ?)`, now.Add(-verifyd.InboxRetention)},
	} {
		if _, err := s.purgeChunks(ctx, q.query, ms(q.arg)); err != nil {
			return total, err
		}
	}
	return total, nil
}

// retentionCutoffs maps each account to the creation time before which
// its verifications go.
func (s *Store) retentionCutoffs(ctx context.Context, now time.Time) (map[int64]time.Time, error) {
	rows, err := s.rdb.QueryContext(ctx, "SELECT id, settings FROM accounts")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]time.Time{}
	for rows.Next() {
		var (
			id       int64
			raw      string
			settings verifyd.Settings
		)
		if err := rows.Scan(&id, &raw); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(raw), &settings); err != nil {
			return nil, fmt.Errorf("sqlite: settings of account %d: %w", id, err)
		}
		out[id] = now.Add(-settings.Retention())
	}
	return out, rows.Err()
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
