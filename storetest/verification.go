package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"verifyd"
)

func testVerifications(t *testing.T, newStore NewStore) {
	t.Run("FindReturnsEveryFieldAndQueuedDelivery", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		v, m := pending(a, 1, base())
		v.Country, v.NumberStatus, v.MaxAttempts, v.Attempts = "FR", verifyd.NumberNotProvisioned, 7, 2
		f.create(v, m)

		want := normVerification(*v)
		want.Delivery = &verifyd.Delivery{State: verifyd.DeliveryQueued, Updated: m.Created}
		wantEqual(t, "verification", normVerification(*f.find(a.ID, v.ID)), want)
	})

	t.Run("FindWithoutMessageHasNoDelivery", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		v, _ := pending(a, 1, base())
		v.State, v.NumberStatus = verifyd.StateNotSent, verifyd.NumberDead
		f.create(v, nil)
		wantEqual(t, "verification", normVerification(*f.find(a.ID, v.ID)), normVerification(*v))
	})

	t.Run("FindErrNotFoundForUnknownID", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		f.queue(a, 1, base())
		_, err := f.s.FindVerification(f.ctx, a.ID, requestID(2))
		wantCode(t, err, verifyd.ENOTFOUND)
	})

	t.Run("FindErrNotFoundForAnotherAccount", func(t *testing.T) {
		f := newFixture(t, newStore)
		a, b := f.account("a"), f.account("b")
		v, _ := f.queue(a, 1, base())
		_, err := f.s.FindVerification(f.ctx, b.ID, v.ID)
		wantCode(t, err, verifyd.ENOTFOUND)
	})

	t.Run("CreateErrConflictOnDuplicateID", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		v, _ := f.queue(a, 1, base())
		again, m := pending(a, 1, base().Add(time.Second))
		again.PhoneNumber = number(2)
		wantCode(t, f.s.CreateVerification(f.ctx, again, m, nil), verifyd.ECONFLICT)
		if got := f.find(a.ID, v.ID); got.PhoneNumber != v.PhoneNumber {
			t.Fatalf("the first verification changed: number %s", got.PhoneNumber)
		}
	})
}

