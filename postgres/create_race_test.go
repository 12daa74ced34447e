package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"verifyd"
	"verifyd/postgres"
)

// lockBucket locks the limit bucket key on a connection of its own, in a
// transaction the test ends, as a purge or another instance would.
func lockBucket(t *testing.T, dsn, key string) (*pgx.Conn, pgx.Tx) {
	t.Helper()
	conn := connect(t, dsn)
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), "SELECT 1 FROM limit_buckets WHERE key = $1 FOR UPDATE", key); err != nil {
		t.Fatal(err)
	}
	return conn, tx
}

// bucketSends is how many sends the limit bucket key holds.
func bucketSends(t *testing.T, conn *pgx.Conn, key string) int {
	t.Helper()
	var (
		tat   int64
		sends []byte
	)
	if err := conn.QueryRow(t.Context(), "SELECT tat, sends FROM limit_buckets WHERE key = $1", key).Scan(&tat, &sends); err != nil {
		t.Fatal(err)
	}
	b, err := verifyd.DecodeBucket(sends, time.Unix(0, tat))
	if err != nil {
		t.Fatal(err)
	}
	return b.Sends()
}

// waitForLockWait waits until a session of the database waits for a lock.
func waitForLockWait(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		var waiting int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the create never waited for the bucket")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPurgeRacingACreateKeepsItsCharge: the purge deletes a bucket that has
// run out while a create is about to lock it. The create must still be
// judged on, and charge, a bucket: it once found none (its insert had left
// the existing row unlocked), so its charge was lost and one more send got
// through.
func TestPurgeRacingACreateKeepsItsCharge(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	// The create must wait out the purge's delete, however slow the
	// machine, rather than give up after the default second.
	s := open(t, dsn, postgres.WithTimeout(time.Minute))
	s.SetLockedWait(30 * time.Second)
	a := createAccount(t, s)
	l := verifyd.Limit{Name: "number", Key: "1:number:447700900001", Rate: verifyd.Rate{Count: 1, Per: 10 * time.Minute}, Property: "to"}
	send := func(n int, at time.Time) error {
		v, m := pending(a, n)
		v.Created, v.Updated, m.Created, m.NextAttempt = at, at, at, at
		v.ValidUntil, m.Deadline = at.Add(verifyd.DefaultValidity), at.Add(verifyd.DefaultValidity)
		return s.CreateVerification(t.Context(), v, m, []verifyd.Limit{l})
	}
	if err := send(0, now()); err != nil {
		t.Fatal(err)
	}
	later := now().Add(10 * time.Minute) // the bucket has run out: the purge may take it
	purge, tx := lockBucket(t, dsn, l.Key)
	done := make(chan error, 1)
	go func() { done <- send(1, later) }()
	waitForLockWait(t, purge)
	if _, err := tx.Exec(t.Context(), "DELETE FROM limit_buckets WHERE key = $1 AND tat <= $2", l.Key, later.UnixNano()); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("send at +10m: %v, want it allowed (the bucket had run out)", err)
	}
	if err := send(2, later.Add(time.Second)); verifyd.ErrorCode(err) != verifyd.EINVALID {
		t.Fatalf("send at +10m1s: %v, want Throttled (1 per 10 minutes)", err)
	}
}

// TestCreateAbandonedByItsCallerIsNotCommittedBehindAnError: a caller that
// gives up while its create waits in a group must not hear an error for a
// create the group then commits: the HTTP layer answers 500 and releases
// the Idempotency-Key, and the client's retry sends a second code.
func TestCreateAbandonedByItsCallerIsNotCommittedBehindAnError(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	s := open(t, dsn)
	a := createAccount(t, s)
	l := verifyd.Limit{Name: "number", Key: "1:number:447700900001", Rate: verifyd.Rate{Count: 5, Per: 10 * time.Minute}, Property: "to"}
	v0, m0 := pending(a, 0)
	if err := s.CreateVerification(t.Context(), v0, m0, []verifyd.Limit{l}); err != nil {
		t.Fatal(err)
	}
	other, tx := lockBucket(t, dsn, l.Key)
	ctx, cancel := context.WithCancel(t.Context())
	v1, m1 := pending(a, 1)
	done := make(chan error, 1)
	go func() { done <- s.CreateVerification(ctx, v1, m1, []verifyd.Limit{l}) }()
	waitForLockWait(t, other)
	cancel() // the client gives up
	time.Sleep(100 * time.Millisecond)
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	createErr := <-done
	if createErr == nil {
		return // committed, and said so
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := s.FindVerification(t.Context(), a.ID, v1.ID); err == nil {
			t.Fatalf("CreateVerification answered %v, yet the verification (and its message) were committed", createErr)
		}
	}
}
