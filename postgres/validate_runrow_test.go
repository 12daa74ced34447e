package postgres_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"verifyd"
	"verifyd/postgres"
)

// holdRows locks the rows query selects (its FOR UPDATE) from a session of
// its own, as a stuck administrator's transaction (or a hung instance)
// would, until the test ends.
func holdRows(t *testing.T, dsn, query string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tag, err := tx.Exec(t.Context(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	if tag.RowsAffected() == 0 {
		t.Fatalf("%s locked no row", query)
	}
	t.Cleanup(func() {
		tx.Rollback(context.Background())
		conn.Close(context.Background())
	})
}

// runOf reads the run of wrong codes stored for v's number (0: none).
func runOf(t *testing.T, dsn string, v *verifyd.Verification) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(t.Context(), "SELECT failures FROM number_failures WHERE account_id = $1 AND phone_number = $2",
		v.AccountID, v.PhoneNumber).Scan(&n)
	if err == pgx.ErrNoRows {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// stateOf reads a verification's stored state.
func stateOf(t *testing.T, dsn, id string) verifyd.State {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var state string
	if err := conn.QueryRow(t.Context(), "SELECT state FROM verifications WHERE id = $1", id).Scan(&state); err != nil {
		t.Fatal(err)
	}
	return verifyd.State(state)
}

// cancel cancels a verification, as the cancel endpoint's fn does.
func cancel(v *verifyd.Verification) error {
	v.State = verifyd.StateCancelled
	v.Updated = v.Updated.Add(time.Millisecond)
	return nil
}

// The tests of a held row: the store waits for it lockedWait, once per try,
// and its whole timeout is far beyond, so that however loaded the machine,
// only a wait for the whole timeout fails them.
const (
	heldRowTimeout    = 10 * time.Second
	heldRowLockedWait = 500 * time.Millisecond
)

// TestValidateBesideAHeldRunRow: a wrong code's write of its verification
// adds to its number's run of wrong codes (number_failures, by the trigger
// of migration 0003), and another session holds one number's run row
// locked. The group's optimistic write waited for that row with no bound:
// every validate of the group, whatever its number, failed after the
// Store's whole timeout, and so did every group after it while the row was
// held. Only the validates that write the held run row may fail, after
// about lockedWait; a cancel of another verification of that number (which
// leaves the run alone) and the validates of other numbers are written.
func TestValidateBesideAHeldRunRow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// changed makes every validate's row change under its optimistic
		// try, so that they are written by the row-locking retry.
		changed bool
		// behind is a second validate queued behind the first of the
		// held number (held) or of the free one (free), or none ("").
		behind string
	}{
		{"Optimistic", false, ""},
		{"OptimisticWithAHeldDuplicateBehind", false, "held"},
		{"OptimisticWithAFreeDuplicateBehind", false, "free"},
		{"RowsLocked", true, ""},
		{"RowsLockedWithAFreeDuplicateBehind", true, "free"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			dsn := newDatabase(t)
			s := open(t, dsn, postgres.WithTimeout(heldRowTimeout))
			s.SetLockedWait(heldRowLockedWait)
			a := createAccount(t, s)
			vs := storePending(t, s, a, 2)
			held, free := vs[0], vs[1]
			// A third verification, of the held number.
			same, m := pending(a, 3)
			same.PhoneNumber, m.To = held.PhoneNumber, held.PhoneNumber
			if err := s.CreateVerification(ctx, same, m, nil); err != nil {
				t.Fatal(err)
			}
			other := connect(t, dsn)
			if _, err := other.Exec(ctx, "INSERT INTO number_failures VALUES ($1, $2, 1, 0)", a.ID, held.PhoneNumber); err != nil {
				t.Fatal(err)
			}
			holdRows(t, dsn, "SELECT 1 FROM number_failures WHERE account_id = $1 AND phone_number = $2 FOR UPDATE",
				a.ID, held.PhoneNumber)

			var changedOnce [3]atomic.Bool
			fn := func(i int, write func(*verifyd.Verification) error) func(*verifyd.Verification) error {
				return func(v *verifyd.Verification) error {
					if tc.changed && !changedOnce[i].Swap(true) {
						// Another instance's validate changes the row
						// between this group's read and its write.
						if _, err := other.Exec(ctx, "UPDATE verifications SET updated = updated + 1 WHERE id = $1", v.ID); err != nil {
							return err
						}
					}
					return write(v)
				}
			}
			ids := []string{held.ID, same.ID, free.ID}
			fns := []func(*verifyd.Verification) error{fn(0, wrongCode), fn(1, cancel), fn(2, wrongCode)}
			var behindRuns atomic.Int32
			switch tc.behind {
			case "held":
				ids = append(ids, held.ID)
			case "free":
				ids = append(ids, free.ID)
			}
			if tc.behind != "" {
				fns = append(fns, func(v *verifyd.Verification) error {
					behindRuns.Add(1)
					return wrongCode(v)
				})
			}
			start := time.Now()
			errs := s.ValidateGroup(ctx, a.ID, ids, fns)
			took := time.Since(start)
			t.Logf("the group took %v", took)

			if verifyd.ErrorCode(errs[0]) != verifyd.EUNAVAILABLE {
				t.Errorf("wrong code of the held number: %v, want EUNAVAILABLE", errs[0])
			}
			if errs[1] != nil {
				t.Errorf("cancel of another verification of the held number: %v, want it written", errs[1])
			}
			if errs[2] != nil {
				t.Errorf("wrong code of another number: %v, want it written", errs[2])
			}
			if took >= heldRowTimeout {
				t.Errorf("the group took %v, the Store's whole timeout; want about lockedWait", took)
			}
			wantFree := 1
			switch tc.behind {
			case "held":
				if verifyd.ErrorCode(errs[3]) != verifyd.EUNAVAILABLE || behindRuns.Load() != 0 {
					t.Errorf("wrong code of the held number queued behind: %v, fn ran %d times; want EUNAVAILABLE unrun",
						errs[3], behindRuns.Load())
				}
			case "free":
				wantFree = 2
				if errs[3] != nil || behindRuns.Load() != 1 {
					t.Errorf("wrong code of the other number queued behind: %v, fn ran %d times; want it run once and written",
						errs[3], behindRuns.Load())
				}
			}
			if got := attemptsOf(t, dsn, held.ID); got != 0 {
				t.Errorf("the held number's verification has %d attempts, want 0", got)
			}
			if got := stateOf(t, dsn, same.ID); got != verifyd.StateCancelled {
				t.Errorf("the cancelled verification of the held number is %s, want Cancelled", got)
			}
			if got := attemptsOf(t, dsn, free.ID); got != wantFree {
				t.Errorf("the other number's verification has %d attempts, want %d", got, wantFree)
			}
			if got := runOf(t, dsn, free); got != wantFree {
				t.Errorf("the other number's run is %d wrong codes, want %d", got, wantFree)
			}
		})
	}
}

