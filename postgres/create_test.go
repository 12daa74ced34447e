package postgres_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"verifyd"
	"verifyd/postgres"
)

// group builds n pending creates of a, each charged to limits.
func group(a *verifyd.Account, first, n int, limits ...verifyd.Limit) ([]*verifyd.Verification, []*verifyd.Message, [][]verifyd.Limit) {
	var (
		vs []*verifyd.Verification
		ms []*verifyd.Message
		ls [][]verifyd.Limit
	)
	for i := range n {
		v, m := pending(a, first+i)
		vs, ms, ls = append(vs, v), append(ms, m), append(ls, limits)
	}
	return vs, ms, ls
}

func TestGroupChargesLimitsInOrderAndKeepsNothingOfARefusal(t *testing.T) {
	t.Parallel()
	s := open(t, newDatabase(t))
	a := createAccount(t, s)
	l := verifyd.Limit{Name: "number", Key: "k", Rate: verifyd.Rate{Count: 3, Per: time.Hour}, Property: "to"}
	vs, ms, ls := group(a, 1, 6, l)
	errs := s.CommitGroup(t.Context(), vs, ms, ls)
	for i, err := range errs {
		if i < 3 {
			if err != nil {
				t.Errorf("create %d of the group: %v, want it allowed", i, err)
			}
			continue
		}
		// No more than 3 in an hour, as one at a time.
		var got *verifyd.Error
		if !errors.As(err, &got) || got.RetryAfter != time.Hour {
			t.Errorf("create %d of the group: %v, want throttled for an hour", i, err)
		}
		if _, err := s.FindVerification(t.Context(), a.ID, vs[i].ID); verifyd.ErrorCode(err) != verifyd.ENOTFOUND {
			t.Errorf("refused create %d was kept: %v", i, err)
		}
	}
	claimed, err := s.ClaimMessages(t.Context(), now(), time.Minute, 100)
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claimed %d messages (%v), want the 3 allowed only", len(claimed), err)
	}
}

func TestGroupConflictsOnlyTheDuplicate(t *testing.T) {
	t.Parallel()
	s := open(t, newDatabase(t))
	a := createAccount(t, s)
	taken, m := pending(a, 1)
	if err := s.CreateVerification(t.Context(), taken, m, nil); err != nil {
		t.Fatal(err)
	}
	for _, withLimits := range []bool{false, true} {
		var limits []verifyd.Limit
		if withLimits {
			limits = []verifyd.Limit{{Name: "number", Key: "roomy", Rate: verifyd.Rate{Count: 100, Per: time.Hour}}}
		}
		first := 10
		if withLimits {
			first = 20
		}
		vs, ms, ls := group(a, first, 4, limits...)
		// The second is an id already stored, the fourth repeats the third's.
		vs[1], ms[1] = pending(a, 1)
		vs[1].PhoneNumber = "447700900999"
		vs[3], ms[3] = pending(a, first+2)
		errs := s.CommitGroup(t.Context(), vs, ms, ls)
		for i, want := range []string{"", verifyd.ECONFLICT, "", verifyd.ECONFLICT} {
			if got := verifyd.ErrorCode(errs[i]); got != want {
				t.Errorf("limits %v, create %d: %v, want code %q", withLimits, i, errs[i], want)
			}
		}
	}
	if got, err := s.FindVerification(t.Context(), a.ID, taken.ID); err != nil || got.PhoneNumber != taken.PhoneNumber {
		t.Fatalf("the stored verification changed: %v, %v", got, err)
	}
}

func TestGroupWithABadCreateFailsOnlyThatOne(t *testing.T) {
	t.Parallel()
	s := open(t, newDatabase(t))
	a := createAccount(t, s)
	vs, ms, ls := group(a, 1, 3)
	vs[1].Country = "G\x00B" // PostgreSQL refuses a NUL in text
	errs := s.CommitGroup(t.Context(), vs, ms, ls)
	if errs[0] != nil || errs[2] != nil || errs[1] == nil {
		t.Fatalf("outcomes %v, want only the second to fail", errs)
	}
	for _, i := range []int{0, 2} {
		if _, err := s.FindVerification(t.Context(), a.ID, vs[i].ID); err != nil {
			t.Errorf("good create %d: %v", i, err)
		}
	}
}

func TestCloseAnswersEveryCreate(t *testing.T) {
	t.Parallel()
	s := open(t, newDatabase(t))
	a := createAccount(t, s)
	var wg sync.WaitGroup
	errs := make([]error, 100)
	for i := range errs {
		wg.Go(func() {
			v, m := pending(a, i)
			errs[i] = s.CreateVerification(t.Context(), v, m, nil)
		})
	}
	s.Close()
	wg.Wait() // a create lost between the callers and the committers would hang here
	for i, err := range errs {
		if err != nil && !errors.Is(err, postgres.ErrClosed) {
			t.Errorf("create %d: %v, want success or the store closed", i, err)
		}
	}
}

// TestLimitBucketFromBeforeWindows: a bucket row an older verifyd wrote (its
// GCRA timestamp, no sends) refuses after the upgrade for as long as it did
// before, and is written in the new form by its next charge.
func TestLimitBucketFromBeforeWindows(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	s := open(t, dsn)
	a := createAccount(t, s)
	l := verifyd.Limit{Name: "number", Key: "1:number:447700900001", Rate: verifyd.Rate{Count: 5, Per: 10 * time.Minute}, Property: "to"}
	// Five sends 1 minute before now() left the old bucket's tat 9 minutes
	// on; it let the next one through at +1m.
	conn := connect(t, dsn)
	if _, err := conn.Exec(t.Context(), "INSERT INTO limit_buckets (key, tat) VALUES ($1, $2)",
		l.Key, now().Add(9*time.Minute).UnixNano()); err != nil {
		t.Fatal(err)
	}
	v, m := pending(a, 1)
	var e *verifyd.Error
	if err := s.CreateVerification(t.Context(), v, m, []verifyd.Limit{l}); !errors.As(err, &e) || e.RetryAfter != time.Minute {
		t.Fatalf("a send at now: %v, want throttled for a minute", err)
	}
	v, m = pending(a, 2)
	v.Created = now().Add(time.Minute)
	if err := s.CreateVerification(t.Context(), v, m, []verifyd.Limit{l}); err != nil {
		t.Fatalf("a send a minute later: %v", err)
	}
	if got := bucketSends(t, conn, l.Key); got != 5 {
		t.Fatalf("the bucket now keeps %d sends, want the 4 it stood for and the new one", got)
	}
}
