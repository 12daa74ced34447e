package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"verifyd"
)

// idempotencyWindow is how long a create's first answer is replayed.
const idempotencyWindow = 24 * time.Hour

// BeginIdempotentRequest reserves (r.AccountID, r.Key). It returns nil when
// the key was free (the caller now runs the request), or the record already
// there, whether Done or still running. Records older than 24 hours (as of
// r.Created), and records still running after verifyd.IdempotencyLease,
// count as free and are replaced.
func (s *Store) BeginIdempotentRequest(ctx context.Context, r *verifyd.IdempotentRequest) (*verifyd.IdempotentRequest, error) {
	var held *verifyd.IdempotentRequest
	err := s.w.write(ctx, func(t *tx) error {
		held = nil
		var (
			prev    verifyd.IdempotentRequest
			created int64
		)
		err := t.queryRow(`SELECT account_id, key, body_hash, done, status, response, created
			FROM idempotent_requests WHERE account_id = ? AND key = ?`, r.AccountID, r.Key).
			Scan(&prev.AccountID, &prev.Key, &prev.BodyHash, &prev.Done, &prev.Status, &prev.Response, &created)
		switch {
		case err == nil:
			prev.Created = fromMS(created)
			if !prev.Created.Before(r.Created.Add(-idempotencyWindow)) &&
				(prev.Done || !prev.Created.Before(r.Created.Add(-verifyd.IdempotencyLease))) {
				held = &prev
				return nil
			}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		_, err = t.exec(`INSERT INTO idempotent_requests (account_id, key, body_hash, done, status, response, created, token)
			VALUES (?, ?, ?, 0, 0, NULL, ?, ?)
			ON CONFLICT (account_id, key) DO UPDATE SET body_hash = excluded.body_hash, done = 0, status = 0,
				response = NULL, created = excluded.created, token = excluded.token`,
			r.AccountID, r.Key, r.BodyHash, ms(r.Created), r.Token)
		return err
	})
	if err != nil {
		return nil, err
	}
	return held, nil
}

// FinishIdempotentRequest stores the answer of the reservation r made (the
// one of r.Token), or with r.Status 0 releases it so that a retry runs
// anew, unless its create committed and recorded its answer (then the
// answer stays). A reservation another request made (a retry after the
// lease, a double-submit in the same millisecond), or none at all, is left
// alone.
func (s *Store) FinishIdempotentRequest(ctx context.Context, r *verifyd.IdempotentRequest) error {
	return s.w.write(ctx, func(t *tx) error {
		if r.Status == 0 {
			// A create that committed has recorded its answer: that stays.
			_, err := t.exec("DELETE FROM idempotent_requests WHERE account_id = ? AND key = ? AND done = 0 AND token = ?",
				r.AccountID, r.Key, r.Token)
			return err
		}
		_, err := t.exec(`UPDATE idempotent_requests SET done = 1, status = ?, response = ?
			WHERE account_id = ? AND key = ? AND token = ?`, r.Status, r.Response, r.AccountID, r.Key, r.Token)
		return err
	})
}
