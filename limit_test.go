package verifyd

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, out string
	}{
		{"5/10m", "5/10m"}, {"10/1d", "10/1d"}, {"100/1h", "100/1h"}, {"60/1m", "60/1m"},
		{"3/90s", "3/1m30s"}, {"7/36h", "7/36h"}, {"off", "off"}, {"2/48h", "2/2d"},
	} {
		r, err := ParseRate(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if got := r.String(); got != tc.out {
			t.Errorf("ParseRate(%q).String() = %q, want %q", tc.in, got, tc.out)
		}
	}
	for _, bad := range []string{"", "5", "x/1m", "0/1m", "5/0s", "5/1x", "-1/1m", "5/500ms", "5/3651d", "5/87601h", "5/200000d"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) took it", bad)
		}
	}
}

func TestLimitTake(t *testing.T) {
	t.Parallel()
	l := Limit{Name: "number", Rate: Rate{Count: 5, Per: 10 * time.Minute}, Property: "to"}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var b Bucket
	for i := range 5 {
		next, _, ok := l.Take(b, now.Add(time.Duration(i)*time.Minute))
		if !ok {
			t.Fatalf("send %d refused", i+1)
		}
		b = next
	}
	// 5 per 10 minutes: the 6th waits until the 1st is 10 minutes old, and
	// the 7th until the 2nd is.
	at := now.Add(5 * time.Minute)
	_, wait, ok := l.Take(b, at)
	if ok || wait != 5*time.Minute {
		t.Fatalf("6th send: ok=%v wait=%v, want refused for 5m", ok, wait)
	}
	if _, _, ok := l.Take(b, at.Add(wait-time.Second)); ok {
		t.Fatal("allowed a second before the wait ended")
	}
	b, _, ok = l.Take(b, at.Add(wait))
	if !ok {
		t.Fatal("refused when the wait ended")
	}
	if _, wait, ok := l.Take(b, at.Add(wait)); ok || wait != time.Minute {
		t.Fatalf("7th send: ok=%v wait=%v, want refused for 1m", ok, wait)
	}
	e := l.Throttled(wait - 300*time.Millisecond)
	if e.RetryAfter != 5*time.Minute || e.Limit != "number" || e.Failures[0].Property != "to" ||
		e.Failures[0].Details != "Too many codes were requested (the number limit is 5/10m); retry after 300 seconds." {
		t.Fatalf("Throttled: %+v", e)
	}
}

// window is the plain model of a rate: every allowed send's time.
type window struct {
	r     Rate
	sends []time.Time
}

// inWindow counts the sends in (now-Per, now].
func (w *window) inWindow(now time.Time) int {
	n := 0
	for _, s := range w.sends {
		if s.Add(w.r.Per).After(now) && !s.After(now) {
			n++
		}
	}
	return n
}

// exactWait is how long a send at now must wait under the model: until the
// oldest send that keeps the window full leaves it.
func (w *window) exactWait(now time.Time) time.Duration {
	var live []time.Time
	for _, s := range w.sends {
		if s.Add(w.r.Per).After(now) {
			live = append(live, s)
		}
	}
	if len(live) < w.r.Count {
		return 0
	}
	return live[len(live)-w.r.Count].Add(w.r.Per).Sub(now)
}

