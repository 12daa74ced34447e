package postgres_test

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"verifyd"
	"verifyd/postgres"
)

// holdVerification locks verification id's row from a session of its own,
// as a stuck administrator's transaction (or a hung instance) would, until
// the returned func is called.
func holdVerification(t *testing.T, dsn, id string) (release func()) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), "SELECT 1 FROM verifications WHERE id = $1 FOR UPDATE", id); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			tx.Rollback(context.Background())
			conn.Close(context.Background())
		})
	}
	t.Cleanup(release)
	return release
}

// attemptsOf reads a verification's stored attempt count.
func attemptsOf(t *testing.T, dsn, id string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT attempts FROM verifications WHERE id = $1", id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// wrongCode counts one wrong attempt.
func wrongCode(v *verifyd.Verification) error {
	v.Attempts++
	v.Updated = v.Updated.Add(time.Millisecond)
	return nil
}

// TestValidateOfALockedRowFailsOnlyItself: a verification whose row another
// session holds locked (FOR UPDATE, then nothing) must not take the
// validates of other verifications down with it. They shared its group's
// write, which waited on the lock until the Store's timeout: every validate
// in the group answered 503, and since the same row was validated again in
// each next group, every validate of the instance failed while the lock
// was held.
func TestValidateOfALockedRowFailsOnlyItself(t *testing.T) {
	// Not parallel: noPileUp counts the process's goroutines.
	ctx := t.Context()
	dsn := newDatabase(t)
	const timeout = 2 * time.Second
	s := open(t, dsn, postgres.WithTimeout(timeout))
	a := createAccount(t, s)
	vs := storePending(t, s, a, 2)
	held, free := vs[0], vs[1]
	release := holdVerification(t, dsn, held.ID)

	t.Run("SameGroup", func(t *testing.T) {
		errs := s.ValidateGroup(ctx, a.ID, []string{held.ID, free.ID},
			[]func(*verifyd.Verification) error{wrongCode, wrongCode})
		if verifyd.ErrorCode(errs[0]) != verifyd.EUNAVAILABLE {
			t.Errorf("validate of the locked row: %v, want EUNAVAILABLE", errs[0])
		}
		if errs[1] != nil {
			t.Errorf("validate of another row in its group: %v, want it written", errs[1])
		}
		if got := attemptsOf(t, dsn, free.ID); got != 1 {
			t.Errorf("the other row has %d attempts, want 1", got)
		}
	})

	t.Run("UnderLoad", func(t *testing.T) {
		// Clients keep validating the locked row while another validate
		// comes in: it must be answered, and nothing may pile up.
		before := runtime.NumGoroutine()
		stop := make(chan struct{})
		var (
			wg         sync.WaitGroup
			heldAnswer atomic.Int32
		)
		for range 8 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					_, err := s.UpdateVerification(ctx, a.ID, held.ID, wrongCode)
					if verifyd.ErrorCode(err) != verifyd.EUNAVAILABLE {
						t.Errorf("validate of the locked row: %v, want EUNAVAILABLE", err)
						return
					}
					heldAnswer.Add(1)
				}
			})
		}
		// The locked row's validates are in flight (or answered) before the
		// other comes in.
		for heldAnswer.Load() == 0 {
			if !waitingForLock(t, dsn) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			break
		}
		was := attemptsOf(t, dsn, free.ID)
		for i := range 3 {
			if _, err := s.UpdateVerification(ctx, a.ID, free.ID, wrongCode); err != nil {
				t.Errorf("validate %d of another row while the locked one is hammered: %v", i, err)
			}
		}
		if got := attemptsOf(t, dsn, free.ID); got != was+3 {
			t.Errorf("the other row has %d attempts, want %d", got, was+3)
		}
		close(stop)
		wg.Wait()
		release()
		// Once the lock goes, the row validates again.
		if _, err := s.UpdateVerification(ctx, a.ID, held.ID, wrongCode); err != nil {
			t.Fatalf("validate of the row once released: %v", err)
		}
		if got := attemptsOf(t, dsn, held.ID); got != 1 {
			t.Fatalf("the released row has %d attempts, want 1: a validate answered 503 counted one", got)
		}
		noPileUp(t, before)
	})
}

// waitingForLock reports whether a session of the database waits for a
// lock.
func waitingForLock(t *testing.T, dsn string) bool {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// TestCreateChargingALockedBucketFailsOnlyItself: a limit bucket another
// session holds locked must not take down the creates that share its
// group but not the bucket: the whole group waited for the lock until the
// Store's timeout and answered 503, so while one account's bucket was held
// (a stuck session, a hung instance until the server ends its
// transaction) the creates of every account on the instance failed.
func TestCreateChargingALockedBucketFailsOnlyItself(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, a, held, free, tx := heldBucket(t)
	v1, m1 := pending(a, 1)
	v2, m2 := pending(a, 2)
	v3, m3 := pending(a, 3)
	errs := s.CommitGroup(ctx, []*verifyd.Verification{v1, v2, v3}, []*verifyd.Message{m1, m2, m3},
		[][]verifyd.Limit{{held}, {free}, nil})
	if verifyd.ErrorCode(errs[0]) != verifyd.EUNAVAILABLE {
		t.Errorf("create charging the locked bucket: %v, want EUNAVAILABLE", errs[0])
	}
	if errs[1] != nil || errs[2] != nil {
		t.Errorf("creates in its group charging another bucket, and none: %v, %v; want both committed", errs[1], errs[2])
	}
	for i, v := range []*verifyd.Verification{v1, v2, v3} {
		_, err := s.FindVerification(ctx, a.ID, v.ID)
		if stored := err == nil; stored != (errs[i] == nil) {
			t.Errorf("create %d answered %v, stored %v", i+1, errs[i], stored)
		}
	}
	tx.Rollback(ctx)
	if err := s.CreateVerification(ctx, v1, m1, []verifyd.Limit{held}); err != nil {
		t.Fatalf("create once the bucket is free: %v", err)
	}
}

// heldBucket opens a Store with a 2 s timeout and an account a, charges a
// create to the bucket held, and locks it from another session until the
// test ends or tx is rolled back; free is another bucket of the same
// shape.
func heldBucket(t *testing.T) (s *postgres.Store, a *verifyd.Account, held, free verifyd.Limit, tx pgx.Tx) {
	t.Helper()
	dsn := newDatabase(t)
	s = open(t, dsn, postgres.WithTimeout(2*time.Second))
	a = createAccount(t, s)
	held = verifyd.Limit{Name: "country", Key: "1:country:GB", Rate: verifyd.Rate{Count: 1000, Per: time.Hour}}
	free = verifyd.Limit{Name: "country", Key: "2:country:GB", Rate: verifyd.Rate{Count: 1000, Per: time.Hour}}
	v0, m0 := pending(a, 0)
	if err := s.CreateVerification(t.Context(), v0, m0, []verifyd.Limit{held}); err != nil {
		t.Fatal(err)
	}
	_, tx = lockBucket(t, dsn, held.Key)
	t.Cleanup(func() { tx.Rollback(context.Background()) })
	return s, a, held, free, tx
}

// noPileUp fails the test unless the process's goroutines come back to
// about the number there were before a lock was held (before): calls that
// met the lock must have been answered, not left waiting. The count is the
// whole process's, so a test that calls it does not run in parallel.
func noPileUp(t *testing.T, before int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > before+5; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines before the lock, %d after it went: calls piled up", before, runtime.NumGoroutine())
		}
	}
}
