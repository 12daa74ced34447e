package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"verifyd"
)

const verificationColumns = `id, account_id, phone_number, country, number_status, state, code_mac,
	attempts, max_attempts, created, valid_until, verified, updated`

// validateQuery reads a verification (as v) with its number's run of wrong
// codes, which a validate judges. The columns are qualified, since
// number_failures has some of the same names.
var validateQuery = func() string {
	cols := strings.Split(verificationColumns, ",")
	for i, c := range cols {
		cols[i] = "v." + strings.TrimSpace(c)
	}
	return `SELECT ` + strings.Join(cols, ", ") + `, v.vid, coalesce(f.failures, 0), coalesce(f.last, 0)
		FROM verifications v LEFT JOIN number_failures f
			ON f.account_id = v.account_id AND f.phone_number = v.phone_number
		WHERE v.id = ? AND v.account_id = ?`
}()

// CreateVerification commits v, its message m (nil when nothing is sent)
// and a charge to every limit in one transaction. When any limit is
// exhausted nothing is written and the error is the Limit's Throttled error
// for the longest wait. v.Created is "now" for the limits.
func (s *Store) CreateVerification(ctx context.Context, v *verifyd.Verification, m *verifyd.Message, limits []verifyd.Limit) error {
	return s.CreateVerificationWithAnswer(ctx, v, m, limits, nil)
}

