package postgres

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"verifyd"
)

const insertVerification = `INSERT INTO verifications (id, account_id, phone_number, country, number_status, state,
	code_mac, attempts, max_attempts, created, valid_until, verified, updated)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`

const insertMessage = `INSERT INTO messages (request_id, account_id, to_number, from_id, sealed, state, attempts,
	next_attempt, deadline, lease_until, carrier_id, error, created, updated)
	VALUES ($1, $2, $3, $4, $5, 'Queued', $6, $7, $8, 0, '', '', $9, $9)`

// queueInserts adds the inserts of v and m (if any) to b.
func queueInserts(b *pgx.Batch, v *verifyd.Verification, m *verifyd.Message) {
	b.Queue(insertVerification, v.ID, v.AccountID, v.PhoneNumber, v.Country, string(v.NumberStatus), string(v.State),
		v.CodeMAC, v.Attempts, v.MaxAttempts, ms(v.Created), ms(v.ValidUntil), nullMS(v.Verified), ms(v.Updated))
	if m != nil {
		b.Queue(insertMessage, m.RequestID, m.AccountID, m.To, m.From, m.Sealed, m.Attempts,
			ms(m.NextAttempt), ms(m.Deadline), ms(m.Created))
	}
}

// CreateVerification commits v, its message m (nil when nothing is sent)
// and a charge to every limit in one transaction. When any limit is
// exhausted nothing is written and the error is the Limit's Throttled error
// for the longest wait. v.Created is "now" for the limits.
//
// Without limits it is one pipelined round trip. With limits, the buckets
// are created if new and locked, in key order so that two creates sharing
// buckets never wait on each other in a cycle; Limit.Take decides; and the
// new tats are written with the rows and the commit in the second trip.
// Every instance charges the same rows, so the limits hold across them.
func (s *Store) CreateVerification(ctx context.Context, v *verifyd.Verification, m *verifyd.Message, limits []verifyd.Limit) error {
	var throttled error
	err := s.do(ctx, func(ctx context.Context) error {
		if len(limits) == 0 {
			b := &pgx.Batch{}
			queueInserts(b, v, m)
			return s.pool.SendBatch(ctx, b).Close()
		}
		var err error
		for range 3 {
			throttled = nil
			if err = s.createLimited(ctx, v, m, limits, &throttled); !isDeadlock(err) {
				break
			}
		}
		return err
	})
	if throttled != nil {
		return throttled
	}
	if verifyd.ErrorCode(err) == verifyd.ECONFLICT {
		return verifyd.Errorf(verifyd.ECONFLICT, "a verification with this id already exists")
	}
	return err
}

func (s *Store) createLimited(ctx context.Context, v *verifyd.Verification, m *verifyd.Message, limits []verifyd.Limit, throttled *error) error {
	// Byte order here and COLLATE "C" below are the same order.
	keys := make([]string, 0, len(limits))
	for _, l := range limits {
		keys = append(keys, l.Key)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)

	tats := make(map[string]int64, len(keys))
	first := &pgx.Batch{}
	first.Queue("BEGIN")
	// New buckets are inserted in key order too: a row another transaction
	// is inserting is waited for like a locked one.
	first.Queue(`INSERT INTO limit_buckets (key, tat)
		SELECT k, 0 FROM unnest($1::text[]) WITH ORDINALITY AS u(k, i) ORDER BY i
		ON CONFLICT (key) DO NOTHING`, keys)
	first.Queue(`SELECT key, tat FROM limit_buckets WHERE key = ANY($1::text[]) ORDER BY key COLLATE "C" FOR UPDATE`, keys).
		Query(func(rows pgx.Rows) error {
			var (
				key string
				tat int64
			)
			_, err := pgx.ForEachRow(rows, []any{&key, &tat}, func() error {
				tats[key] = tat
				return nil
			})
			return err
		})

	return s.twoTrips(ctx, first, func() (*pgx.Batch, error) {
		var (
			worst *verifyd.Limit
			wait  time.Duration
		)
		for i, l := range limits {
			next, w, ok := l.Take(time.Unix(0, tats[l.Key]), v.Created)
			if !ok {
				if worst == nil || w > wait {
					worst, wait = &limits[i], w
				}
				continue
			}
			tats[l.Key] = next.UnixNano()
		}
		if worst != nil {
			*throttled = worst.Throttled(wait)
			return nil, nil
		}
		newTats := make([]int64, len(keys))
		for i, k := range keys {
			newTats[i] = tats[k]
		}
		second := &pgx.Batch{}
		second.Queue(`UPDATE limit_buckets b SET tat = u.tat FROM unnest($1::text[], $2::bigint[]) AS u(key, tat)
			WHERE b.key = u.key`, keys, newTats)
		queueInserts(second, v, m)
		return second, nil
	})
}

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