// TestValidateBesideAHeldMessageRow: a cancel withdraws its verification's
// message, still Queued, in the same statement as the group's other
// writes, and another session holds that message's row locked. The
// group's optimistic write waited for it with no bound, and every validate
// of the group failed after the Store's whole timeout. Only the cancel may
// fail, after about lockedWait; a wrong code of the same verification
// (which leaves the message alone) is written, and so are the validates of
// other verifications.
func TestValidateBesideAHeldMessageRow(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := newDatabase(t)
	s := open(t, dsn, postgres.WithTimeout(heldRowTimeout))
	s.SetLockedWait(heldRowLockedWait)
	a := createAccount(t, s)
	vs := storePending(t, s, a, 3)
	held, free, another := vs[0], vs[1], vs[2]
	holdRows(t, dsn, "SELECT 1 FROM messages WHERE request_id = $1 FOR UPDATE", held.ID)

	start := time.Now()
	errs := s.ValidateGroup(ctx, a.ID, []string{held.ID, free.ID, another.ID},
		[]func(*verifyd.Verification) error{cancel, wrongCode, cancel})
	took := time.Since(start)
	t.Logf("the group took %v", took)
	if verifyd.ErrorCode(errs[0]) != verifyd.EUNAVAILABLE {
		t.Errorf("cancel of the verification whose message is held: %v, want EUNAVAILABLE", errs[0])
	}
	if errs[1] != nil || errs[2] != nil {
		t.Errorf("wrong code and cancel of other verifications: %v, %v; want both written", errs[1], errs[2])
	}
	if took >= heldRowTimeout {
		t.Errorf("the group took %v, the Store's whole timeout; want about lockedWait", took)
	}
	if got := stateOf(t, dsn, held.ID); got != verifyd.StatePending {
		t.Errorf("the verification whose message is held is %s, want Pending", got)
	}
	if got := stateOf(t, dsn, another.ID); got != verifyd.StateCancelled {
		t.Errorf("the other cancelled verification is %s, want Cancelled", got)
	}
	if got := attemptsOf(t, dsn, free.ID); got != 1 {
		t.Errorf("the other number's verification has %d attempts, want 1", got)
	}

	// A wrong code of the verification whose message is held does not
	// touch the message, and is written beside another validate.
	errs = s.ValidateGroup(ctx, a.ID, []string{held.ID, free.ID},
		[]func(*verifyd.Verification) error{wrongCode, wrongCode})
	if errs[0] != nil || errs[1] != nil {
		t.Errorf("wrong codes beside the held message: %v, %v; want both written", errs[0], errs[1])
	}
}