// TestLimitTakeAgainstModel drives Take with random sends, through the
// store's encoding after every one, and holds it to the model: a rate of
// up to exactUpTo is judged exactly; a larger one never lets more than
// Count into a window, and refuses at most one grain longer than the model.
func TestLimitTakeAgainstModel(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for round := range 300 {
		r := Rate{Count: 1 + rng.IntN(8), Per: time.Duration(1+rng.IntN(600)) * time.Second}
		if round%3 == 0 {
			r.Count = exactUpTo - 2 + rng.IntN(200)
		}
		l := Limit{Name: "number", Rate: r}
		m := &window{r: r}
		var b Bucket
		now := start.Add(time.Duration(rng.Int64N(int64(time.Hour))))
		// Sends come at up to twice the rate or at two thirds of it, so that
		// windows are often full and often not.
		step := int64(r.Per / time.Duration(r.Count) * time.Duration(1+2*(round%2)))
		for range 400 {
			now = now.Add(time.Duration(rng.Int64N(step)))
			next, wait, ok := l.Take(b, now)
			exact := m.exactWait(now)
			switch g := r.grain(); {
			case g == 0 && (ok != (exact == 0) || wait != exact):
				t.Fatalf("%v at +%v: ok=%v wait=%v, want wait %v", r, now.Sub(start), ok, wait, exact)
			case g > 0 && !ok && (wait < exact || wait > exact+g):
				t.Fatalf("%v at +%v: wait %v, want %v to %v", r, now.Sub(start), wait, exact, exact+g)
			case !ok:
				wantExactWait(t, l, b, now, wait)
				continue
			}
			m.sends = append(m.sends, now)
			if n := m.inWindow(now); n > r.Count {
				t.Fatalf("%v: %d sends in the window ending at +%v", r, n, now.Sub(start))
			}
			if !next.Until.After(now) {
				t.Fatalf("%v: Until %v is not after the send", r, next.Until)
			}
			if len(next.sends) > exactUpTo+2 {
				t.Fatalf("%v: the bucket keeps %d slots", r, len(next.sends))
			}
			got, err := DecodeBucket(next.Encode(), next.Until)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got.sends, next.sends, func(a, b slot) bool { return a.at.Equal(b.at) && a.n == b.n }) {
				t.Fatalf("%v: decoded %v, encoded %v", r, got.sends, next.sends)
			}
			b = got
		}
	}
}

// TestLimitTakeReadsAnOlderBucket: a bucket written by the GCRA of an older
// verifyd (one timestamp) refuses for as long as that GCRA would have.
func TestLimitTakeReadsAnOlderBucket(t *testing.T) {
	t.Parallel()
	l := Limit{Name: "number", Rate: Rate{Count: 5, Per: 10 * time.Minute}}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Five sends at now left the old GCRA's tat 10 minutes ahead: it let the
	// next one through 2 minutes later.
	b, err := DecodeBucket(nil, now.Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, wait, ok := l.Take(b, now); ok || wait != 2*time.Minute {
		t.Fatalf("ok=%v wait=%v, want refused for 2m", ok, wait)
	}
	next, _, ok := l.Take(b, now.Add(2*time.Minute))
	if !ok {
		t.Fatal("refused after the old bucket's wait")
	}
	if _, wait, ok := l.Take(next, now.Add(2*time.Minute)); ok || wait != 2*time.Minute {
		t.Fatalf("then ok=%v wait=%v, want refused for 2m more", ok, wait)
	}
	if b, err := DecodeBucket(nil, time.Unix(0, 0)); err != nil || len(b.live(l.Rate, now)) != 0 {
		t.Fatalf("a new row (tat 0): %v %v", b, err)
	}
	for _, bad := range [][]byte{{9}, {bucketVersion, 0x80}, {bucketVersion, 2, 0}} {
		if _, err := DecodeBucket(bad, now); err == nil {
			t.Errorf("DecodeBucket(%v) took it", bad)
		}
	}
}

// TestIPLimitKeysIPv6ByItsSlash64: a client holding an IPv6 /64 (what one
// subscriber or host is given) could rotate its address on every send and
// never meet the per-IP limit; the limit counts the /64.
func TestIPLimitKeysIPv6ByItsSlash64(t *testing.T) {
	t.Parallel()
	a := &Account{ID: 7} // the default ip limit, 60 a minute
	n := Number{Digits: "447979080215", Region: "GB"}
	key := func(ip string) string {
		for _, l := range SendLimits(a, n, ip) {
			if l.Name == "ip" {
				return l.Key
			}
		}
		t.Fatalf("no ip limit for %q", ip)
		return ""
	}
	if k1, k2 := key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::2"); k1 != k2 || k1 != "7:ip:2001:db8:1:2::/64" {
		t.Errorf("two addresses of one /64: %q and %q, want both 7:ip:2001:db8:1:2::/64", k1, k2)
	}
	if k1, k2 := key("2001:db8:1:2::1"), key("2001:db8:1:3::1"); k1 == k2 {
		t.Errorf("two /64s share the key %q", k1)
	}
	if k := key("192.0.2.7"); k != "7:ip:192.0.2.7" {
		t.Errorf("IPv4: %q, want 7:ip:192.0.2.7", k)
	}
}

