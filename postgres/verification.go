package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"

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

// Validates are committed in groups (see groups), and each group first
// optimistically: its rows read without a lock, each fn run, and what they
// wrote sent back in one statement that writes a row only if it is still
// as it was read (compare and set), with no transaction held open across
// the round trip between. A validate whose row changed meanwhile (another
// validate of the same verification, on another instance) runs again with
// its row locked from the read to the commit, the way that cannot lose.
//
// One committer per instance: the next group fills while one is in flight,
// and larger groups cost less per validate. Two instances, 64 connections
// (verifyd-bench -w pg): 4 committers 8,541-9,645 validates/s, 2 committers
// 11,939-12,403/s, 1 committer 14,886-14,908/s, with p99 latency falling
// from 17-20 ms to 11 ms.
const (
	maxValidateGroup   = 128
	validateCommitters = 1
)

// validateArgs is one UpdateVerification, and what it wrote.
type validateArgs struct {
	accountID int64
	id        string
	fn        func(*verifyd.Verification) error
	v         *verifyd.Verification
	// run and withdraw say which rows besides its own verification's the
	// last write of it tried would lock: its number's run of wrong codes
	// (a wrong code adds to it, a right one deletes it: the trigger of
	// migrations/0003_keep_runs.sql), and its message (a cancel withdraws
	// it). A validate stuck behind a row held is told by them.
	run, withdraw bool
}

// newValidateGroups groups validates; a second validate of one row waits
// for the next group, so that its fn sees what the first wrote.
func (s *Store) newValidateGroups() *groups[*validateArgs] {
	return &groups[*validateArgs]{
		max:        maxValidateGroup,
		committers: validateCommitters,
		key:        func(a *validateArgs) string { return a.id },
		keyLocks:   true,
		commit:     s.validateTx,
		waitAll:    true, // fn is the caller's
	}
}

// UpdateVerification runs fn on the current row and writes back State,
// Attempts, Verified and Updated, atomically with respect to every other
// update of the same row in any process: what fn returns is written only
// if the row is still the one fn saw, and fn runs again on the row as it
// is now if not. When fn returns an error nothing is written and that
// error is returned. When the state becomes Cancelled, a message still
// Queued (leased or not) is withdrawn and its text wiped, in the same
// statement. A wrong code adds to its number's run of wrong codes and a
// right one ends it, by a trigger on the update
// (migrations/0003_keep_runs.sql).
func (s *Store) UpdateVerification(ctx context.Context, accountID int64, id string, fn func(*verifyd.Verification) error) (*verifyd.Verification, error) {
	a := &validateArgs{accountID: accountID, id: id, fn: fn}
	if err := s.validates.do(s, ctx, a); err != nil {
		return nil, err
	}
	return a.v, nil
}

// readVerifications reads the verifications of a group of validates, with
// their numbers' runs of wrong codes, which their fns judge.
const readVerifications = `SELECT v.id, v.account_id, v.phone_number, v.country, v.number_status, v.state, v.code_mac,
	v.attempts, v.max_attempts, v.created, v.valid_until, v.verified, v.updated,
	m.state, m.carrier_id, m.error, m.updated, f.failures, f.last
	FROM unnest($1::text[], $2::bigint[]) AS u(id, account_id)
	JOIN verifications v ON v.id = u.id AND v.account_id = u.account_id
	LEFT JOIN messages m ON m.request_id = v.id
	LEFT JOIN number_failures f ON f.account_id = v.account_id AND f.phone_number = v.phone_number`

