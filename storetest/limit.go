package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"verifyd"
)

// limit is a per-number bucket of count sends per period.
func limit(key string, count int, per time.Duration) verifyd.Limit {
	return verifyd.Limit{Name: "number", Key: key, Rate: verifyd.Rate{Count: count, Per: per}, Property: "to"}
}

// send tries the n-th create of a at now, charged to limits.
func (f *fixture) send(a *verifyd.Account, n int, now time.Time, limits ...verifyd.Limit) error {
	v, m := pending(a, n, now)
	return f.s.CreateVerification(f.ctx, v, m, limits)
}

// wantSent fails unless the n-th create at now is allowed.
func (f *fixture) wantSent(a *verifyd.Account, n int, now time.Time, limits ...verifyd.Limit) {
	f.t.Helper()
	if err := f.send(a, n, now, limits...); err != nil {
		f.t.Fatalf("send %d at +%v: %v, want it allowed", n, now.Sub(base()), err)
	}
}

// wantThrottled fails unless the n-th create at now is refused with exactly
// by's Throttled error for wait, and nothing of it was written.
func (f *fixture) wantThrottled(a *verifyd.Account, n int, now time.Time, by verifyd.Limit, wait time.Duration, limits ...verifyd.Limit) {
	f.t.Helper()
	err := f.send(a, n, now, limits...)
	var got *verifyd.Error
	if !errors.As(err, &got) {
		f.t.Fatalf("send %d at +%v: %v, want refused by the %s limit", n, now.Sub(base()), err, by.Key)
	}
	wantEqual(f.t, fmt.Sprintf("refusal of send %d at +%v", n, now.Sub(base())), *got, *by.Throttled(wait))
	_, err = f.s.FindVerification(f.ctx, a.ID, requestID(n))
	wantCode(f.t, err, verifyd.ENOTFOUND)
}

func testLimits(t *testing.T, newStore NewStore) {
	t.Run("AllowsUpToCountThenRefusesWithExactWait", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		l := limit("1:number:447700900001", 3, time.Minute) // no more than 3 in any minute
		for n := 1; n <= 3; n++ {
			f.wantSent(a, n, base(), l)
		}
		f.wantThrottled(a, 4, base(), l, time.Minute, l)
		// The refused send queued nothing.
		if ms := f.claim(base(), 10); len(ms) != 3 {
			t.Fatalf("claimed %v, want the 3 allowed sends only", ids(ms))
		}
	})

	t.Run("RetryOneSecondEarlyRefusedOneSecondLateAllowed", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		l := limit("1:number:447700900001", 3, time.Minute)
		for n := 1; n <= 3; n++ {
			f.wantSent(a, n, base().Add(time.Duration(n-1)*10*time.Second), l)
		}
		// Full until the first send, at +0s, is a minute old.
		f.wantThrottled(a, 4, base().Add(20*time.Second), l, 40*time.Second, l)
		f.wantThrottled(a, 5, base().Add(59*time.Second), l, time.Second, l)
		// Had either refusal counted, this one would be refused too.
		f.wantSent(a, 6, base().Add(61*time.Second), l)
		// Then full again until the second, at +10s, is a minute old: the
		// store kept each send, not only the last.
		f.wantThrottled(a, 7, base().Add(61*time.Second), l, 9*time.Second, l)
	})

	t.Run("LongestWaitIsReported", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		minute, hour := limit("minute", 1, time.Minute), limit("hour", 1, time.Hour)
		f.wantSent(a, 1, base(), minute, hour)
		f.wantThrottled(a, 2, base(), hour, time.Hour, minute, hour)
		f.wantThrottled(a, 3, base(), hour, time.Hour, hour, minute)
	})

	t.Run("OneRefusalChargesNoOtherLimit", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		roomy, tight := limit("roomy", 2, time.Minute), limit("tight", 1, time.Hour)
		f.wantSent(a, 1, base(), roomy, tight)
		f.wantThrottled(a, 2, base(), tight, time.Hour, roomy, tight)
		// roomy was charged once, so it still has room for one.
		f.wantSent(a, 3, base(), roomy)
		f.wantThrottled(a, 4, base(), roomy, time.Minute, roomy)
	})

	t.Run("UnrelatedKeysUnaffected", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		one, two := limit("1:number:447700900001", 1, time.Hour), limit("1:number:447700900002", 1, time.Hour)
		f.wantSent(a, 1, base(), one)
		f.wantThrottled(a, 2, base(), one, time.Hour, one)
		f.wantSent(a, 3, base(), two)
		f.wantSent(a, 4, base())
	})

	t.Run("AnEarlierClockKeepsTheBucketUntilItsLastSendLeaves", func(t *testing.T) {
		// A send whose time is before the bucket's newest (creates out of
		// order; an instance whose clock is behind) must not move the
		// bucket's end back: the purge would delete it while the newest
		// send still counts, and let a third send into 10 minutes.
		f := newFixture(t, newStore)
		a := f.account("shop")
		l := limit("1:number:447700900001", 2, 10*time.Minute)
		f.wantSent(a, 1, base(), l)
		f.wantSent(a, 2, base().Add(-time.Minute), l)
		at := base().Add(9*time.Minute + time.Second)
		if _, err := f.s.PurgeVerifications(f.ctx, at); err != nil {
			t.Fatalf("PurgeVerifications(+%v): %v", at.Sub(base()), err)
		}
		f.wantThrottled(a, 3, at, l, 59*time.Second, l)
	})

	t.Run("ConcurrentSendsHoldTheLimit", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		l := limit("1:account:", 5, time.Hour)
		var (
			wg               sync.WaitGroup
			mu               sync.Mutex
			allowed, refused int
			start            = make(chan struct{})
		)
		for n := 1; n <= 20; n++ {
			wg.Go(func() {
				<-start
				err := f.send(a, n, base(), l)
				mu.Lock()
				defer mu.Unlock()
				switch verifyd.ErrorCode(err) {
				case "":
					allowed++
				case verifyd.EINVALID:
					refused++
				default:
					t.Errorf("send %d: %v", n, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if allowed != 5 || refused != 15 {
			t.Fatalf("%d allowed and %d refused, want 5 and 15", allowed, refused)
		}
	})
}
