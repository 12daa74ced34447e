package postgres

import (
	"context"

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

// Validates are committed in groups (see groups): a validate's two round
// trips hold its row lock for a while, but rows differ from one validate to
// the next, so many can share a transaction and its commit.
const (
	maxValidateGroup   = 128
	validateCommitters = 4
)

// validateArgs is one UpdateVerification, and what it wrote.
type validateArgs struct {
	accountID int64
	id        string
	fn        func(*verifyd.Verification) error
	v         *verifyd.Verification
}

// newValidateGroups groups validates; a second validate of one row waits
// for the next group, so that its fn sees what the first wrote.
func (s *Store) newValidateGroups() *groups[*validateArgs] {
	return &groups[*validateArgs]{
		max:        maxValidateGroup,
		committers: validateCommitters,
		key:        func(a *validateArgs) string { return a.id },
		commit:     s.validateTx,
		waitAll:    true, // fn is the caller's
	}
}

// UpdateVerification runs fn on the current row and writes back State,
// Attempts, Verified and Updated, atomically with respect to every other
// update of the same row in any process: the row is locked (SELECT ... FOR
// UPDATE) from the read until the commit. When fn returns an error nothing
// is written and that error is returned. When the state becomes Cancelled,
// a message still Queued (leased or not) is withdrawn and its text wiped.
// A wrong code adds to its number's run of wrong codes and a right one ends
// it, by a trigger on the update (migrations/0003_keep_runs.sql).
//
// Validates waiting at once share a transaction: their rows are locked in
// id order by one statement, each fn runs on its own row, and what they
// wrote goes back in one statement with the commit.
func (s *Store) UpdateVerification(ctx context.Context, accountID int64, id string, fn func(*verifyd.Verification) error) (*verifyd.Verification, error) {
	a := &validateArgs{accountID: accountID, id: id, fn: fn}
	if err := s.validates.do(s, ctx, a); err != nil {
		return nil, err
	}
	return a.v, nil
}

// lockVerifications reads and locks the verifications of a group of
// validates, in id order so that two groups never wait on each other in a
// cycle.
const lockVerifications = `SELECT v.id, v.account_id, v.phone_number, v.country, v.number_status, v.state, v.code_mac,
	v.attempts, v.max_attempts, v.created, v.valid_until, v.verified, v.updated,
	m.state, m.carrier_id, m.error, m.updated
	FROM unnest($1::text[], $2::bigint[]) AS u(id, account_id)
	JOIN verifications v ON v.id = u.id AND v.account_id = u.account_id
	LEFT JOIN messages m ON m.request_id = v.id
	ORDER BY v.id
	FOR UPDATE OF v`

// validateTx is a group of validates' transaction: the rows locked and read
// in the first round trip, each fn run, and the rows written back (and
// messages of cancelled verifications withdrawn) with the commit in the
// second. A validate whose row is missing or whose fn fails writes nothing
// and gets its own error; the others go on.
func (s *Store) validateTx(ctx context.Context, group []*call[*validateArgs]) ([]error, error) {
	ids, accounts := make([]string, len(group)), make([]int64, len(group))
	for i, c := range group {
		ids[i], accounts[i] = c.arg.id, c.arg.accountID
	}
	found := make(map[string]*verifyd.Verification, len(group))
	first := &pgx.Batch{}
	first.Queue("BEGIN")
	first.Queue(lockVerifications, ids, accounts).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			v, err := scanVerification(rows)
			if err != nil {
				return err
			}
			found[v.ID] = v
		}
		return rows.Err()
	})
	errs := make([]error, len(group))
	err := s.twoTrips(ctx, first, func() (*pgx.Batch, error) {
		var (
			ids, states        []string
			attempts           []int32
			verified           []*int64
			updated, cancelled []int64
			cancelledIDs       []string
			byID               = make(map[string]*verifyd.Verification, len(group))
		)
		for i, c := range group {
			v := found[c.arg.id]
			if v == nil {
				errs[i] = errVerificationNotFound
				continue
			}
			if err := c.arg.fn(v); err != nil {
				errs[i] = err
				continue
			}
			c.arg.v, byID[v.ID] = v, v
			ids, states, attempts = append(ids, v.ID), append(states, string(v.State)), append(attempts, int32(v.Attempts))
			verified, updated = append(verified, nullMS(v.Verified)), append(updated, ms(v.Updated))
			if v.State == verifyd.StateCancelled {
				cancelledIDs, cancelled = append(cancelledIDs, v.ID), append(cancelled, ms(v.Updated))
			}
		}
		if len(ids) == 0 {
			return nil, nil
		}
		second := &pgx.Batch{}
		second.Queue(`UPDATE verifications v SET state = u.state, attempts = u.attempts, verified = u.verified, updated = u.updated
			FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[], $5::bigint[]) AS u(id, state, attempts, verified, updated)
			WHERE v.id = u.id`, ids, states, attempts, verified, updated)
		if len(cancelledIDs) > 0 {
			second.Queue(`UPDATE messages m SET state = 'Failed', error = 'cancelled', sealed = NULL, lease_until = 0, updated = u.updated
				FROM unnest($1::text[], $2::bigint[]) AS u(id, updated)
				WHERE m.request_id = u.id AND m.state = 'Queued'
				RETURNING m.request_id, m.state, m.carrier_id, m.error, m.updated`, cancelledIDs, cancelled).
				Query(func(rows pgx.Rows) error {
					for rows.Next() {
						var id string
						d, err := scanDelivery(rows, &id)
						if err != nil {
							return err
						}
						byID[id].Delivery = d
					}
					return rows.Err()
				})
		}
		return second, nil
	})
	if err != nil {
		for _, c := range group {
			c.arg.v = nil
		}
		return nil, err
	}
	return errs, nil
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

// scanDelivery reads a delivery's columns, after the given leading ones.
func scanDelivery(row pgx.Row, lead ...any) (*verifyd.Delivery, error) {
	var (
		d       verifyd.Delivery
		state   string
		updated int64
	)
	if err := row.Scan(append(lead, &state, &d.CarrierID, &d.Error, &updated)...); err != nil {
		return nil, err
	}
	d.State, d.Updated = verifyd.DeliveryState(state), fromMS(updated)
	return &d, nil
}
