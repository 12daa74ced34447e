package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"verifyd"
)

// failuresLimit is the failure-run limit of number n of a: max wrong codes
// in a row, refused for cooldown after the last.
func failuresLimit(a *verifyd.Account, n int, max int, cooldown time.Duration) verifyd.Limit {
	return verifyd.Limit{
		Name:     verifyd.LimitNameFailures,
		Key:      verifyd.FailuresKey(a.ID, number(n)),
		Rate:     verifyd.Rate{Count: max, Per: cooldown},
		Property: "to",
		Kind:     verifyd.LimitFailures,
	}
}

// blockLimit is the LimitBlocked limit of the block on subject of a.
func blockLimit(a *verifyd.Account, kind verifyd.WatchKind, subject string) verifyd.Limit {
	name := verifyd.LimitNameWatchPrefix
	if kind == verifyd.WatchCountry {
		name = verifyd.LimitNameWatchCountry
	}
	return verifyd.Limit{Name: name, Key: verifyd.BlockKey(a.ID, kind, subject), Property: "to", Kind: verifyd.LimitBlocked}
}

// sendTo tries the create of request id to number num of a at now,
// charged to limits.
func (f *fixture) sendTo(a *verifyd.Account, id, num int, now time.Time, limits ...verifyd.Limit) error {
	v, m := pending(a, id, now)
	v.PhoneNumber, m.To = number(num), number(num)
	v.MaxAttempts = 1000 // the runs, not the requests, are under test
	v.ValidUntil, m.Deadline = now.Add(verifyd.MaxValidity), now.Add(verifyd.MaxValidity)
	return f.s.CreateVerification(f.ctx, v, m, limits)
}

// wrongCodes applies n wrong codes to request id at now.
func (f *fixture) wrongCodes(a *verifyd.Account, id, n int, now time.Time) {
	f.t.Helper()
	for range n {
		if _, err := f.s.UpdateVerification(f.ctx, a.ID, requestID(id), func(v *verifyd.Verification) error {
			if _, ok := v.Attempt(now, false); !ok {
				return fmt.Errorf("request %d is finished", id)
			}
			return nil
		}); err != nil {
			f.t.Fatalf("wrong code for request %d: %v", id, err)
		}
	}
}

// rightCode verifies request id at now.
func (f *fixture) rightCode(a *verifyd.Account, id int, now time.Time) {
	f.t.Helper()
	if _, err := f.s.UpdateVerification(f.ctx, a.ID, requestID(id), func(v *verifyd.Verification) error {
		if st, _ := v.Attempt(now, true); st != verifyd.CodeVerified {
			return fmt.Errorf("request %d answered %s", id, st)
		}
		return nil
	}); err != nil {
		f.t.Fatalf("right code for request %d: %v", id, err)
	}
}

// wantSentTo fails unless the create is allowed.
func (f *fixture) wantSentTo(a *verifyd.Account, id, num int, now time.Time, limits ...verifyd.Limit) {
	f.t.Helper()
	if err := f.sendTo(a, id, num, now, limits...); err != nil {
		f.t.Fatalf("send %d to number %d at +%v: %v, want it allowed", id, num, now.Sub(base()), err)
	}
}

// wantRefusedTo fails unless the create is refused with exactly by's
// Throttled error for wait, and nothing of it was written.
func (f *fixture) wantRefusedTo(a *verifyd.Account, id, num int, now time.Time, by verifyd.Limit, wait time.Duration, limits ...verifyd.Limit) {
	f.t.Helper()
	err := f.sendTo(a, id, num, now, limits...)
	var e *verifyd.Error
	if !errors.As(err, &e) {
		f.t.Fatalf("send %d to number %d at +%v: %v, want refused by %s", id, num, now.Sub(base()), err, by.Name)
	}
	wantEqual(f.t, fmt.Sprintf("refusal of send %d at +%v", id, now.Sub(base())), *e, *by.Throttled(wait))
	_, err = f.s.FindVerification(f.ctx, a.ID, requestID(id))
	wantCode(f.t, err, verifyd.ENOTFOUND)
}

