package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"verifyd"
)

// purgeBatch is how many rows one purge statement deletes: small enough to
// finish well within the call timeout and to hold row locks only briefly,
// beside live traffic.
const purgeBatch = 5000

// orphanReceiptLife is how long a receipt waits for its carrier id.
const orphanReceiptLife = 24 * time.Hour

// PurgeVerifications deletes verifications (and their messages) created
// before their account's retention ended, limit buckets that ran out, what
// the abuse rules no longer need (purgeAbuse), receipts that never found
// their message within a day, idempotency records past their 24 hours and
// dev inbox messages past InboxRetention, as of now. It returns how many
// verifications went, and every step's failure. Each batch is its own
// statement and its own timeout, so a large backlog is worked through
// rather than timed out; run it from TryMaintenance so one instance does it.
//
// Every delete re-checks its condition on the row it deletes: a bucket
// charged (or a receipt matched) while the purge waited for its lock is
// kept.
func (s *Store) PurgeVerifications(ctx context.Context, now time.Time) (int, error) {
	type retention struct {
		account int64
		cutoff  int64
	}
	var accounts []retention
	err := s.do(ctx, func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, "SELECT id, settings FROM accounts")
		var err error
		accounts, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (retention, error) {
			var (
				id       int64
				raw      []byte
				settings verifyd.Settings
			)
			if err := row.Scan(&id, &raw); err != nil {
				return retention{}, err
			}
			if err := json.Unmarshal(raw, &settings); err != nil {
				return retention{}, fmt.Errorf("account %d settings: %w", id, err)
			}
			return retention{id, ms(now.Add(-settings.Retention()))}, nil
		})
		return err
	})
	if err != nil {
		return 0, err
	}
	// Each step goes on past another's failure, so that a step failing at
	// every purge (a batch that times out, say) does not leave every other
	// kind of row to grow; all the failures are returned. Once ctx is done
	// nothing more can succeed.
	var (
		total int
		errs  []error
	)
	step := func(err error) bool {
		errs = append(errs, err)
		return ctx.Err() == nil
	}
	for _, a := range accounts {
		n, err := s.deleteInBatches(ctx, `DELETE FROM verifications WHERE id IN (
			SELECT id FROM verifications WHERE account_id = $1 AND created < $2 LIMIT $3)`, a.account, a.cutoff)
		total += n
		if !step(err) {
			return total, errors.Join(errs...)
		}
	}
	for _, del := range []struct {
		sql string
		arg int64
	}{
		{`DELETE FROM limit_buckets WHERE key IN (SELECT key FROM limit_buckets WHERE tat <= $1 LIMIT $2) AND tat <= $1`,
			now.UnixNano()},
		{`DELETE FROM message_parts WHERE carrier_id IN (
			SELECT carrier_id FROM message_parts WHERE request_id IS NULL AND part = 0 AND updated < $1 LIMIT $2)
			AND request_id IS NULL AND updated < $1`, ms(now.Add(-orphanReceiptLife))},
		{`DELETE FROM idempotent_requests WHERE (account_id, key) IN (
			SELECT account_id, key FROM idempotent_requests WHERE created < $1 LIMIT $2) AND created < $1`,
			ms(now.Add(-idempotencyWindow))},
		{`DELETE FROM inbox_messages WHERE id IN (
			SELECT id FROM inbox_messages WHERE created < $1 LIMIT $2)`, ms(now.Add(-verifyd.InboxRetention))},
	} {
		if _, err := s.deleteInBatches(ctx, del.sql, del.arg); !step(err) {
			return total, errors.Join(errs...)
		}
	}
	step(s.purgeAbuse(ctx, now))
	return total, errors.Join(errs...)
}

// deleteInBatches runs a delete whose last parameter is its batch size
// until a batch comes back short, and returns how many rows went.
func (s *Store) deleteInBatches(ctx context.Context, sql string, args ...any) (int, error) {
	args = append(args, purgeBatch)
	total := 0
	for {
		var n int64
		err := s.do(ctx, func(ctx context.Context) error {
			tag, err := s.pool.Exec(ctx, sql, args...)
			n = tag.RowsAffected()
			return err
		})
		total += int(n)
		if err != nil || n < purgeBatch {
			return total, err
		}
	}
}