// TestValidateGroupWhoseLockWaitEndsADeadlockIsTriedAgain: a group of
// validates meets another transaction in a lock cycle on two numbers' runs
// of wrong codes, as in TestValidateGroupRetriedAfterADeadlockCountsOnce,
// but its wait ends at the lock bound before either session looks for the
// cycle. The group's transaction is then aborted as the server would abort
// it to break the deadlock, and no row is found held (the other's are
// inserts, which no probe sees): the group must be tried again, as after a
// deadlock, and not fail as a whole.
func TestValidateGroupWhoseLockWaitEndsADeadlockIsTriedAgain(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := newDatabase(t)
	// Neither session looks for the cycle: the group's lock bound ends it.
	const noDeadlockCheck = "&deadlock_timeout=60000"
	s := open(t, dsn+noDeadlockCheck, postgres.WithTimeout(4*time.Second))
	a := createAccount(t, s)
	vs := storePending(t, s, a, 2)
	first, second := vs[0], vs[1]
	other, err := pgx.Connect(ctx, dsn+noDeadlockCheck)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "INSERT INTO number_failures VALUES ($1, $2, 0, 0)", a.ID, second.PhoneNumber); err != nil {
		t.Fatal(err)
	}
	done := make(chan []error, 1)
	go func() {
		done <- s.ValidateGroup(ctx, a.ID, []string{first.ID, second.ID},
			[]func(*verifyd.Verification) error{wrongCode, wrongCode})
	}()
	for !waitingForLock(t, dsn) {
		time.Sleep(10 * time.Millisecond)
	}
	// The other waits for the run the group inserted, until the group's
	// lock bound aborts it.
	if _, err := tx.Exec(ctx, "INSERT INTO number_failures VALUES ($1, $2, 0, 0)", a.ID, first.PhoneNumber); err != nil {
		t.Fatalf("the other transaction: %v", err)
	}
	tx.Rollback(ctx)
	errs := <-done
	for i, err := range errs {
		if err != nil {
			t.Errorf("validate %d: %v", i, err)
		}
	}
	for _, v := range []*verifyd.Verification{first, second} {
		if got := attemptsOf(t, dsn, v.ID); got != 1 {
			t.Errorf("%s: %d attempts stored, want 1", v.ID, got)
		}
		if got := runOf(t, dsn, v); got != 1 {
			t.Errorf("%s: its number's run is %d wrong codes, want 1", v.ID, got)
		}
	}
}

// TestValidateBehindALockTimeoutWithNoRowFoundIsTried: two validates whose
// rows changed under their optimistic try are retried with their rows
// locked, and the retry waits out the lock bound on a run of wrong codes
// another session is inserting, which no probe sees: the whole retry
// fails. A validate of the other verification queued behind for the next
// group must still be tried: the committer took the retry's lock timeout
// for each validate's own, and failed it unrun, as if its row were held.
func TestValidateBehindALockTimeoutWithNoRowFoundIsTried(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := newDatabase(t)
	s := open(t, dsn, postgres.WithTimeout(2*time.Second))
	a := createAccount(t, s)
	vs := storePending(t, s, a, 2)
	held, free := vs[0], vs[1]
	other := connect(t, dsn)
	inserter := connect(t, dsn)
	tx, err := inserter.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "INSERT INTO number_failures VALUES ($1, $2, 0, 0)", a.ID, held.PhoneNumber); err != nil {
		t.Fatal(err)
	}
	var changedOnce [2]atomic.Bool
	changedUnderIt := func(i int) func(*verifyd.Verification) error {
		return func(v *verifyd.Verification) error {
			if !changedOnce[i].Swap(true) {
				if _, err := other.Exec(ctx, "UPDATE verifications SET updated = updated + 1 WHERE id = $1", v.ID); err != nil {
					return err
				}
			}
			return wrongCode(v)
		}
	}
	var behindRuns atomic.Int32
	errs := s.ValidateGroup(ctx, a.ID, []string{held.ID, free.ID, free.ID},
		[]func(*verifyd.Verification) error{changedUnderIt(0), changedUnderIt(1), func(v *verifyd.Verification) error {
			behindRuns.Add(1)
			return wrongCode(v)
		}})
	if verifyd.ErrorCode(errs[0]) != verifyd.EUNAVAILABLE {
		t.Errorf("wrong code of the number whose run is being inserted: %v, want EUNAVAILABLE", errs[0])
	}
	if behindRuns.Load() != 1 || errs[2] != nil {
		t.Errorf("validate queued behind: %v, fn ran %d times; want it run once and written", errs[2], behindRuns.Load())
	}
	want := 1
	if errs[1] == nil {
		want = 2
	}
	if got := attemptsOf(t, dsn, free.ID); got != want {
		t.Errorf("the free verification has %d attempts, want %d", got, want)
	}
}
