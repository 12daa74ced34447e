package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"verifyd"
)

const selectVerification = `SELECT v.id, v.account_id, v.phone_number, v.country, v.number_status, v.state, v.code_mac,
	v.attempts, v.max_attempts, v.created, v.valid_until, v.verified, v.updated,
	m.state, m.carrier_id, m.error, m.updated
	FROM verifications v LEFT JOIN messages m ON m.request_id = v.id
	WHERE v.id = $1 AND v.account_id = $2`

var errVerificationNotFound = verifyd.Errorf(verifyd.ENOTFOUND, "verification not found")

// FindVerification returns the account's verification with its Delivery;
// ENOTFOUND for an unknown id or another account's.
func (s *Store) FindVerification(ctx context.Context, accountID int64, id string) (*verifyd.Verification, error) {
	var v *verifyd.Verification
	err := s.do(ctx, func(ctx context.Context) (err error) {
		v, err = scanVerification(s.pool.QueryRow(ctx, selectVerification, id, accountID))
		return err
	})
	if verifyd.ErrorCode(err) == verifyd.ENOTFOUND {
		return nil, errVerificationNotFound
	}
	return v, err
}

// UpdateVerification runs fn on the current row and writes back State,
// Attempts, Verified and Updated, atomically with respect to every other
// update of the same row in any process: the row is locked (SELECT ... FOR
// UPDATE) from the read until the commit. When fn returns an error nothing
// is written and that error is returned. When the state becomes Cancelled,
// a message still Queued (leased or not) is withdrawn and its text wiped.
// A wrong code adds to its number's run of wrong codes and a right one ends
// it, by a trigger on the update (migrations/0003_keep_runs.sql).
func (s *Store) UpdateVerification(ctx context.Context, accountID int64, id string, fn func(*verifyd.Verification) error) (*verifyd.Verification, error) {
	var (
		v     *verifyd.Verification
		fnErr error
	)
	err := s.do(ctx, func(ctx context.Context) error {
		fnErr = nil
		first := &pgx.Batch{}
		first.Queue("BEGIN")
		first.Queue(selectVerification+" FOR UPDATE OF v", id, accountID).QueryRow(func(row pgx.Row) (err error) {
			v, err = scanVerification(row)
			return err
		})
		return s.twoTrips(ctx, first, func() (*pgx.Batch, error) {
			if fnErr = fn(v); fnErr != nil {
				return nil, nil
			}
			second := &pgx.Batch{}
			second.Queue(`UPDATE verifications SET state = $2, attempts = $3, verified = $4, updated = $5 WHERE id = $1`,
				v.ID, string(v.State), v.Attempts, nullMS(v.Verified), ms(v.Updated))
			if v.State == verifyd.StateCancelled {
				second.Queue(`UPDATE messages SET state = 'Failed', error = 'cancelled', sealed = NULL, lease_until = 0, updated = $2
					WHERE request_id = $1 AND state = 'Queued'
					RETURNING state, carrier_id, error, updated`, v.ID, ms(v.Updated)).
					QueryRow(func(row pgx.Row) error {
						d, err := scanDelivery(row)
						if errors.Is(err, pgx.ErrNoRows) {
							return nil // nothing was waiting
						}
						v.Delivery = d
						return err
					})
			}
			return second, nil
		})
	})
	if fnErr != nil {
		return nil, fnErr
	}
	if verifyd.ErrorCode(err) == verifyd.ENOTFOUND {
		return nil, errVerificationNotFound
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

func scanVerification(row pgx.Row) (*verifyd.Verification, error) {
	var (
		v                            verifyd.Verification
		numberStatus, state          string
		created, validUntil, updated int64
		verified                     *int64
		dState, dCarrier, dError     *string
		dUpdated                     *int64
	)
	if err := row.Scan(&v.ID, &v.AccountID, &v.PhoneNumber, &v.Country, &numberStatus, &state, &v.CodeMAC,
		&v.Attempts, &v.MaxAttempts, &created, &validUntil, &verified, &updated,
		&dState, &dCarrier, &dError, &dUpdated); err != nil {
		return nil, err
	}
	v.NumberStatus, v.State = verifyd.NumberStatus(numberStatus), verifyd.State(state)
	v.Created, v.ValidUntil, v.Verified, v.Updated = fromMS(created), fromMS(validUntil), fromNullMS(verified), fromMS(updated)
	if dState != nil {
		v.Delivery = &verifyd.Delivery{State: verifyd.DeliveryState(*dState), CarrierID: *dCarrier, Error: *dError, Updated: fromMS(*dUpdated)}
	}
	return &v, nil
}

func scanDelivery(row pgx.Row) (*verifyd.Delivery, error) {
	var (
		d       verifyd.Delivery
		state   string
		updated int64
	)
	if err := row.Scan(&state, &d.CarrierID, &d.Error, &updated); err != nil {
		return nil, err
	}
	d.State, d.Updated = verifyd.DeliveryState(state), fromMS(updated)
	return &d, nil
}