// writeVerifications writes what a group's fns returned to the rows still
// as they were read (the columns a validate writes are the ones compared),
// withdraws the messages of those cancelled, and returns the rows written
// with their messages' deliveries if withdrawn. A row another transaction
// holds locked is skipped, not waited for, as if it had changed: it goes to
// the locked retry, whose wait is bounded (lockedWait), and the group's
// other rows are written at once. Waiting here held the whole group, and so
// every validate of the instance, behind one row locked by someone else.
// (The locked retry holds its own rows, which SKIP LOCKED does not skip.)
// The rows besides that a write locks, its number's run of wrong codes (by
// the trigger) and its message (if it cancels), are waited for, within the
// transaction's lock bound (see validateTx).
const writeVerifications = `WITH u AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[], $5::bigint[],
		$6::text[], $7::int[], $8::bigint[], $9::bigint[])
		AS u(id, state, attempts, verified, updated, was_state, was_attempts, was_verified, was_updated)
), free AS (
	SELECT v.id FROM u JOIN verifications v ON v.id = u.id
	ORDER BY v.id COLLATE "C"
	FOR UPDATE OF v SKIP LOCKED
), written AS (
	UPDATE verifications v SET state = u.state, attempts = u.attempts, verified = u.verified, updated = u.updated
	FROM u
	WHERE v.id = u.id AND v.id IN (SELECT id FROM free) AND v.state = u.was_state AND v.attempts = u.was_attempts
		AND v.verified IS NOT DISTINCT FROM u.was_verified AND v.updated = u.was_updated
	RETURNING v.id, v.state, v.updated
), withdrawn AS (
	UPDATE messages m SET state = 'Failed', error = 'cancelled', sealed = NULL, lease_until = 0, updated = w.updated
	FROM written w
	WHERE m.request_id = w.id AND w.state = 'Cancelled' AND m.state = 'Queued'
	RETURNING m.request_id, m.state, m.carrier_id, m.error, m.updated
)
SELECT w.id, d.state, d.carrier_id, d.error, d.updated FROM written w LEFT JOIN withdrawn d ON d.request_id = w.id`

// validateTx runs a group of validates optimistically, then those whose
// rows changed under them with their rows locked (validateLocked). A
// validate whose row is missing or whose fn fails writes nothing and gets
// its own error; the others go on.
//
// The optimistic write waits for a row lock at most lockedWait: a wrong
// code's write locks its number's run of wrong codes, and a cancel's its
// message, which another group or a delivery worker holds for a round
// trip at most, and one held longer is someone else's (an administrator's
// transaction, a hung instance). The write waited with no bound, so that
// one such row failed every validate of the group, and of every group
// after it, at the Store's timeout. Past the bound, nothing was written,
// and validateAroundHeld fails only the validates that need a row still
// held.
func (s *Store) validateTx(ctx context.Context, group []*call[*validateArgs]) ([]error, error) {
	errs, err := s.validateTry(ctx, group)
	if lockTimeout(err) && len(group) > 1 {
		return s.validateAroundHeld(ctx, group, err)
	}
	return errs, err
}

// validateAroundHeld is a group of validates whose optimistic write waited
// for a row lock past lockedWait (cause), and wrote nothing: those whose
// write needs a row still held answer EUNAVAILABLE, and the others run
// again as a group of their own. If none is found to need one, the lock
// went meanwhile, or the wait was one the server would have ended as a
// deadlock had lock_timeout not come first (two instances' groups taking
// two numbers' runs in opposite orders): the group is tried once more,
// and fails as a whole if it waits out the bound again.
func (s *Store) validateAroundHeld(ctx context.Context, group []*call[*validateArgs], cause error) ([]error, error) {
	held, err := s.heldValidateRows(ctx, group)
	if err != nil {
		return nil, cause
	}
	stuck := func(a *validateArgs) bool { return held[a.id].blocks(a, false) }
	if !slices.ContainsFunc(group, func(c *call[*validateArgs]) bool { return stuck(c.arg) }) {
		return s.validateTry(ctx, group)
	}
	return aroundLocked(ctx, s, group, cause, stuck, s.validateTx)
}

