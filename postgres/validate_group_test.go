package postgres_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"verifyd"
	"verifyd/postgres"
)

// TestValidateGroupWithAPartialCommit: two validates in one group; A's
// optimistic write commits, B's row changed under it and its locked retry
// fails (the store's timeout, or the server's lock_timeout). A was written,
// so A must hear so, and its fn must not run again: once the group's error
// went to A too, as a 503 for a counted attempt or, retried alone, as a
// second count of one wrong code.
func TestValidateGroupWithAPartialCommit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		dsnOpt string
	}{
		{"TimeoutOnLockedRetry", ""},
		{"LockTimeoutOnLockedRetry", "&lock_timeout=300"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			dsn := newDatabase(t)
			// B's locked retry gives up after a second, or after the
			// DSN's shorter lock_timeout; the store's whole timeout is
			// far off, so that a loaded machine cannot fail A with it.
			s := open(t, dsn+tc.dsnOpt, postgres.WithTimeout(10*time.Second))
			s.SetLockedWait(time.Second)
			a := createAccount(t, s)
			vs := storePending(t, s, a, 2)
			va, vb := vs[0], vs[1]
			other := connect(t, dsn)

			var aRuns, bRuns atomic.Int32
			wrongCode := func(v *verifyd.Verification) error {
				aRuns.Add(1)
				v.Attempts++
				v.Updated = v.Updated.Add(time.Millisecond)
				return nil
			}
			var tx pgx.Tx
			changedUnderIt := func(v *verifyd.Verification) error {
				if bRuns.Add(1) == 1 {
					// Another instance changes B, then holds its row.
					if _, err := other.Exec(ctx, "UPDATE verifications SET updated = updated + 1 WHERE id = $1", vb.ID); err != nil {
						return err
					}
					var err error
					if tx, err = other.Begin(ctx); err != nil {
						return err
					}
					if _, err := tx.Exec(ctx, "SELECT 1 FROM verifications WHERE id = $1 FOR UPDATE", vb.ID); err != nil {
						return err
					}
				}
				v.Attempts++
				return nil
			}
			errs := s.ValidateGroup(ctx, a.ID, []string{va.ID, vb.ID},
				[]func(*verifyd.Verification) error{wrongCode, changedUnderIt})
			if tx != nil {
				tx.Rollback(ctx)
			}
			var attempts int
			if err := other.QueryRow(ctx, "SELECT attempts FROM verifications WHERE id = $1", va.ID).Scan(&attempts); err != nil {
				t.Fatal(err)
			}
			if attempts != 1 || aRuns.Load() != 1 || errs[0] != nil {
				t.Fatalf("A: %v, fn ran %d times, %d attempts stored; want no error, once, 1", errs[0], aRuns.Load(), attempts)
			}
			if verifyd.ErrorCode(errs[1]) != verifyd.EUNAVAILABLE {
				t.Fatalf("B: %v, want EUNAVAILABLE (its row stayed locked)", errs[1])
			}
		})
	}
}

// storePending stores the pending verifications 1 to n of account a, each
// with its message, and returns them.
func storePending(t *testing.T, s *postgres.Store, a *verifyd.Account, n int) []*verifyd.Verification {
	t.Helper()
	vs := make([]*verifyd.Verification, n)
	for i := range vs {
		v, m := pending(a, i+1)
		if err := s.CreateVerification(t.Context(), v, m, nil); err != nil {
			t.Fatal(err)
		}
		vs[i] = v
	}
	return vs
}