// TestLimitTakeWhenTimeGoesBack: a send judged at a now before the newest
// one the bucket keeps (creates reach the store out of the order of their
// times; two instances' clocks differ) is charged no earlier than that
// newest send, so the bucket stays in order and its Until, which the purge
// goes by, never moves back before a send that still counts.
func TestLimitTakeWhenTimeGoesBack(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, r := range []Rate{{2, 10 * time.Minute}, {100, 10 * time.Minute}, {2, time.Second}} {
		l := Limit{Name: "number", Rate: r}
		first, _, ok := l.Take(Bucket{}, start)
		if !ok {
			t.Fatalf("%v: the first send refused", r)
		}
		b, _, ok := l.Take(first, start.Add(-r.Per/2))
		if !ok {
			t.Fatalf("%v: the second send, half a period back, refused", r)
		}
		for i := 1; i < len(b.sends); i++ {
			if b.sends[i].at.Before(b.sends[i-1].at) {
				t.Fatalf("%v: slots out of order: %v", r, b.sends)
			}
		}
		if b.Until.Before(first.Until) {
			t.Fatalf("%v: Until went back from %v to %v, before the first send leaves the window",
				r, first.Until.Sub(start), b.Until.Sub(start))
		}
		got, err := DecodeBucket(b.Encode(), b.Until)
		if err != nil {
			t.Fatal(err)
		}
		if r.Count != 2 {
			continue
		}
		// Full, however far back the clock is, until the first send leaves,
		// and exactly then.
		for _, now := range []time.Time{start.Add(-20 * r.Per), start.Add(-r.Per), start, start.Add(r.Per - time.Nanosecond)} {
			_, wait, ok := l.Take(got, now)
			if ok || wait <= 0 {
				t.Fatalf("%v at %v: ok=%v wait=%v, want refused", r, now.Sub(start), ok, wait)
			}
			wantExactWait(t, l, got, now, wait)
		}
	}
}

// TestLimitTakeReadsOlderBucketsAgainstTheGCRA: for random rates, a bucket
// an older verifyd wrote refuses as long as its GCRA did (up to exactUpTo
// to a few nanoseconds, above it at most a grain longer), and its wait is
// exact.
func TestLimitTakeReadsOlderBucketsAgainstTheGCRA(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 2000 {
		r := Rate{Count: 1 + rng.IntN(80), Per: time.Duration(1+rng.IntN(864000)) * time.Second}
		if rng.IntN(2) == 0 {
			r.Count = 1 + rng.IntN(3_000_000)
		}
		l := Limit{Name: "country", Rate: r}
		interval := r.Per / time.Duration(r.Count)
		tat := now.Add(time.Duration(rng.Int64N(int64(r.Per + interval))))
		b, err := DecodeBucket(nil, tat)
		if err != nil {
			t.Fatal(err)
		}
		gcraWait := max(0, tat.Add(interval-r.Per).Sub(now))
		live := b.live(r, now)
		for i := 1; i < len(live); i++ {
			if !live[i].at.After(live[i-1].at) {
				t.Fatalf("%v, tat +%v: slots out of order: %v", r, tat.Sub(now), live)
			}
		}
		if len(live) > exactUpTo+2 {
			t.Fatalf("%v, tat +%v: %d slots", r, tat.Sub(now), len(live))
		}
		_, wait, ok := l.Take(b, now)
		if ok != (gcraWait == 0) && (r.grain() == 0 || ok) {
			t.Fatalf("%v, tat +%v: ok=%v, the GCRA waited %v", r, tat.Sub(now), ok, gcraWait)
		}
		if ok {
			continue
		}
		// Per/Count's remainder (under Count ns) is the oldest send's.
		if hi := gcraWait + r.grain() + time.Duration(r.Count); wait < gcraWait || wait > hi {
			t.Fatalf("%v, tat +%v: wait %v, want %v to %v", r, tat.Sub(now), wait, gcraWait, hi)
		}
		wantExactWait(t, l, b, now, wait)
	}
}

