package storetest

import (
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"verifyd"
)

// rateLimit is the named rate limit of a for subject (a number, a prefix),
// of count sends per period.
func rateLimit(a *verifyd.Account, name, subject string, count int, per time.Duration) verifyd.Limit {
	return verifyd.Limit{Name: name, Key: verifyd.BucketKey(a.ID, name, subject), Rate: verifyd.Rate{Count: count, Per: per}, Property: "to"}
}

// readBuckets reads the buckets of keys and fails on error.
func (f *fixture) readBuckets(keys ...string) map[string]verifyd.Bucket {
	f.t.Helper()
	got, err := f.s.ReadBuckets(f.ctx, keys)
	if err != nil {
		f.t.Fatalf("ReadBuckets(%q): %v", keys, err)
	}
	return got
}

// wantRun fails unless the run of number n of a is want.
func (f *fixture) wantRun(a *verifyd.Account, n int, want verifyd.Run) {
	f.t.Helper()
	got, err := f.s.ReadRun(f.ctx, a.ID, number(n))
	if err != nil {
		f.t.Fatalf("ReadRun(%s, %s): %v", a.Name, number(n), err)
	}
	got.Last = normTime(got.Last)
	wantEqual(f.t, "run of "+a.Name+" "+number(n), got, want)
}

// wantCounted fails unless the bucket of l among buckets counts want sends
// at now; an absent bucket counts none.
func wantCounted(t *testing.T, buckets map[string]verifyd.Bucket, l verifyd.Limit, now time.Time, want int) {
	t.Helper()
	if got := l.Counted(buckets[l.Key], now); got != want {
		t.Fatalf("bucket %s counts %d sends at +%v, want %d", l.Key, got, now.Sub(base()), want)
	}
}

