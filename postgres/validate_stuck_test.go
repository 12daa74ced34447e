package postgres_test

import (
	"sync/atomic"
	"testing"
	"time"

	"verifyd"
	"verifyd/postgres"
)

// TestValidateRetriedBesideALockedRowIsWritten: a group of validates of A,
// whose row another session holds locked, and of B, whose row is free but
// changed under its optimistic try (another instance's validate), and
// perhaps a second validate of B queued behind for the next group. A and
// B both go to the row-locking try, which waits out the lock bound on A:
// that failed the whole try, so B answered 503 though its row was free,
// and the stuck map then failed B's second validate unrun with A's lock
// timeout. Only A may fail; both validates of B are written.
func TestValidateRetriedBesideALockedRowIsWritten(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		duplicate bool
	}{
		{"Alone", false},
		{"WithADuplicateBehind", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			dsn := newDatabase(t)
			s := open(t, dsn, postgres.WithTimeout(2*time.Second))
			a := createAccount(t, s)
			vs := storePending(t, s, a, 2)
			held, free := vs[0], vs[1]
			other := connect(t, dsn)
			holdVerification(t, dsn, held.ID)

			var heldRuns, freeRuns, dupRuns atomic.Int32
			heldFn := func(v *verifyd.Verification) error {
				heldRuns.Add(1)
				return wrongCode(v)
			}
			changedUnderIt := func(v *verifyd.Verification) error {
				if freeRuns.Add(1) == 1 {
					// Another instance's validate changes B between this
					// group's read and its write.
					if _, err := other.Exec(ctx, "UPDATE verifications SET updated = updated + 1 WHERE id = $1", free.ID); err != nil {
						return err
					}
				}
				return wrongCode(v)
			}
			ids := []string{held.ID, free.ID}
			fns := []func(*verifyd.Verification) error{heldFn, changedUnderIt}
			if tc.duplicate {
				ids = append(ids, free.ID)
				fns = append(fns, func(v *verifyd.Verification) error {
					dupRuns.Add(1)
					return wrongCode(v)
				})
			}
			errs := s.ValidateGroup(ctx, a.ID, ids, fns)
			if verifyd.ErrorCode(errs[0]) != verifyd.EUNAVAILABLE {
				t.Errorf("validate of the locked row: %v, want EUNAVAILABLE", errs[0])
			}
			if errs[1] != nil {
				t.Errorf("validate of the free row retried beside it: %v, want it written", errs[1])
			}
			want := 1
			if tc.duplicate {
				want = 2
				if errs[2] != nil || dupRuns.Load() != 1 {
					t.Errorf("second validate of the free row: %v, fn ran %d times; want it run once and written", errs[2], dupRuns.Load())
				}
			}
			if got := attemptsOf(t, dsn, free.ID); got != want {
				t.Errorf("the free row has %d attempts, want %d", got, want)
			}
			if got := attemptsOf(t, dsn, held.ID); got != 0 {
				t.Errorf("the locked row has %d attempts, want 0", got)
			}
		})
	}
}