func testFailures(t *testing.T, newStore NewStore) {
	t.Run("RefusedAfterMaxWrongCodesUntilTheCooldownEnds", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		l := failuresLimit(a, 1, 3, time.Hour)
		f.wantSentTo(a, 1, 1, base(), l)
		last := base().Add(time.Minute)
		f.wrongCodes(a, 1, 2, base())
		f.wantSentTo(a, 2, 1, base().Add(30*time.Second), l) // a run of 2 is under 3
		f.wrongCodes(a, 2, 1, last)

		f.wantRefusedTo(a, 3, 1, last, l, time.Hour, l)
		f.wantRefusedTo(a, 4, 1, last.Add(time.Hour-time.Second), l, time.Second, l)
		f.wantSentTo(a, 5, 1, last.Add(time.Hour+time.Second), l)
		// That send found the run over: the count starts again.
		f.wrongCodes(a, 5, 2, last.Add(time.Hour+2*time.Second))
		f.wantSentTo(a, 6, 1, last.Add(time.Hour+3*time.Second), l)
		f.wrongCodes(a, 6, 1, last.Add(time.Hour+4*time.Second))
		f.wantRefusedTo(a, 7, 1, last.Add(time.Hour+5*time.Second), l, time.Hour-time.Second, l)
	})

	t.Run("WrongCodeAfterTheCooldownStartsANewRun", func(t *testing.T) {
		// The run's last wrong code is at base(); request 2, created before
		// the cooldown ended, takes a wrong code after it ended. That code
		// starts a new run of 1, not a run of 3 that locks the number out.
		f := newFixture(t, newStore)
		a := f.account("shop")
		l := failuresLimit(a, 1, 3, time.Hour)
		f.wantSentTo(a, 1, 1, base(), l)
		f.wrongCodes(a, 1, 2, base())
		f.wantSentTo(a, 2, 1, base().Add(45*time.Minute), l) // a run of 2, under 3
		f.wrongCodes(a, 2, 1, base().Add(61*time.Minute))    // the run ended at +60m
		f.wantSentTo(a, 3, 1, base().Add(62*time.Minute), l)
		f.wrongCodes(a, 3, 2, base().Add(63*time.Minute)) // 1 + 2: the new run is at its maximum
		f.wantRefusedTo(a, 4, 1, base().Add(64*time.Minute), l, 59*time.Minute, l)
	})
	t.Run("RightCodeEndsTheRun", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		l := failuresLimit(a, 1, 3, time.Hour)
		f.wantSentTo(a, 1, 1, base(), l)
		f.wrongCodes(a, 1, 2, base())
		f.rightCode(a, 1, base())
		f.wantSentTo(a, 2, 1, base(), l)
		f.wrongCodes(a, 2, 2, base())
		f.wantSentTo(a, 3, 1, base(), l) // 2, not 4
		f.wrongCodes(a, 3, 1, base())
		f.wantRefusedTo(a, 4, 1, base(), l, time.Hour, l)
	})

	t.Run("UpdateShowsFnItsNumbersRun", func(t *testing.T) {
		// fn judges whether another guess would pass the limit, so it is
		// given the run as the update's own transaction reads it.
		f := newFixture(t, newStore)
		a, other := f.account("shop"), f.account("other")
		f.wantSentTo(a, 1, 1, base())
		f.wantSentTo(a, 2, 1, base())
		f.wantSentTo(a, 3, 2, base())
		f.wantSentTo(other, 4, 1, base())
		seen := func(acc *verifyd.Account, id int) verifyd.Run {
			t.Helper()
			var run verifyd.Run
			if _, err := f.s.UpdateVerification(f.ctx, acc.ID, requestID(id), func(v *verifyd.Verification) error {
				run = v.Run
				return errors.New("look only")
			}); err == nil {
				t.Fatal("fn's error was not returned")
			}
			return run
		}
		if got := seen(a, 2); got != (verifyd.Run{}) {
			t.Fatalf("before any wrong code fn saw %+v, want no run", got)
		}
		f.wrongCodes(a, 1, 2, base().Add(time.Second))
		f.wrongCodes(a, 1, 1, base().Add(2*time.Second))
		if got, want := seen(a, 2), (verifyd.Run{Failures: 3, Last: base().Add(2 * time.Second)}); !got.Last.Equal(want.Last) || got.Failures != want.Failures {
			t.Fatalf("fn saw %+v, want %+v", got, want)
		}
		if got := seen(a, 3); got != (verifyd.Run{}) {
			t.Fatalf("another number's request saw %+v", got)
		}
		if got := seen(other, 4); got != (verifyd.Run{}) {
			t.Fatalf("another account's request saw %+v", got)
		}
		f.rightCode(a, 1, base().Add(3*time.Second))
		if got := seen(a, 2); got != (verifyd.Run{}) {
			t.Fatalf("after a right code fn saw %+v, want no run", got)
		}
	})

	t.Run("ExpiryAndCancelLeaveTheRunAsItIs", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		l := failuresLimit(a, 1, 2, time.Hour)
		f.wantSentTo(a, 1, 1, base(), l)
		f.wantSentTo(a, 2, 1, base(), l)
		f.wrongCodes(a, 1, 1, base())
		if _, err := f.s.UpdateVerification(f.ctx, a.ID, requestID(2), func(v *verifyd.Verification) error {
			v.Cancel(base())
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		f.wantSentTo(a, 3, 1, base(), l)
		f.wrongCodes(a, 3, 1, base().Add(time.Minute))
		late := base().Add(verifyd.MaxValidity)
		if _, err := f.s.UpdateVerification(f.ctx, a.ID, requestID(1), func(v *verifyd.Verification) error {
			if st, _ := v.Attempt(late, true); st != verifyd.CodeExpired {
				return fmt.Errorf("answered %s, want CodeExpired", st)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		f.wantRefusedTo(a, 4, 1, late, l, time.Hour+time.Minute-verifyd.MaxValidity, l)
	})

	t.Run("RunsArePerNumberAndAccount", func(t *testing.T) {
		f := newFixture(t, newStore)
		a, b := f.account("a"), f.account("b")
		f.wantSentTo(a, 1, 1, base())
		f.wrongCodes(a, 1, 3, base())
		la := failuresLimit(a, 1, 3, time.Hour)
		f.wantRefusedTo(a, 2, 1, base(), la, time.Hour, la)
		f.wantSentTo(a, 3, 2, base(), failuresLimit(a, 2, 3, time.Hour))
		f.wantSentTo(b, 4, 1, base(), failuresLimit(b, 1, 3, time.Hour))
	})

	t.Run("RefusalChargesNoRateAndLongestWaitWins", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		fl := failuresLimit(a, 1, 1, time.Hour)
		rate := limit("1:number:447700900001", 2, 4*time.Hour) // no more than 2 in 4 hours
		f.wantSentTo(a, 1, 1, base(), fl, rate)
		f.wrongCodes(a, 1, 1, base())
		f.wantRefusedTo(a, 2, 1, base(), fl, time.Hour, fl, rate)
		// The rate was charged once: a send without the failures limit
		// still passes, and then the rate's wait is the longer.
		f.wantSentTo(a, 3, 1, base(), rate)
		f.wantRefusedTo(a, 4, 1, base().Add(time.Minute), rate, 4*time.Hour-time.Minute, fl, rate)
	})

	t.Run("ConcurrentWrongCodesCountedExactly", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		for id := 1; id <= 4; id++ {
			f.wantSentTo(a, id, 1, base())
		}
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				if _, err := f.s.UpdateVerification(f.ctx, a.ID, requestID(i%4+1), func(v *verifyd.Verification) error {
					v.Attempt(base(), false)
					return nil
				}); err != nil {
					t.Errorf("wrong code %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		f.wantSentTo(a, 5, 1, base(), failuresLimit(a, 1, 21, time.Hour))
		l := failuresLimit(a, 1, 20, time.Hour)
		f.wantRefusedTo(a, 6, 1, base(), l, time.Hour, l)
	})

	t.Run("ConcurrentSendsInOneGroupSeeTheRun", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		l := failuresLimit(a, 1, 1, time.Hour)
		f.wantSentTo(a, 1, 1, base())
		f.wrongCodes(a, 1, 1, base())
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			refused int
		)
		for id := 2; id <= 11; id++ {
			wg.Go(func() {
				err := f.sendTo(a, id, 1, base().Add(time.Minute), l)
				mu.Lock()
				defer mu.Unlock()
				if verifyd.ErrorCode(err) == verifyd.EINVALID {
					refused++
				} else if err != nil {
					t.Errorf("send %d: %v", id, err)
				}
			})
		}
		wg.Wait()
		if refused != 10 {
			t.Fatalf("%d of 10 sends refused, want all", refused)
		}
	})

	t.Run("PurgeForgetsRunsPastTheirAccountsCooldown", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop") // the default cooldown, a day
		f.wantSentTo(a, 1, 1, base())
		f.wrongCodes(a, 1, 2, base())
		// A limit with a longer cooldown than the account's sees what the
		// purge kept.
		long := failuresLimit(a, 1, 2, 3*verifyd.DefaultFailureCooldown)
		f.purge(base().Add(verifyd.DefaultFailureCooldown-time.Second), 0)
		now := base().Add(verifyd.DefaultFailureCooldown + time.Second)
		f.wantRefusedTo(a, 2, 1, now, long, 3*verifyd.DefaultFailureCooldown-verifyd.DefaultFailureCooldown-time.Second, long)
		f.purge(now, 0)
		f.wantSentTo(a, 3, 1, now, long)
	})
}