func testResetNumber(t *testing.T, newStore NewStore) {
	t.Run("ReadBucketsAsTheNextCreateJudgesThem", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		own := rateLimit(a, "number", number(1), 3, time.Minute)
		shared := rateLimit(a, "prefix", verifyd.Prefix(number(1)), 10, time.Hour)
		if got := f.readBuckets(own.Key); len(got) != 0 {
			t.Fatalf("ReadBuckets before any send = %v, want none", got)
		}
		for n := 1; n <= 3; n++ {
			f.wantSentTo(a, n, 1, base().Add(time.Duration(n-1)*10*time.Second), own, shared)
		}
		at := base().Add(30 * time.Second)
		got := f.readBuckets(own.Key, shared.Key, verifyd.BucketKey(a.ID, "number", number(2)))
		if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, []string{own.Key, shared.Key}) {
			t.Fatalf("ReadBuckets returned %q, want the two charged buckets", keys)
		}
		wantCounted(t, got, own, at, 3)
		wantCounted(t, got, shared, at, 3)
		// Take on what was read says what the create says.
		if _, wait, ok := own.Take(got[own.Key], at); ok || wait != 30*time.Second {
			t.Fatalf("Take on the read bucket at +30s: wait %v, ok %v; want refused for 30s", wait, ok)
		}
		f.wantRefusedTo(a, 4, 1, at, own, 30*time.Second, own, shared)
		// Not yet purged, the bucket is read with the send that left its
		// window, which no longer counts.
		at = base().Add(61 * time.Second)
		wantCounted(t, f.readBuckets(own.Key), own, at, 2)
	})

	t.Run("ReadRunFollowsWrongAndRightCodes", func(t *testing.T) {
		f := newFixture(t, newStore)
		a, b := f.account("shop"), f.account("other")
		f.wantRun(a, 1, verifyd.Run{})
		f.wantSentTo(a, 1, 1, base())
		f.wrongCodes(a, 1, 2, base().Add(time.Minute))
		f.wantRun(a, 1, verifyd.Run{Failures: 2, Last: base().Add(time.Minute)})
		f.wantRun(a, 2, verifyd.Run{})
		f.wantRun(b, 1, verifyd.Run{})
		f.rightCode(a, 1, base().Add(2*time.Minute))
		f.wantRun(a, 1, verifyd.Run{})
	})

	t.Run("ResetNumberClearsOnlyTheNumbersOwn", func(t *testing.T) {
		f := newFixture(t, newStore)
		a, b := f.account("shop"), f.account("other")
		own := rateLimit(a, "number", number(1), 2, time.Hour)
		daily := rateLimit(a, "numberDaily", number(1), 10, 24*time.Hour)
		prefix := rateLimit(a, "prefix", verifyd.Prefix(number(1)), 10, time.Hour)
		neighbour := rateLimit(a, "number", number(2), 2, time.Hour)
		theirs := rateLimit(b, "number", number(1), 2, time.Hour)
		runs := failuresLimit(a, 1, 2, time.Hour)
		f.wantSentTo(a, 1, 1, base(), own, daily, prefix, runs)
		f.wantSentTo(a, 2, 1, base(), own, daily, prefix, runs)
		f.wantSentTo(a, 3, 2, base(), neighbour, prefix)
		f.wantSentTo(b, 4, 1, base(), theirs)
		f.wrongCodes(a, 1, 2, base().Add(time.Minute))
		f.wrongCodes(a, 3, 1, base().Add(time.Minute))
		f.wrongCodes(b, 4, 1, base().Add(time.Minute))
		at := base().Add(2 * time.Minute)
		f.wantRefusedTo(a, 5, 1, at, runs, 59*time.Minute, own, daily, prefix, runs)

		deleted, run, err := f.s.ResetNumber(f.ctx, a.ID, number(1), []string{own.Key, daily.Key})
		if err != nil {
			t.Fatalf("ResetNumber: %v", err)
		}
		if keys := slices.Sorted(maps.Keys(deleted)); !slices.Equal(keys, []string{own.Key, daily.Key}) {
			t.Fatalf("ResetNumber deleted %q, want the number's own two buckets", keys)
		}
		wantCounted(t, deleted, own, at, 2)
		wantCounted(t, deleted, daily, at, 2)
		run.Last = normTime(run.Last)
		wantEqual(t, "the run ResetNumber deleted", run, verifyd.Run{Failures: 2, Last: base().Add(time.Minute)})

		// What other numbers and accounts share, or own, is as it was.
		left := f.readBuckets(own.Key, daily.Key, prefix.Key, neighbour.Key, theirs.Key)
		if keys := slices.Sorted(maps.Keys(left)); !slices.Equal(keys, slices.Sorted(slices.Values([]string{prefix.Key, neighbour.Key, theirs.Key}))) {
			t.Fatalf("buckets left: %q, want the prefix's, the neighbour's and the other account's", keys)
		}
		wantCounted(t, left, prefix, at, 3)
		wantCounted(t, left, neighbour, at, 1)
		wantCounted(t, left, theirs, at, 1)
		f.wantRun(a, 1, verifyd.Run{})
		f.wantRun(a, 2, verifyd.Run{Failures: 1, Last: base().Add(time.Minute)})
		f.wantRun(b, 1, verifyd.Run{Failures: 1, Last: base().Add(time.Minute)})

		// The next creates count from nothing: two pass, as after no send.
		f.wantSentTo(a, 6, 1, at, own, daily, prefix, runs)
		f.wantSentTo(a, 7, 1, at, own, daily, prefix, runs)
		f.wantRefusedTo(a, 8, 1, at, own, time.Hour, own, daily, prefix, runs)
		wantCounted(t, f.readBuckets(prefix.Key), prefix, at, 5)

		// Nothing left to delete is no error.
		if _, _, err := f.s.ResetNumber(f.ctx, a.ID, number(1), []string{own.Key, daily.Key}); err != nil {
			t.Fatalf("ResetNumber again: %v", err)
		}
		deleted, run, err = f.s.ResetNumber(f.ctx, a.ID, number(3), []string{rateLimit(a, "number", number(3), 1, time.Hour).Key})
		if err != nil || len(deleted) != 0 || run != (verifyd.Run{}) {
			t.Fatalf("ResetNumber of a number never sent to: %v, %v, %v; want nothing deleted", deleted, run, err)
		}
		if _, _, err := f.s.ResetNumber(f.ctx, a.ID, number(3), nil); err != nil {
			t.Fatalf("ResetNumber without keys: %v", err)
		}
	})

	t.Run("ResetsDuringSendsFailNothing", func(t *testing.T) {
		// A reset deletes buckets that concurrent creates lock and charge:
		// neither may fail (a deadlock, a lost bucket), and the shared
		// bucket keeps every send.
		f := newFixture(t, newStore)
		a := f.account("shop")
		own := rateLimit(a, "number", number(1), 1000, time.Hour)
		daily := rateLimit(a, "numberDaily", number(1), 1000, 24*time.Hour)
		prefix := rateLimit(a, "prefix", verifyd.Prefix(number(1)), 1000, time.Hour)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for n := 1; n <= 30; n++ {
			wg.Go(func() {
				<-start
				if err := f.sendTo(a, n, 1, base(), own, daily, prefix); err != nil {
					t.Errorf("send %d: %v", n, err)
				}
			})
		}
		for range 5 {
			wg.Go(func() {
				<-start
				if _, _, err := f.s.ResetNumber(f.ctx, a.ID, number(1), []string{own.Key, daily.Key}); err != nil {
					t.Errorf("ResetNumber: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		got := f.readBuckets(own.Key, prefix.Key)
		wantCounted(t, got, prefix, base(), 30)
		if n := own.Counted(got[own.Key], base()); n > 30 {
			t.Fatalf("the number's bucket counts %d sends of 30", n)
		}
	})
}