// validateTry is one try of validateTx, its optimistic write failing as a
// whole if it waits for a row lock past lockedWait.
func (s *Store) validateTry(ctx context.Context, group []*call[*validateArgs]) ([]error, error) {
	found, err := scanVerifications(s.pool.Query(ctx, readVerifications, groupKeys(group)...))
	if err != nil {
		return nil, err
	}
	errs, w := runValidates(group, found)
	if len(w.ids) == 0 {
		return errs, nil
	}
	// The transaction's id first, for a lost answer (see xact), read in
	// the statement that bounds the write's lock waits: the pipeline's
	// statements are as many as without the bound.
	var x xact
	b := &pgx.Batch{}
	x.queueBounded(b, s)
	b.Queue(writeVerifications, w.args()...).Query(w.scan)
	lost := false
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		if !x.committedDespite(ctx, s, err) {
			return nil, err
		}
		// Committed, but which rows it wrote is cut short: those whose
		// latest version it made are known, and the others are answered
		// 503. Run again, a validate it did write would count twice.
		lost = true
		if err := s.readWritten(ctx, w, x.id); err != nil {
			// Which rows it wrote is not known either: every validate that
			// wrote is answered 503 below. Returned, the error would have
			// the group run again (a retry of a connection error, or its
			// calls one by one), over writes already committed.
			w.written = nil
		}
	}
	var (
		again []*call[*validateArgs]
		at    []int
	)
	for i, c := range group {
		if v := c.arg.v; v != nil && !w.written[v.ID] {
			c.arg.v = nil
			if lost {
				errs[i] = s.unavailable(errors.New("the answer to a committed write was lost"))
				continue
			}
			again, at = append(again, c), append(at, i)
		}
	}
	if len(again) == 0 {
		return errs, nil
	}
	// The optimistic writes are committed: from here an error is only the
	// retried validates', and running the whole group again would run the
	// others' fns twice. So validateLocked is retried here, alone.
	var lockedErrs []error
	err = retryAborted(ctx, func() (err error) {
		lockedErrs, err = s.validateLocked(ctx, again)
		return err
	})
	if err != nil {
		err = s.groupErr(ctx, err, len(again))
		for _, i := range at {
			errs[i] = err
		}
		return errs, nil
	}
	for j, i := range at {
		errs[i] = lockedErrs[j]
	}
	return errs, nil
}

// readWritten marks written the rows of w whose latest version transaction
// xid made, read on another connection within lockedWait. A row written
// again since is not marked, though xid wrote it too.
func (s *Store) readWritten(ctx context.Context, w *verificationWrites, xid string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.lockedWait())
	defer cancel()
	rows, _ := s.pool.Query(ctx, `SELECT id FROM verifications
		WHERE id = ANY($1) AND xmin = ($2::xid8::text::bigint % 4294967296)::text::xid`, w.ids, xid)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	w.written = make(map[string]bool, len(ids))
	for _, id := range ids {
		w.written[id] = true
	}
	return err
}

// lockVerifications reads and locks the verifications of a group of
// validates, in id order so that two groups never wait on each other in a
// cycle.
const lockVerifications = readVerifications + `
	ORDER BY v.id COLLATE "C"
	FOR UPDATE OF v`

// heldValidateRows are, for each verification id of $1, whether another
// transaction holds locked the rows a validate of it may wait for: the
// verification's own (which only the locked retry waits for), its
// number's run of wrong codes, and its message. The probe takes the locks
// the write takes or may take: FOR UPDATE on a verification (as
// lockVerifications) and on a run (a right code deletes it), FOR NO KEY
// UPDATE on a message, so that a part's insert checking its message (FOR
// KEY SHARE) does not count as holding it.
const heldValidateRows = `WITH v AS (
	SELECT id, account_id, phone_number FROM verifications WHERE id = ANY($1)
), free_verifications AS (
	SELECT id FROM verifications WHERE id = ANY($1) FOR UPDATE SKIP LOCKED
), free_runs AS (
	SELECT f.account_id, f.phone_number FROM number_failures f
	WHERE (f.account_id, f.phone_number) IN (SELECT account_id, phone_number FROM v)
	FOR UPDATE SKIP LOCKED
), free_messages AS (
	SELECT request_id FROM messages WHERE request_id = ANY($1) FOR NO KEY UPDATE SKIP LOCKED
)
SELECT v.id,
	v.id NOT IN (SELECT id FROM free_verifications),
	EXISTS (SELECT FROM number_failures f WHERE f.account_id = v.account_id AND f.phone_number = v.phone_number)
		AND NOT EXISTS (SELECT FROM free_runs f WHERE f.account_id = v.account_id AND f.phone_number = v.phone_number),
	EXISTS (SELECT FROM messages m WHERE m.request_id = v.id)
		AND v.id NOT IN (SELECT request_id FROM free_messages)
FROM v`

// heldRows are which of a verification's rows heldValidateRows found held.
type heldRows struct{ verification, run, message bool }

// blocks reports whether the last write a tried needs a row held: its
// number's run or its message, as that write would lock them, or, for a
// try with rows locked (rowsLocked), its verification's.
func (h heldRows) blocks(a *validateArgs, rowsLocked bool) bool {
	return rowsLocked && h.verification || h.run && a.run || h.message && a.withdraw
}