// CreateVerificationWithAnswer is CreateVerification that also records
// answer, Done, on its reserved key in the same transaction (see
// verifyd.VerificationStore).
func (s *Store) CreateVerificationWithAnswer(ctx context.Context, v *verifyd.Verification, m *verifyd.Message, limits []verifyd.Limit, answer *verifyd.IdempotentRequest) error {
	if m != nil && m.RequestID != v.ID {
		return fmt.Errorf("sqlite: message for request %s given with verification %s", m.RequestID, v.ID)
	}
	return s.w.write(ctx, func(t *tx) error {
		if err := chargeLimits(t, v, limits, v.Created); err != nil {
			return err
		}
		res, err := t.exec(`INSERT INTO verifications (`+verificationColumns+`, run_cooldown)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			v.ID, v.AccountID, v.PhoneNumber, v.Country, string(v.NumberStatus), string(v.State), v.CodeMAC,
			v.Attempts, v.MaxAttempts, ms(v.Created), ms(v.ValidUntil), nullMS(v.Verified), ms(v.Updated),
			verifyd.RunCooldown(limits).Milliseconds())
		if isConflict(err) {
			return verifyd.Errorf(verifyd.ECONFLICT, "a verification with that id exists")
		}
		if err != nil {
			return err
		}
		if m != nil {
			vid, err := res.LastInsertId()
			if err != nil {
				return err
			}
			if _, err := t.exec(`INSERT INTO messages (vid, request_id, account_id, to_number, from_id, sealed, state,
					attempts, next_attempt, deadline, lease_until, error, created, updated)
				VALUES (?, ?, ?, ?, ?, ?, 'Queued', ?, ?, ?, 0, '', ?, ?)`,
				vid, m.RequestID, m.AccountID, m.To, m.From, m.Sealed,
				m.Attempts, ms(m.NextAttempt), ms(m.Deadline), ms(m.Created), ms(m.Created)); err != nil {
				return err
			}
		}
		if answer != nil {
			// The key must still be this request's reservation (the one of
			// answer.Token): one taken over after the lease belongs to a
			// retry that sends its own code, so this create, only slow,
			// must not commit a second one.
			res, err := t.exec(`UPDATE idempotent_requests SET done = 1, status = ?, response = ?
				WHERE account_id = ? AND key = ? AND done = 0 AND token = ?`,
				answer.Status, answer.Response, answer.AccountID, answer.Key, answer.Token)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return cmp.Or(err, verifyd.ErrIdempotencyKeyRunning)
			}
		}
		return nil
	})
}

// FindVerification returns the account's verification with its Delivery;
// ENOTFOUND for an unknown id or another account's.
func (s *Store) FindVerification(ctx context.Context, accountID int64, id string) (*verifyd.Verification, error) {
	var (
		dState, dError, carrierID sql.NullString
		dUpdated                  sql.NullInt64
	)
	row := s.rdb.QueryRowContext(ctx, `SELECT v.id, v.account_id, v.phone_number, v.country, v.number_status,
			v.state, v.code_mac, v.attempts, v.max_attempts, v.created, v.valid_until, v.verified, v.updated,
			m.state, m.error, m.updated,
			(SELECT p.carrier_id FROM message_parts p WHERE p.vid = v.vid ORDER BY p.part LIMIT 1)
		FROM verifications v LEFT JOIN messages m ON m.vid = v.vid
		WHERE v.id = ? AND v.account_id = ?`, id, accountID)
	v, err := scanVerification(row, &dState, &dError, &dUpdated, &carrierID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("verification")
	}
	if err != nil {
		return nil, err
	}
	if dState.Valid {
		v.Delivery = &verifyd.Delivery{
			State:     verifyd.DeliveryState(dState.String),
			CarrierID: carrierID.String,
			Error:     dError.String,
			Updated:   fromMS(dUpdated.Int64),
		}
	}
	return v, nil
}

// UpdateVerification runs fn on the current row and writes back State,
// Attempts, Verified and Updated. The read, fn and the write happen in one
// write transaction, which no other writer, in this process or another,
// can interleave with. fn runs on the writer goroutine: it must be quick
// and must not call the store.
//
// When fn returns an error nothing is written and that error is returned.
// When the state becomes Cancelled, a message still Queued (even one leased
// to a worker) is withdrawn (DeliveryFailed, "cancelled") and its text
// wiped. A wrong code adds to its number's run of wrong codes and a right
// one ends it, by triggers on the update (migrations/0003_keep_runs.sql).
func (s *Store) UpdateVerification(ctx context.Context, accountID int64, id string, fn func(*verifyd.Verification) error) (*verifyd.Verification, error) {
	var out *verifyd.Verification
	err := s.w.write(ctx, func(t *tx) error {
		// With its number's run of wrong codes, which fn judges.
		var vid, runFailures, runLast int64
		v, err := scanVerification(t.queryRow(validateQuery, id, accountID), &vid, &runFailures, &runLast)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("verification")
		}
		if err != nil {
			return err
		}
		if runFailures > 0 {
			v.Run = verifyd.Run{Failures: int(runFailures), Last: fromMS(runLast)}
		}
		if err := fn(v); err != nil {
			return err
		}
		if _, err := t.exec(`UPDATE verifications SET state = ?, attempts = ?, verified = ?, updated = ?
			WHERE vid = ?`, string(v.State), v.Attempts, nullMS(v.Verified), ms(v.Updated), vid); err != nil {
			return err
		}
		if v.State == verifyd.StateCancelled {
			if _, err := t.exec(`UPDATE messages SET state = 'Failed', error = 'cancelled', sealed = NULL,
					lease_until = 0, updated = ?
				WHERE vid = ? AND state = 'Queued'`, ms(v.Updated), vid); err != nil {
				return err
			}
		}
		out = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// scanVerification reads the verification columns, then any extra ones.
func scanVerification(r rowScanner, extra ...any) (*verifyd.Verification, error) {
	var (
		v                            verifyd.Verification
		numberStatus, state          string
		created, validUntil, updated int64
		verified                     sql.NullInt64
	)
	dest := append([]any{&v.ID, &v.AccountID, &v.PhoneNumber, &v.Country, &numberStatus, &state, &v.CodeMAC,
		&v.Attempts, &v.MaxAttempts, &created, &validUntil, &verified, &updated}, extra...)
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	v.NumberStatus, v.State = verifyd.NumberStatus(numberStatus), verifyd.State(state)
	v.Created, v.ValidUntil, v.Updated = fromMS(created), fromMS(validUntil), fromMS(updated)
	v.Verified = fromNullMS(verified)
	return &v, nil
}
