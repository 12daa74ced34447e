package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"verifyd"
)

// CreateVerification commits v, its message m (nil when nothing is sent)
// and a charge to every limit in one transaction. When any limit is
// exhausted nothing is written and the error is the Limit's Throttled error
// for the longest wait. v.Created is "now" for the limits.
func (s *Store) CreateVerification(ctx context.Context, v *verifyd.Verification, m *verifyd.Message, limits []verifyd.Limit) error {
	if m != nil && m.RequestID != v.ID {
		return fmt.Errorf("sqlite: message for request %s given with verification %s", m.RequestID, v.ID)
	}
	c := &create{v: v, m: m, limits: limits}
	return s.w.writeBulk(ctx, createBulk, c, func(t *tx) error {
		refused, err := chargeLimits(t, v, limits, v.Created)
		if err != nil {
			return err
		}
		if refused != nil {
			return refused
		}
		err = insertCreates(t, []*create{c})
		if isConflict(err) {
			return verifyd.Errorf(verifyd.ECONFLICT, "a verification with that id exists")
		}
		return err
	})
}

// create is one CreateVerification call.
type create struct {
	v      *verifyd.Verification
	m      *verifyd.Message
	limits []verifyd.Limit
}

// createBulk stores the creates waiting together. Each is charged on its
// own and in turn, since a create's charge reads the buckets the one
// before it wrote; one a limit refuses gets its refusal (it wrote nothing)
// and the others go on. The rows of the rest then go in with multi-row
// statements. A conflicting id fails the lot, so that each runs alone and
// only its own caller hears of the conflict.
var createBulk = &bulk{run: func(t *tx, ops []*op) error {
	kept := make([]*create, 0, len(ops))
	for _, o := range ops {
		c := o.arg.(*create)
		refused, err := chargeLimits(t, c.v, c.limits, c.v.Created)
		if err != nil {
			return err
		}
		if refused != nil {
			o.err = refused // kept by the writer unless each runs alone
			continue
		}
		kept = append(kept, c)
	}
	return insertCreates(t, kept)
}}

// The values of a row in each table, in the order of insertCreates's
// statements.
const (
	verificationWidth = 13
	messageWidth      = 14
)

// insertCreates inserts the verifications of cs, then the messages of
// those that have one, each in a few multi-row statements.
func insertCreates(t *tx, cs []*create) error {
	args := make([]any, 0, messageWidth*len(cs))
	for _, c := range cs {
		v := c.v
		args = append(args, v.ID, v.AccountID, v.PhoneNumber, v.Country, string(v.NumberStatus), string(v.State),
			v.CodeMAC, v.Attempts, v.MaxAttempts, ms(v.Created), ms(v.ValidUntil), nullMS(v.Verified), ms(v.Updated))
	}
	// RETURNING gives rows in no set order, so each vid goes by its id.
	vids := make(map[string]int64, len(cs))
	err := t.queryRows(`INSERT INTO verifications (`+verificationColumns+`) VALUES /*rows*/ RETURNING id, vid`,
		verificationWidth, args, func(rows *sql.Rows) error {
			var (
				id  string
				vid int64
			)
			err := rows.Scan(&id, &vid)
			vids[id] = vid
			return err
		})
	if err != nil {
		return err
	}
	if len(vids) != len(cs) {
		return fmt.Errorf("sqlite: verification insert returned %d ids for %d rows", len(vids), len(cs))
	}
	args = args[:0]
	for _, c := range cs {
		if m := c.m; m != nil {
			args = append(args, vids[c.v.ID], m.RequestID, m.AccountID, m.To, m.From, m.Sealed,
				string(verifyd.DeliveryQueued), m.Attempts, ms(m.NextAttempt), ms(m.Deadline), 0, "",
				ms(m.Created), ms(m.Created))
		}
	}
	_, err = t.execRows(`INSERT INTO messages (vid, request_id, account_id, to_number, from_id, sealed, state,
		attempts, next_attempt, deadline, lease_until, error, created, updated) VALUES /*rows*/`, messageWidth, args)
	return err
}