func testUpdateVerification(t *testing.T, newStore NewStore) {
	t.Run("WritesStateAttemptsVerifiedAndUpdatedOnly", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		v, _ := f.queue(a, 1, base())
		now := base().Add(time.Minute)
		got, err := f.s.UpdateVerification(f.ctx, a.ID, v.ID, func(cur *verifyd.Verification) error {
			seen := normVerification(*cur)
			seen.Delivery = nil
			wantEqual(t, "the row fn sees", seen, normVerification(*v))
			cur.State, cur.Attempts, cur.Verified, cur.Updated = verifyd.StateVerified, 3, now, now
			cur.PhoneNumber, cur.MaxAttempts = number(9), 99 // not written back
			return nil
		})
		if err != nil {
			t.Fatalf("UpdateVerification: %v", err)
		}
		if got.State != verifyd.StateVerified || got.Attempts != 3 {
			t.Fatalf("returned %s with %d attempts, want Verified with 3", got.State, got.Attempts)
		}
		want := normVerification(*v)
		want.State, want.Attempts, want.Verified, want.Updated = verifyd.StateVerified, 3, now, now
		found := normVerification(*f.find(a.ID, v.ID))
		found.Delivery = nil
		wantEqual(t, "stored verification", found, want)
	})

	t.Run("FnErrorWritesNothingAndIsReturned", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		v, _ := f.queue(a, 1, base())
		refused := errors.New("refused by fn")
		_, err := f.s.UpdateVerification(f.ctx, a.ID, v.ID, func(cur *verifyd.Verification) error {
			cur.Cancel(base().Add(time.Second))
			cur.Attempts = 4
			return refused
		})
		if !errors.Is(err, refused) {
			t.Fatalf("error = %v, want fn's error", err)
		}
		got := f.find(a.ID, v.ID)
		if got.State != verifyd.StatePending || got.Attempts != 0 || got.Delivery.State != verifyd.DeliveryQueued {
			t.Fatalf("after a refused fn: %s, %d attempts, delivery %s; want Pending, 0, Queued",
				got.State, got.Attempts, got.Delivery.State)
		}
	})

	t.Run("ErrNotFoundForAnotherAccountWithoutCallingFn", func(t *testing.T) {
		f := newFixture(t, newStore)
		a, b := f.account("a"), f.account("b")
		v, _ := f.queue(a, 1, base())
		for _, tc := range []struct {
			account int64
			id      string
		}{{b.ID, v.ID}, {a.ID, requestID(2)}} {
			_, err := f.s.UpdateVerification(f.ctx, tc.account, tc.id, func(*verifyd.Verification) error {
				t.Error("fn called for a verification the account does not own")
				return nil
			})
			wantCode(t, err, verifyd.ENOTFOUND)
		}
	})

	t.Run("CancelWithdrawsQueuedMessage", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		v, _ := f.queue(a, 1, base())
		other, _ := f.queue(a, 2, base())
		at := base().Add(time.Second)
		if _, err := f.s.UpdateVerification(f.ctx, a.ID, v.ID, func(cur *verifyd.Verification) error {
			cur.Cancel(at)
			return nil
		}); err != nil {
			t.Fatalf("UpdateVerification: %v", err)
		}
		wantEqual(t, "delivery", f.delivery(a.ID, v.ID),
			verifyd.Delivery{State: verifyd.DeliveryFailed, Error: "cancelled", Updated: at})
		f.claimOne(at, other.ID)
	})

	t.Run("CancelWithdrawsLeasedMessageForGood", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		v, _ := f.queue(a, 1, base())
		f.claimOne(base(), v.ID)
		if _, err := f.s.UpdateVerification(f.ctx, a.ID, v.ID, func(cur *verifyd.Verification) error {
			cur.Cancel(base().Add(time.Second))
			return nil
		}); err != nil {
			t.Fatalf("UpdateVerification: %v", err)
		}
		// The worker that held the lease failed and asks for a retry: a
		// withdrawn message stays withdrawn.
		f.finish(verifyd.MessageResult{RequestID: v.ID, State: verifyd.DeliveryQueued, Error: "timeout",
			NextAttempt: base().Add(2 * time.Second), At: base().Add(2 * time.Second)})
		if ms := f.claim(base().Add(time.Minute), 10); len(ms) != 0 {
			t.Fatalf("a cancelled message was claimed again: %v", ids(ms))
		}
		if d := f.delivery(a.ID, v.ID); d.State != verifyd.DeliveryFailed {
			t.Fatalf("delivery state %s, want Failed", d.State)
		}
	})

	t.Run("CancelLeavesSubmittedMessage", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		v, _ := f.queue(a, 1, base())
		f.submit(base(), v.ID, "c1")
		before := f.delivery(a.ID, v.ID)
		if _, err := f.s.UpdateVerification(f.ctx, a.ID, v.ID, func(cur *verifyd.Verification) error {
			cur.Cancel(base().Add(time.Second))
			return nil
		}); err != nil {
			t.Fatalf("UpdateVerification: %v", err)
		}
		wantEqual(t, "delivery", f.delivery(a.ID, v.ID), before)
	})

	t.Run("ConcurrentRightCodesVerifyExactlyOnce", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		v, _ := f.queue(a, 1, base())
		statuses := validateConcurrently(f, a.ID, v.ID, 50, true)
		if n := statuses[verifyd.CodeVerified]; n != 1 {
			t.Fatalf("%d validates saw CodeVerified, want exactly 1 (all: %v)", n, statuses)
		}
		if n := statuses[""]; n != 49 {
			t.Fatalf("%d validates found the request finished, want 49 (all: %v)", n, statuses)
		}
		if got := f.find(a.ID, v.ID); got.State != verifyd.StateVerified {
			t.Fatalf("state %s, want Verified", got.State)
		}
	})

	t.Run("ConcurrentWrongCodesCountedExactly", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		v, m := pending(a, 1, base())
		v.MaxAttempts = 100
		f.create(v, m)
		statuses := validateConcurrently(f, a.ID, v.ID, 20, false)
		if n := statuses[verifyd.CodeNotVerified]; n != 20 {
			t.Fatalf("%d validates saw CodeNotVerified, want 20 (all: %v)", n, statuses)
		}
		if got := f.find(a.ID, v.ID); got.Attempts != 20 || got.State != verifyd.StatePending {
			t.Fatalf("%d attempts, state %s; want 20, Pending", got.Attempts, got.State)
		}
	})

	t.Run("ConcurrentWrongCodesLockAtTheLimit", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		v, _ := f.queue(a, 1, base())
		statuses := validateConcurrently(f, a.ID, v.ID, 20, false)
		want := map[verifyd.Status]int{verifyd.CodeNotVerified: 4, verifyd.CodeLocked: 1, "": 15}
		wantEqual(t, "statuses", statuses, want)
		if got := f.find(a.ID, v.ID); got.Attempts != 5 || got.State != verifyd.StateLocked {
			t.Fatalf("%d attempts, state %s; want 5, Locked", got.Attempts, got.State)
		}
	})
}

// errFinished is what the validate fn returns for a finished request, as the
// server does, so that nothing is written.
var errFinished = errors.New("storetest: already finished")

// validateConcurrently runs n validates of one request at once, as n server
// goroutines would, and counts the answers ("" for "already finished"). A
// store may run fn more than once (a retried transaction); the last run is
// the one that was written.
func validateConcurrently(f *fixture, accountID int64, id string, n int, match bool) map[verifyd.Status]int {
	f.t.Helper()
	now := base().Add(time.Minute)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[verifyd.Status]int{}
		start    = make(chan struct{})
	)
	for range n {
		wg.Go(func() {
			<-start
			var status verifyd.Status
			_, err := f.s.UpdateVerification(f.ctx, accountID, id, func(v *verifyd.Verification) error {
				var ok bool
				if status, ok = v.Attempt(now, match); !ok {
					return errFinished
				}
				return nil
			})
			if err != nil && !errors.Is(err, errFinished) {
				f.t.Errorf("UpdateVerification: %v", err)
			}
			mu.Lock()
			statuses[status]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	if f.t.Failed() {
		f.t.FailNow()
	}
	return statuses
}