// heldValidateRows reads heldValidateRows for the verifications of group.
func (s *Store) heldValidateRows(ctx context.Context, group []*call[*validateArgs]) (map[string]heldRows, error) {
	ids := make([]string, len(group))
	for i, c := range group {
		ids[i] = c.arg.id
	}
	held := map[string]heldRows{}
	rows, _ := s.pool.Query(ctx, heldValidateRows, ids)
	var (
		id string
		h  heldRows
	)
	_, err := pgx.ForEachRow(rows, []any{&id, &h.verification, &h.run, &h.message}, func() error {
		held[id] = h
		return nil
	})
	return held, err
}

// validateLocked runs the validates whose rows changed under their
// optimistic try in one transaction with their rows locked
// (validateLockedTx). One that waited out the lock bound on a row someone
// else holds (its verification's, its number's run of wrong codes, its
// message) is tried again around that row (validateAroundLocked): the wait
// fails the whole transaction, and so every validate in it, though the
// others' rows are free.
func (s *Store) validateLocked(ctx context.Context, group []*call[*validateArgs]) ([]error, error) {
	errs, err := s.validateLockedTx(ctx, group)
	if lockTimeout(err) && len(group) > 1 {
		return s.validateAroundLocked(ctx, group, err)
	}
	return errs, err
}

// validateAroundLocked is a group of locked validates whose transaction
// waited for a row lock past lockedWait (cause): the validates that need a
// row still locked answer EUNAVAILABLE, and the others run again with their
// rows locked, as a group of their own. If no row is found locked (the lock
// went meanwhile, or the wait was for a row no probe sees, such as a run
// another transaction is inserting), the whole group fails, as it would
// have.
func (s *Store) validateAroundLocked(ctx context.Context, group []*call[*validateArgs], cause error) ([]error, error) {
	held, err := s.heldValidateRows(ctx, group)
	if err != nil {
		return nil, cause
	}
	return aroundLocked(ctx, s, group, cause, func(a *validateArgs) bool {
		return held[a.id].blocks(a, true)
	}, s.validateLocked)
}

