package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"verifyd"
)

// chargeLimits charges the send of v at now to every rate limit, or to
// none: it judges them all, and the failure and block limits, first and
// returns the Throttled error of the longest wait, writing nothing, when
// any refuses. It reads and writes all buckets in one statement each,
// since it runs inside every create.
func chargeLimits(t *tx, v *verifyd.Verification, limits []verifyd.Limit, now time.Time) error {
	guard, err := judgeGuards(t, v, limits, now)
	if err != nil {
		return err
	}
	var (
		keys    []any // as stored
		buckets = make(map[string]verifyd.Bucket, len(limits))
		byStore = make(map[string]string, len(limits)) // stored key -> key
	)
	for _, l := range limits {
		if _, dup := buckets[l.Key]; !dup && charged(l) {
			buckets[l.Key] = verifyd.Bucket{} // a new bucket
			stored := storedKey(l.Key)
			byStore[stored] = l.Key
			keys = append(keys, stored)
		}
	}
	if len(keys) > 0 {
		if err := readBuckets(t, keys, byStore, buckets); err != nil {
			return err
		}
	}
	var (
		refused *verifyd.Limit
		longest time.Duration
	)
	for i, l := range limits {
		if !charged(l) {
			if wait, ok := guard.waits[i]; ok && (refused == nil || wait > longest) {
				refused, longest = &limits[i], wait
			}
			continue
		}
		// A key listed twice is charged twice, as two sends would be.
		next, wait, ok := l.Take(buckets[l.Key], now)
		if !ok {
			if refused == nil || wait > longest {
				refused, longest = &limits[i], wait
			}
			continue
		}
		buckets[l.Key] = next
	}
	if refused != nil {
		return refused.Throttled(longest)
	}
	if guard.runOver {
		if err := forgetRun(t, v, guard.lastFail); err != nil {
			return err
		}
	}
	if len(keys) == 0 {
		return nil
	}
	args := make([]any, 0, 3*len(keys))
	for _, k := range keys {
		b := buckets[byStore[k.(string)]]
		// Rounded up: the purge must not take a bucket before its last send
		// has left the window.
		args = append(args, k, ms(b.Until.Add(time.Millisecond-time.Nanosecond)), b.Encode())
	}
	_, err = t.exec("INSERT INTO limit_buckets (key, tat, sends) VALUES "+
		strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", len(keys)), ", ")+
		" ON CONFLICT (key) DO UPDATE SET tat = excluded.tat, sends = excluded.sends", args...)
	return err
}

// charged reports whether a send is charged to l: a rate that is on.
func charged(l verifyd.Limit) bool { return l.Kind == verifyd.LimitRate && !l.Rate.Off() }

// readBuckets fills buckets with every stored key's bucket.
func readBuckets(t *tx, keys []any, byStore map[string]string, buckets map[string]verifyd.Bucket) error {
	rows, err := t.query("SELECT key, tat, sends FROM limit_buckets WHERE key IN ("+
		strings.TrimSuffix(strings.Repeat("?, ", len(keys)), ", ")+")", keys...)
	if err != nil {
		return err
	}
	return scanBuckets(rows, byStore, buckets)
}

// scanBuckets decodes rows of stored key, tat and sends into buckets, by
// the key each stored key stands for, and closes rows.
func scanBuckets(rows *sql.Rows, byStore map[string]string, buckets map[string]verifyd.Bucket) error {
	defer rows.Close()
	for rows.Next() {
		var (
			key   string
			tat   int64
			sends []byte
		)
		if err := rows.Scan(&key, &tat, &sends); err != nil {
			return err
		}
		b, err := verifyd.DecodeBucket(sends, fromMS(tat))
		if err != nil {
			return fmt.Errorf("limit bucket %q: %w", key, err)
		}
		buckets[byStore[key]] = b
	}
	return rows.Err()
}

// storedKey is how a bucket key is stored: its last field (the number,
// prefix or country) first, so that the buckets of one number and of its
// prefix sort together and a create dirties one page of them, not three.
// Any key works; the order only matters for speed.
func storedKey(key string) string {
	return key[strings.LastIndexByte(key, ':')+1:] + "|" + key
}

// ReadBuckets returns the stored bucket of each of keys that has one.
func (s *Store) ReadBuckets(ctx context.Context, keys []string) (map[string]verifyd.Bucket, error) {
	out := make(map[string]verifyd.Bucket, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	stored, byStore := storedKeys(keys)
	rows, err := s.rdb.QueryContext(ctx, "SELECT key, tat, sends FROM limit_buckets WHERE key IN ("+
		strings.TrimSuffix(strings.Repeat("?, ", len(stored)), ", ")+")", stored...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if err := scanBuckets(rows, byStore, out); err != nil {
		return nil, err
	}
	return out, nil
}

// ReadRun returns the run of wrong codes of the account's number.
func (s *Store) ReadRun(ctx context.Context, accountID int64, number string) (verifyd.Run, error) {
	var (
		r    verifyd.Run
		last int64
	)
	err := s.rdb.QueryRowContext(ctx, "SELECT failures, last FROM number_failures WHERE account_id = ? AND phone_number = ?",
		accountID, number).Scan(&r.Failures, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return verifyd.Run{}, nil
	}
	if err != nil {
		return verifyd.Run{}, err
	}
	r.Last = fromMS(last)
	return r, nil
}

// ResetNumber deletes the buckets with keys and the account's number's run
// of wrong codes in one write, and returns what it deleted.
func (s *Store) ResetNumber(ctx context.Context, accountID int64, number string, keys []string) (map[string]verifyd.Bucket, verifyd.Run, error) {
	var (
		deleted = make(map[string]verifyd.Bucket, len(keys))
		run     verifyd.Run
	)
	err := s.w.write(ctx, func(t *tx) error {
		if len(keys) > 0 {
			stored, byStore := storedKeys(keys)
			rows, err := t.query("DELETE FROM limit_buckets WHERE key IN ("+
				strings.TrimSuffix(strings.Repeat("?, ", len(stored)), ", ")+") RETURNING key, tat, sends", stored...)
			if err != nil {
				return err
			}
			if err := scanBuckets(rows, byStore, deleted); err != nil {
				return err
			}
		}
		var last int64
		err := t.queryRow("DELETE FROM number_failures WHERE account_id = ? AND phone_number = ? RETURNING failures, last",
			accountID, number).Scan(&run.Failures, &last)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return nil
		case err != nil:
			return err
		}
		run.Last = fromMS(last)
		return nil
	})
	if err != nil {
		return nil, verifyd.Run{}, err
	}
	return deleted, run, nil
}

// storedKeys returns keys as stored, as arguments, and the key each stands
// for.
func storedKeys(keys []string) ([]any, map[string]string) {
	stored := make([]any, 0, len(keys))
	byStore := make(map[string]string, len(keys))
	for _, k := range keys {
		sk := storedKey(k)
		if _, dup := byStore[sk]; !dup {
			byStore[sk] = k
			stored = append(stored, sk)
		}
	}
	return stored, byStore
}
