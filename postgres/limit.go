package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"verifyd"
)

// ReadBuckets returns the stored bucket of each of keys that has one.
func (s *Store) ReadBuckets(ctx context.Context, keys []string) (map[string]verifyd.Bucket, error) {
	var out map[string]verifyd.Bucket
	err := s.do(ctx, func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, "SELECT key, tat, sends FROM limit_buckets WHERE key = ANY($1)", keys)
		var err error
		out, err = collectBuckets(rows, len(keys))
		return err
	})
	return out, err
}

// ReadRun returns the run of wrong codes of the account's number.
func (s *Store) ReadRun(ctx context.Context, accountID int64, number string) (verifyd.Run, error) {
	var r verifyd.Run
	err := s.do(ctx, func(ctx context.Context) error {
		var err error
		r, err = scanRun(s.pool.QueryRow(ctx, "SELECT failures, last FROM number_failures WHERE account_id = $1 AND phone_number = $2",
			accountID, number))
		return err
	})
	return r, err
}

// deleteBuckets deletes the buckets of $1, locking them in key order as a
// create group does (see queueLockBuckets): in any other order, a reset and
// a group each holding one of a number's two buckets would wait on each
// other until the deadlock detector ended one.
const deleteBuckets = `DELETE FROM limit_buckets WHERE key IN (
	SELECT key FROM limit_buckets WHERE key = ANY($1) ORDER BY key COLLATE "C" FOR UPDATE)
RETURNING key, tat, sends`

// ResetNumber deletes the buckets with keys and the account's number's run
// of wrong codes in one transaction, and returns what it deleted. The
// buckets go first: a create group locks its buckets before it may delete
// a run a cooldown ended, so the other order could wait on it in a cycle.
func (s *Store) ResetNumber(ctx context.Context, accountID int64, number string, keys []string) (map[string]verifyd.Bucket, verifyd.Run, error) {
	var (
		deleted map[string]verifyd.Bucket
		run     verifyd.Run
	)
	err := s.do(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			rows, _ := tx.Query(ctx, deleteBuckets, keys)
			var err error
			if deleted, err = collectBuckets(rows, len(keys)); err != nil {
				return err
			}
			run, err = scanRun(tx.QueryRow(ctx, `DELETE FROM number_failures WHERE account_id = $1 AND phone_number = $2
				RETURNING failures, last`, accountID, number))
			return err
		})
	})
	if err != nil {
		return nil, verifyd.Run{}, err
	}
	return deleted, run, nil
}

// collectBuckets decodes rows of key, tat and sends.
func collectBuckets(rows pgx.Rows, size int) (map[string]verifyd.Bucket, error) {
	out := make(map[string]verifyd.Bucket, size)
	var (
		key   string
		tat   int64
		sends []byte
	)
	_, err := pgx.ForEachRow(rows, []any{&key, &tat, &sends}, func() error {
		b, err := verifyd.DecodeBucket(sends, time.Unix(0, tat))
		if err != nil {
			return fmt.Errorf("limit bucket %q: %w", key, err)
		}
		out[key] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// scanRun reads a run of failures and last; no row is the zero Run.
func scanRun(row pgx.Row) (verifyd.Run, error) {
	var (
		r    verifyd.Run
		last int64
	)
	err := row.Scan(&r.Failures, &last)
	if errors.Is(err, pgx.ErrNoRows) {
		return verifyd.Run{}, nil
	}
	if err != nil {
		return verifyd.Run{}, err
	}
	r.Last = fromMS(last)
	return r, nil
}