// validateLockedTx is the transaction of validates whose rows changed under
// their optimistic try: the rows locked and read in the first round trip,
// each fn run, and what they wrote sent with the commit in the second. It
// waits for a row lock at most lockedWait, then fails (55P03, a 503), so
// that a row held by someone else keeps the instance's one committer, and
// every validate queued behind it, for that long at most.
func (s *Store) validateLockedTx(ctx context.Context, group []*call[*validateArgs]) ([]error, error) {
	var (
		found map[string]*verifyd.Verification
		errs  []error
	)
	first := &pgx.Batch{}
	first.Queue("BEGIN")
	s.queueBoundLockWait(first)
	first.Queue(lockVerifications, groupKeys(group)...).Query(func(rows pgx.Rows) (err error) {
		found, err = scanVerifications(rows, nil)
		return err
	})
	err := s.twoTrips(ctx, first, func() (*pgx.Batch, error) {
		var w *verificationWrites
		errs, w = runValidates(group, found)
		if len(w.ids) == 0 {
			return nil, nil
		}
		second := &pgx.Batch{}
		second.Queue(writeVerifications, w.args()...).Query(w.scan)
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

// groupKeys are the arguments of readVerifications for group.
func groupKeys(group []*call[*validateArgs]) []any {
	ids, accounts := make([]string, len(group)), make([]int64, len(group))
	for i, c := range group {
		ids[i], accounts[i] = c.arg.id, c.arg.accountID
	}
	return []any{ids, accounts}
}

// scanVerifications collects rows of readVerifications by id.
func scanVerifications(rows pgx.Rows, err error) (map[string]*verifyd.Verification, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	found := map[string]*verifyd.Verification{}
	for rows.Next() {
		var (
			failures *int32
			last     *int64
		)
		v, err := scanVerification(rows, &failures, &last)
		if err != nil {
			return nil, err
		}
		if failures != nil {
			v.Run = verifyd.Run{Failures: int(*failures), Last: fromMS(*last)}
		}
		found[v.ID] = v
	}
	return found, rows.Err()
}

// runValidates runs each validate's fn on its row as found, and returns
// each one's error (ENOTFOUND for a missing row, fn's own) and what the
// others wrote, which their calls point at. The writes are in id order, the
// order in which every group locks rows, so that two instances' groups
// never wait on each other in a cycle.
func runValidates(group []*call[*validateArgs], found map[string]*verifyd.Verification) ([]error, *verificationWrites) {
	errs := make([]error, len(group))
	w := &verificationWrites{byID: map[string]*verifyd.Verification{}}
	order := make([]int, len(group))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int { return strings.Compare(group[i].arg.id, group[j].arg.id) })
	for _, i := range order {
		c := group[i]
		c.arg.v, c.arg.run, c.arg.withdraw = nil, false, false
		v := found[c.arg.id]
		if v == nil {
			errs[i] = errVerificationNotFound
			continue
		}
		was := *v
		if err := c.arg.fn(v); err != nil {
			errs[i] = err
			continue
		}
		c.arg.v = v
		// As the trigger's WHEN reads the write (was is the row it is
		// written over, or nothing); a cancel's message may have been
		// queued again since it was read.
		c.arg.run = v.Attempts > was.Attempts || v.State == verifyd.StateVerified && was.State != verifyd.StateVerified
		c.arg.withdraw = v.State == verifyd.StateCancelled
		w.add(v, &was)
	}
	return errs, w
}

// verificationWrites are what a group's fns wrote, as writeVerifications
// takes them, and which of them it wrote.
type verificationWrites struct {
	ids, states, wasStates []string
	attempts, wasAttempts  []int32
	verified, wasVerified  []*int64
	updated, wasUpdated    []int64

	byID    map[string]*verifyd.Verification
	written map[string]bool
}

// add writes v, read as was.
func (w *verificationWrites) add(v, was *verifyd.Verification) {
	w.byID[v.ID] = v
	w.ids, w.states, w.attempts = append(w.ids, v.ID), append(w.states, string(v.State)), append(w.attempts, int32(v.Attempts))
	w.verified, w.updated = append(w.verified, nullMS(v.Verified)), append(w.updated, ms(v.Updated))
	w.wasStates, w.wasAttempts = append(w.wasStates, string(was.State)), append(w.wasAttempts, int32(was.Attempts))
	w.wasVerified, w.wasUpdated = append(w.wasVerified, nullMS(was.Verified)), append(w.wasUpdated, ms(was.Updated))
}

func (w *verificationWrites) args() []any {
	return []any{w.ids, w.states, w.attempts, w.verified, w.updated, w.wasStates, w.wasAttempts, w.wasVerified, w.wasUpdated}
}

// scan reads writeVerifications' answer: the rows written, and the
// deliveries of the messages it withdrew.
func (w *verificationWrites) scan(rows pgx.Rows) error {
	defer rows.Close()
	w.written = make(map[string]bool, len(w.ids))
	for rows.Next() {
		var (
			id                  string
			state, carrier, msg *string
			updated             *int64
		)
		if err := rows.Scan(&id, &state, &carrier, &msg, &updated); err != nil {
			return err
		}
		w.written[id] = true
		if v := w.byID[id]; v != nil && state != nil {
			v.Delivery = &verifyd.Delivery{State: verifyd.DeliveryState(*state), CarrierID: *carrier, Error: *msg, Updated: fromMS(*updated)}
		}
	}
	return rows.Err()
}

// scanVerification reads the columns of selectVerification, then any extra
// ones.
func scanVerification(row pgx.Row, extra ...any) (*verifyd.Verification, error) {
	var (
		v                            verifyd.Verification
		numberStatus, state          string
		created, validUntil, updated int64
		verified                     *int64
		dState, dCarrier, dError     *string
		dUpdated                     *int64
	)
	dest := append([]any{&v.ID, &v.AccountID, &v.PhoneNumber, &v.Country, &numberStatus, &state, &v.CodeMAC,
		&v.Attempts, &v.MaxAttempts, &created, &validUntil, &verified, &updated,
		&dState, &dCarrier, &dError, &dUpdated}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	v.NumberStatus, v.State = verifyd.NumberStatus(numberStatus), verifyd.State(state)
	v.Created, v.ValidUntil, v.Verified, v.Updated = fromMS(created), fromMS(validUntil), fromNullMS(verified), fromMS(updated)
	if dState != nil {
		v.Delivery = &verifyd.Delivery{State: verifyd.DeliveryState(*dState), CarrierID: *dCarrier, Error: *dError, Updated: fromMS(*dUpdated)}
	}
	return &v, nil
}