func testBlocks(t *testing.T, newStore NewStore) {
	t.Run("BlockRefusesUntilItEnds", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		b := &verifyd.Block{AccountID: a.ID, Kind: verifyd.WatchPrefix, Subject: "44770090", Country: "GB",
			Started: base(), Until: base().Add(time.Hour), Sends: 200, Verified: 3, Mode: verifyd.WatchOn}
		if ok, err := f.s.StartBlock(f.ctx, b); !ok || err != nil {
			t.Fatalf("StartBlock = %v, %v; want true", ok, err)
		}
		l := blockLimit(a, verifyd.WatchPrefix, "44770090")
		other := blockLimit(a, verifyd.WatchPrefix, "44770091")
		country := blockLimit(a, verifyd.WatchCountry, "GB")
		f.wantRefusedTo(a, 1, 1, base(), l, time.Hour, other, l, country)
		f.wantRefusedTo(a, 2, 1, base().Add(time.Hour-time.Second), l, time.Second, l)
		f.wantSentTo(a, 3, 1, base().Add(time.Hour+time.Second), l)
		f.wantSentTo(a, 4, 1, base(), other, country)
	})

	t.Run("StartBlockKeepsTheOneThatLasts", func(t *testing.T) {
		f := newFixture(t, newStore)
		a, other := f.account("a"), f.account("b")
		first := &verifyd.Block{AccountID: a.ID, Kind: verifyd.WatchCountry, Subject: "GB", Country: "GB",
			Started: base(), Until: base().Add(time.Hour), Sends: 100, Verified: 1, Mode: verifyd.WatchMonitor}
		if ok, err := f.s.StartBlock(f.ctx, first); !ok || err != nil {
			t.Fatalf("StartBlock = %v, %v; want true", ok, err)
		}
		again := *first
		again.Started, again.Until, again.Sends = base().Add(time.Hour-time.Millisecond), base().Add(2*time.Hour), 300
		if ok, err := f.s.StartBlock(f.ctx, &again); ok || err != nil {
			t.Fatalf("StartBlock while one lasts = %v, %v; want false", ok, err)
		}
		prefix := &verifyd.Block{AccountID: a.ID, Kind: verifyd.WatchPrefix, Subject: "44770090", Country: "GB",
			Started: base(), Until: base().Add(2 * time.Hour), Sends: 150, Verified: 0, Mode: verifyd.WatchOn}
		theirs := *first
		theirs.AccountID = other.ID
		for _, b := range []*verifyd.Block{prefix, &theirs} {
			if ok, err := f.s.StartBlock(f.ctx, b); !ok || err != nil {
				t.Fatalf("StartBlock(%s) = %v, %v; want true", b.Key(), ok, err)
			}
		}
		got, err := f.s.ListBlocks(f.ctx, base().Add(30*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "blocks", normBlocks(got), normBlocks([]*verifyd.Block{first, prefix, &theirs}))

		later := *first
		later.Started, later.Until, later.Sends = base().Add(time.Hour), base().Add(3*time.Hour), 400
		if ok, err := f.s.StartBlock(f.ctx, &later); !ok || err != nil {
			t.Fatalf("StartBlock once the first ended = %v, %v; want true", ok, err)
		}
		got, err = f.s.ListBlocks(f.ctx, base().Add(2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "blocks after two hours", normBlocks(got), normBlocks([]*verifyd.Block{&later}))
	})

	t.Run("PurgeDropsEndedBlocks", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		b := &verifyd.Block{AccountID: a.ID, Kind: verifyd.WatchPrefix, Subject: "44770090", Country: "GB",
			Started: base(), Until: base().Add(time.Hour), Sends: 200, Mode: verifyd.WatchOn}
		if _, err := f.s.StartBlock(f.ctx, b); err != nil {
			t.Fatal(err)
		}
		l := blockLimit(a, verifyd.WatchPrefix, "44770090")
		f.purge(base().Add(time.Hour-time.Millisecond), 0)
		f.wantRefusedTo(a, 1, 1, base().Add(time.Hour-time.Second), l, time.Second, l)
		f.purge(base().Add(time.Hour), 0)
		// Gone, not just ended: a block started at its old start is new.
		if ok, err := f.s.StartBlock(f.ctx, b); !ok || err != nil {
			t.Fatalf("StartBlock after the purge = %v, %v; want true", ok, err)
		}
	})
}

// normBlocks makes blocks comparable.
func normBlocks(bs []*verifyd.Block) []verifyd.Block {
	out := make([]verifyd.Block, len(bs))
	for i, b := range bs {
		out[i] = *b
		out[i].Started, out[i].Until = normTime(b.Started), normTime(b.Until)
	}
	return out
}
