package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"verifyd"
)

// idempotencyWindow is how long a key's first answer is kept.
const idempotencyWindow = 24 * time.Hour

// BeginIdempotentRequest reserves (r.AccountID, r.Key). It returns nil when
// the key was free (the caller now runs the request), or the record already
// there, whether Done or still running. Records older than 24 hours, and
// records still running after verifyd.IdempotencyLease, count as free. The
// reservation is one upsert, so of two instances racing for a key exactly
// one gets nil.
func (s *Store) BeginIdempotentRequest(ctx context.Context, r *verifyd.IdempotentRequest) (*verifyd.IdempotentRequest, error) {
	var found *verifyd.IdempotentRequest
	err := s.do(ctx, func(ctx context.Context) error {
		// A record released between the upsert and the read is looked for
		// again; a few rounds settle any race.
		for range 5 {
			var reserved bool
			err := s.pool.QueryRow(ctx, `INSERT INTO idempotent_requests (account_id, key, body_hash, done, status, response, created, token)
				VALUES ($1, $2, $3, false, 0, NULL, $4, $7)
				ON CONFLICT (account_id, key) DO UPDATE SET
					body_hash = excluded.body_hash, done = false, status = 0, response = NULL, created = excluded.created,
					token = excluded.token
				WHERE idempotent_requests.created < $5 OR NOT idempotent_requests.done AND idempotent_requests.created < $6
				RETURNING true`,
				r.AccountID, r.Key, r.BodyHash, ms(r.Created), ms(r.Created.Add(-idempotencyWindow)),
				ms(r.Created.Add(-verifyd.IdempotencyLease)), r.Token).Scan(&reserved)
			if err == nil {
				found = nil
				return nil
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			var (
				rec     = verifyd.IdempotentRequest{AccountID: r.AccountID, Key: r.Key}
				created int64
			)
			err = s.pool.QueryRow(ctx, `SELECT body_hash, done, status, response, created FROM idempotent_requests
				WHERE account_id = $1 AND key = $2`, r.AccountID, r.Key).
				Scan(&rec.BodyHash, &rec.Done, &rec.Status, &rec.Response, &created)
			if err == nil {
				rec.Created = fromMS(created)
				found = &rec
				return nil
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		return errors.New("idempotency key keeps changing hands")
	})
	return found, err
}

// FinishIdempotentRequest stores the answer of the reservation r made (the
// one of r.Token), or with r.Status 0 releases it so that a retry runs
// anew, unless its create committed and recorded its answer (then the
// answer stays). A key no longer reserved by r (purged meanwhile, taken
// over by a retry after the lease, or reserved by a double-submit in the
// same millisecond) is left alone, as the SQLite store does.
func (s *Store) FinishIdempotentRequest(ctx context.Context, r *verifyd.IdempotentRequest) error {
	return s.do(ctx, func(ctx context.Context) error {
		if r.Status == 0 {
			// A create that committed has recorded its answer: that stays.
			_, err := s.pool.Exec(ctx, "DELETE FROM idempotent_requests WHERE account_id = $1 AND key = $2 AND NOT done AND token = $3",
				r.AccountID, r.Key, r.Token)
			return err
		}
		_, err := s.pool.Exec(ctx, `UPDATE idempotent_requests SET done = true, status = $3, response = $4
			WHERE account_id = $1 AND key = $2 AND token = $5`, r.AccountID, r.Key, r.Status, r.Response, r.Token)
		return err
	})
}
