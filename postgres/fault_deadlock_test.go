package postgres_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"verifyd"
	"verifyd/postgres"
)

// TestValidateGroupRetriedAfterADeadlockCountsOnce: a group of validates
// meets another transaction in a lock cycle (the runs of wrong codes of
// two numbers, taken in opposite orders), and the server aborts one of
// them. Whichever it aborts, each wrong code is counted once, on its
// verification and on its number's run, and each validate is answered.
func TestValidateGroupRetriedAfterADeadlockCountsOnce(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := newDatabase(t)
	s := open(t, dsn)
	a := createAccount(t, s)
	vs := storePending(t, s, a, 2)
	first, second := vs[0], vs[1]
	other := connect(t, dsn)
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	// The other transaction takes the second number's run first...
	if _, err := tx.Exec(ctx, "INSERT INTO number_failures VALUES ($1, $2, 0, 0)", a.ID, second.PhoneNumber); err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	counted := func(v *verifyd.Verification) error {
		runs.Add(1)
		return wrongCode(v)
	}
	done := make(chan []error, 1)
	go func() {
		done <- s.ValidateGroup(ctx, a.ID, []string{first.ID, second.ID},
			[]func(*verifyd.Verification) error{counted, counted})
	}()
	// ...the group takes the first's and waits for the second's...
	for !waitingForLock(t, dsn) {
		time.Sleep(10 * time.Millisecond)
	}
	// ...and the other transaction asks for the first's: a cycle.
	if _, err := tx.Exec(ctx, "INSERT INTO number_failures VALUES ($1, $2, 0, 0)", a.ID, first.PhoneNumber); err == nil {
		t.Log("the server aborted the group's transaction; the group ran again")
	} else {
		t.Logf("the server aborted the other transaction: %v", err)
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
		var failures int
		if err := other.QueryRow(ctx, "SELECT failures FROM number_failures WHERE account_id = $1 AND phone_number = $2",
			a.ID, v.PhoneNumber).Scan(&failures); err != nil {
			t.Fatal(err)
		}
		if failures != 1 {
			t.Errorf("%s: its number's run is %d wrong codes, want 1", v.ID, failures)
		}
	}
	t.Logf("the validates' fns ran %d times", runs.Load())
}

// TestCreateGroupRetriedAfterADeadlockChargesOnce: a create meets another
// transaction in a lock cycle on its limit buckets, and the server aborts
// one of them. Whichever it aborts, the create is stored once and each of
// its limits charged once.
func TestCreateGroupRetriedAfterADeadlockChargesOnce(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := newDatabase(t)
	// The create's session looks for the cycle well before its lock wait
	// gives up (lockedWait, a second here), so that the server aborts it
	// rather than the other when the test is quick enough.
	s := open(t, dsn+"&deadlock_timeout=300", postgres.WithTimeout(4*time.Second))
	s.SetLockedWait(3 * time.Second) // the deadlock is found first, however loaded the machine
	a := createAccount(t, s)
	limits := []verifyd.Limit{
		{Name: "number", Key: "1:a", Rate: verifyd.Rate{Count: 100, Per: time.Hour}, Property: "to"},
		{Name: "prefix", Key: "1:b", Rate: verifyd.Rate{Count: 100, Per: time.Hour}, Property: "to"},
	}
	v0, m0 := pending(a, 0)
	if err := s.CreateVerification(ctx, v0, m0, limits); err != nil {
		t.Fatal(err)
	}
	other, tx := lockBucket(t, dsn, "1:b")
	defer tx.Rollback(context.Background())
	v1, m1 := pending(a, 1)
	done := make(chan error, 1)
	go func() { done <- s.CreateVerification(ctx, v1, m1, limits) }()
	waitForLockWait(t, other)
	if _, err := tx.Exec(ctx, "SELECT 1 FROM limit_buckets WHERE key = '1:a' FOR UPDATE"); err == nil {
		t.Log("the server aborted the create's transaction; the group ran again")
	} else {
		t.Logf("the server aborted the other transaction: %v", err)
	}
	tx.Rollback(ctx)
	if err := <-done; err != nil {
		t.Fatalf("create: %v", err)
	}
	for _, l := range limits {
		if got := bucketSends(t, other, l.Key); got != 2 {
			t.Errorf("bucket %s charged %d times, want 2", l.Key, got)
		}
	}
	if _, err := s.FindVerification(ctx, a.ID, v1.ID); err != nil {
		t.Fatalf("the create answered nil: %v", err)
	}
}