// TestLimitTakeReadsAnOlderBucketOfALargeRate: the GCRA timestamp of an
// older verifyd, for a rate over exactUpTo (a country's 50,000 a day), is
// read into the slots of the rate's grain like any send, so the bucket
// written by its next charge stays as small as any other; and it still
// refuses for at least as long as the GCRA did, at most a grain longer.
func TestLimitTakeReadsAnOlderBucketOfALargeRate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, r := range []Rate{{50000, 24 * time.Hour}, {1_000_000, time.Second}, {65, time.Second}, {5, 10 * time.Minute}} {
		l := Limit{Name: "country", Rate: r}
		interval := r.Per / time.Duration(r.Count)
		// Half full: Count/2 sends outstanding.
		b, err := DecodeBucket(nil, now.Add(r.Per/2))
		if err != nil {
			t.Fatal(err)
		}
		next, _, ok := l.Take(b, now)
		if !ok {
			t.Fatalf("%v: refused half full", r)
		}
		if len(next.sends) > exactUpTo+2 {
			t.Fatalf("%v: the bucket keeps %d slots (%d bytes)", r, len(next.sends), len(next.Encode()))
		}
		// The Count/2 it stood for (a grain's more at most) and the new one.
		if lo, hi := (r.Count+1)/2+1, (r.Per/2+r.grain()+interval-1)/interval+1; next.Sends() < lo || next.Sends() > int(hi) {
			t.Fatalf("%v: the bucket keeps %d sends, want %d to %d", r, next.Sends(), lo, hi)
		}
		// Full: the GCRA let the next send through one interval on.
		b, err = DecodeBucket(nil, now.Add(r.Per))
		if err != nil {
			t.Fatal(err)
		}
		_, wait, ok := l.Take(b, now)
		if ok || wait < interval || wait > interval+r.grain() {
			t.Fatalf("%v full: ok=%v wait=%v, want refused for %v to %v", r, ok, wait, interval, interval+r.grain())
		}
		wantExactWait(t, l, b, now, wait)
		// At any time after, it counts no fewer sends than the GCRA had
		// outstanding, and no more than it had a grain before.
		outstanding := func(at time.Time) int {
			if !now.Add(r.Per).After(at) {
				return 0
			}
			return min(r.Count, int((now.Add(r.Per).Sub(at)+interval-1)/interval))
		}
		for at := now; at.Before(now.Add(r.Per + r.grain() + time.Second)); at = at.Add(r.Per/997 + 1) {
			n := 0
			for _, s := range b.live(r, at) {
				n += s.n
			}
			if n < outstanding(at) || n > outstanding(at.Add(-r.grain())) {
				t.Fatalf("%v at +%v: %d sends, want %d to %d", r, at.Sub(now), n, outstanding(at), outstanding(at.Add(-r.grain())))
			}
		}
	}
}

// wantExactWait fails unless a send to b is refused until now+wait and
// allowed from then on, to the nanosecond.
func wantExactWait(t *testing.T, l Limit, b Bucket, now time.Time, wait time.Duration) {
	t.Helper()
	if _, _, ok := l.Take(b, now.Add(wait-time.Nanosecond)); ok {
		t.Fatalf("%v at %v: allowed a nanosecond before its wait of %v ended", l.Rate, now, wait)
	}
	if _, _, ok := l.Take(b, now.Add(wait)); !ok {
		t.Fatalf("%v at %v: refused when its wait of %v ended", l.Rate, now, wait)
	}
}
