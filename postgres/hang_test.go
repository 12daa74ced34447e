package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"verifyd"
	"verifyd/postgres"
)

// TestCallsBoundedWhenTheDatabaseHangs: while the database does not answer
// (a table locked by someone else), every validate fails within about twice
// the Store's timeout, however many wait at once. The wait for a committer
// once counted against nothing: 400 validates with a 1 s timeout took up to
// 5 s, one more timeout for each group ahead of them.
func TestCallsBoundedWhenTheDatabaseHangs(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := newDatabase(t)
	const timeout = time.Second
	s := open(t, dsn, postgres.WithTimeout(timeout))
	a := createAccount(t, s)
	const n = 400
	ids := make([]string, n)
	for i := range n {
		v, m := pending(a, i)
		ids[i] = v.ID
		if err := s.CreateVerification(ctx, v, m, nil); err != nil {
			t.Fatal(err)
		}
	}
	c := connect(t, dsn)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "LOCK TABLE verifications IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		slowest time.Duration
		wg      sync.WaitGroup
	)
	for i := range n {
		wg.Go(func() {
			start := time.Now()
			_, err := s.UpdateVerification(ctx, a.ID, ids[i], func(v *verifyd.Verification) error { v.Attempts++; return nil })
			took := time.Since(start)
			if verifyd.ErrorCode(err) != verifyd.EUNAVAILABLE {
				t.Errorf("UpdateVerification = %v, want EUNAVAILABLE", err)
			}
			mu.Lock()
			slowest = max(slowest, took)
			mu.Unlock()
		})
	}
	wg.Wait()
	if slowest > 2*timeout+time.Second {
		t.Errorf("%d validates at once with the database hung: the slowest took %v, want about 2 x %v at most", n, slowest, timeout)
	}
}
