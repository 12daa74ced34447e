package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"verifyd"
)

// optimisticTries is how many times UpdateVerification reads a row, runs
// fn and tries to write the result before it falls back to doing all three
// on the writer. A try fails only when another update of the same row
// committed in between, so a second failure means a row many callers are
// updating at once.
const optimisticTries = 2

// UpdateVerification runs fn on the current row and writes back State,
// Attempts, Verified and Updated, atomically with respect to every other
// update of the row in this process or another. When fn returns an error
// nothing is written and that error is returned. When the state becomes
// Cancelled, a message still Queued (even one leased to a worker) is
// withdrawn (DeliveryFailed, "cancelled") and its text wiped. A wrong code
// adds to its number's run of wrong codes and a right one ends it, by
// triggers on the update (migrations/0003_keep_runs.sql).
//
// The row is read and fn run on a read connection, beside the writer, and
// the writer only writes fn's result, and only if the row is still as it
// was read (compare and set): every write of the process takes turns on the
// one writer, so what it does per validate bounds how many validates a
// second the store takes. When the row changed in between, fn runs again on
// the row as it is now.
func (s *Store) UpdateVerification(ctx context.Context, accountID int64, id string, fn func(*verifyd.Verification) error) (*verifyd.Verification, error) {
	for range optimisticTries {
		v, vid, err := s.readForUpdate(ctx, accountID, id)
		if err != nil {
			return nil, err
		}
		was := casUpdate{vid: vid, state: v.State, attempts: v.Attempts, verified: v.Verified, updated: v.Updated}
		if err := fn(v); err != nil {
			return nil, err
		}
		if v.State == was.state && v.Attempts == was.attempts && v.Verified.Equal(was.verified) && v.Updated.Equal(was.updated) {
			return v, nil // nothing to write: the row as read is the answer
		}
		c := &was
		c.v = v
		if err := s.w.writeBulk(ctx, casBulk, c, c.run); err != nil {
			return nil, err
		}
		if c.written {
			return v, nil
		}
	}
	return s.updateOnWriter(ctx, accountID, id, fn)
}

// readForUpdate reads the account's verification and its rowid from the
// last commit.
func (s *Store) readForUpdate(ctx context.Context, accountID int64, id string) (*verifyd.Verification, int64, error) {
	st, err := s.read(ctx, "SELECT "+verificationColumns+", vid FROM verifications WHERE id = ? AND account_id = ?")
	if err != nil {
		return nil, 0, err
	}
	var vid int64
	v, err := scanVerification(st.QueryRowContext(ctx, id, accountID), &vid)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, notFound("verification")
	}
	if err != nil {
		return nil, 0, err
	}
	return v, vid, nil
}

// casUpdate is one compare-and-set of a verification: the columns a
// validate or cancel writes, as read, and the row fn made of them.
type casUpdate struct {
	vid               int64
	state             verifyd.State
	attempts          int
	verified, updated time.Time
	v                 *verifyd.Verification

	written bool // set by the writer: the row was still as read
}

// casBulk runs the compare-and-sets waiting together in one savepoint and
// no savepoint each: a compare-and-set that finds the row changed writes
// nothing, so it cannot leave anything half done.
var casBulk = &bulk{run: func(t *tx, ops []*op) error {
	for _, o := range ops {
		if err := o.arg.(*casUpdate).run(t); err != nil {
			return err
		}
	}
	return nil
}}

func (c *casUpdate) run(t *tx) error {
	c.written = false // when the bulk run failed, this runs again alone
	v := c.v
	res, err := t.exec(`UPDATE verifications SET state = ?, attempts = ?, verified = ?, updated = ?
		WHERE vid = ? AND state = ? AND attempts = ? AND verified IS ? AND updated = ?`,
		string(v.State), v.Attempts, nullMS(v.Verified), ms(v.Updated),
		c.vid, string(c.state), c.attempts, nullMS(c.verified), ms(c.updated))
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return err
	}
	if v.State == verifyd.StateCancelled {
		if err := withdraw(t, c.vid, v); err != nil {
			return err
		}
	}
	c.written = true
	return nil
}

// withdraw fails the message of a verification just cancelled, if it is
// still queued, and wipes its text.
func withdraw(t *tx, vid int64, v *verifyd.Verification) error {
	_, err := t.exec(`UPDATE messages SET state = 'Failed', error = 'cancelled', sealed = NULL,
			lease_until = 0, updated = ?
		WHERE vid = ? AND state = 'Queued'`, ms(v.Updated), vid)
	return err
}
