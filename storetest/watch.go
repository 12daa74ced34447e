package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"verifyd"
)

// The watch's numbers: prefixes of a UK range, 10,000 numbers each.
const (
	pumpedPrefix = "44770090" // the range a pumping run hits
	legitPrefix  = "44770091" // first of the ranges real users are in
)

// accountWith stores an account with settings.
func (f *fixture) accountWith(name string, settings verifyd.Settings) *verifyd.Account {
	f.t.Helper()
	a := &verifyd.Account{Name: name, SecretDigest: bytes.Repeat([]byte{0xa5}, 32), Settings: settings, Created: base().Add(-time.Hour)}
	if err := f.s.CreateAccount(f.ctx, a); err != nil {
		f.t.Fatalf("CreateAccount(%q): %v", name, err)
	}
	return a
}

// sent builds the verification of send id of a to digits in region at
// created, Verified a minute later when verified.
func sent(a *verifyd.Account, id int, digits, region string, created time.Time, verified bool) *verifyd.Verification {
	v, _ := pending(a, id, created)
	v.PhoneNumber, v.Country = digits, region
	if verified {
		v.State, v.Verified, v.Updated = verifyd.StateVerified, created.Add(time.Minute), created.Add(time.Minute)
	}
	return v
}

// createAll stores vs (without messages or limits), several at a time, as
// a busy server would.
func (f *fixture) createAll(vs []*verifyd.Verification) {
	f.t.Helper()
	var (
		wg   sync.WaitGroup
		next = make(chan *verifyd.Verification)
	)
	for range 16 {
		wg.Go(func() {
			for v := range next {
				if err := f.s.CreateVerification(f.ctx, v, nil, nil); err != nil {
					f.t.Errorf("CreateVerification(%s): %v", v.ID, err)
				}
			}
		})
	}
	for _, v := range vs {
		next <- v
	}
	close(next)
	wg.Wait()
	if f.t.Failed() {
		f.t.FailNow()
	}
}

// traffic is a run of sends of a from id first on: n to the prefix in
// region, created 100 ms apart from start, the first verified of them
// Verified.
func traffic(a *verifyd.Account, first int, prefix, region string, n, verified int, start time.Time) []*verifyd.Verification {
	out := make([]*verifyd.Verification, n)
	for i := range n {
		out[i] = sent(a, first+i, fmt.Sprintf("%s%04d", prefix, i), region, start.Add(time.Duration(i)*100*time.Millisecond), i < verified)
	}
	return out
}

// tally tallies a's verifications in [since, until) and fails on error.
func (f *fixture) tally(a *verifyd.Account, since, until time.Time, exclude ...string) {
	f.t.Helper()
	if err := f.s.TallyConversions(f.ctx, a.ID, since, until, exclude); err != nil {
		f.t.Fatalf("TallyConversions: %v", err)
	}
}

// wantConversions fails unless a's counts from since are want.
func (f *fixture) wantConversions(a *verifyd.Account, since time.Time, want ...verifyd.Conversion) {
	f.t.Helper()
	got, err := f.s.ListConversions(f.ctx, a.ID, since)
	if err != nil {
		f.t.Fatalf("ListConversions: %v", err)
	}
	if len(got) == 0 && len(want) == 0 {
		return
	}
	wantEqual(f.t, "conversions", got, want)
}

// prefixCount is a Conversion of a prefix.
func prefixCount(prefix, country string, sends, verified int) verifyd.Conversion {
	return verifyd.Conversion{Kind: verifyd.WatchPrefix, Subject: prefix, Country: country, Sends: sends, Verified: verified}
}

func testTally(t *testing.T, newStore NewStore) {
	t.Run("CountsSendsAndVerifiedPerPrefixAndCountryOnce", func(t *testing.T) {
		f := newFixture(t, newStore)
		a, b := f.account("a"), f.account("b")
		start := base()
		vs := append(traffic(a, 1, pumpedPrefix, "GB", 5, 2, start), traffic(a, 100, "33612345", "FR", 3, 1, start)...)
		dead := sent(a, 200, pumpedPrefix+"9000", "GB", start, false)
		dead.State = verifyd.StateNotSent
		test := sent(a, 201, pumpedPrefix+"9001", "GB", start, false)
		early := sent(a, 202, pumpedPrefix+"9002", "GB", start.Add(-2*time.Hour), false)
		late := sent(a, 203, pumpedPrefix+"9003", "GB", start.Add(2*time.Hour), true)
		theirs := sent(b, 204, pumpedPrefix+"9004", "GB", start, false)
		f.createAll(append(vs, dead, test, early, late, theirs))

		since, until := start.Add(-time.Hour), start.Add(time.Hour)
		f.tally(a, since, until, test.PhoneNumber)
		want := []verifyd.Conversion{prefixCount("33612345", "FR", 3, 1), prefixCount(pumpedPrefix, "GB", 5, 2)}
		f.wantConversions(a, since, want...)
		f.tally(a, since, until, test.PhoneNumber)
		f.wantConversions(a, since, want...)
		f.wantConversions(b, since)

		// The next tally takes what came since, and nothing before since.
		f.tally(a, since, start.Add(3*time.Hour), test.PhoneNumber)
		want[1].Sends, want[1].Verified = 6, 3
		f.wantConversions(a, since, want...)
	})

	t.Run("SinceLeavesOlderHoursOut", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("a")
		hour := base().Truncate(time.Hour)
		f.createAll(append(traffic(a, 1, pumpedPrefix, "GB", 3, 0, hour.Add(-time.Second)), traffic(a, 10, pumpedPrefix, "GB", 4, 1, hour.Add(time.Second))...))
		f.tally(a, hour.Add(-time.Hour), hour.Add(time.Hour))
		f.wantConversions(a, hour.Add(-time.Millisecond), prefixCount(pumpedPrefix, "GB", 7, 1))
		f.wantConversions(a, hour, prefixCount(pumpedPrefix, "GB", 4, 1))
		f.wantConversions(a, hour.Add(time.Hour))
	})

	t.Run("ConcurrentTalliesCountEachOnce", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("a")
		// Two hours and a half of sends, so that tallies work in steps.
		var vs []*verifyd.Verification
		for i := range 50 {
			vs = append(vs, sent(a, i, fmt.Sprintf("%s%04d", pumpedPrefix, i), "GB", base().Add(time.Duration(i)*3*time.Minute), i%5 == 0))
		}
		f.createAll(vs)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if err := f.s.TallyConversions(f.ctx, a.ID, base().Add(-time.Hour), base().Add(3*time.Hour), nil); err != nil {
					t.Errorf("TallyConversions: %v", err)
				}
			})
		}
		wg.Wait()
		f.wantConversions(a, base().Add(-time.Hour), prefixCount(pumpedPrefix, "GB", 50, 10))
	})

	t.Run("PurgeDropsCountsOutOfTheWindow", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("a")
		f.createAll(traffic(a, 1, pumpedPrefix, "GB", 3, 1, base()))
		f.tally(a, base().Add(-time.Hour), base().Add(time.Hour))
		f.purge(base().Add(verifyd.WatchWindow), 0)
		f.wantConversions(a, base().Add(-time.Hour), prefixCount(pumpedPrefix, "GB", 3, 1))
		f.purge(base().Add(verifyd.WatchWindow+time.Hour), 0)
		f.wantConversions(a, base().Add(-time.Hour))
	})
}

// pumping stores the traffic of a pumping run at start: 200 sends to one
// prefix with verified of them Verified, beside 100 sends of real users
// spread over ten other prefixes of the country, all Verified, and 60 sends
// to a prefix of another country, none Verified (near the threshold).
func (f *fixture) pumping(a *verifyd.Account, verified int, start time.Time) {
	f.t.Helper()
	vs := traffic(a, 0, pumpedPrefix, "GB", 200, verified, start)
	for p := range 10 {
		vs = append(vs, traffic(a, 1000+10*p, fmt.Sprintf("447700%02d", 91+p), "GB", 10, 10, start)...)
	}
	vs = append(vs, traffic(a, 2000, "33612345", "FR", 60, 0, start)...)
	f.createAll(vs)
}

// watchNow is when the watch runs after a pumping run at base(): once
// every send is final.
func watchNow() time.Time { return base().Add(20*time.Second + verifyd.WatchDelay) }

// runWatch runs the watch at now and fails on error.
func (f *fixture) runWatch(now time.Time) *verifyd.WatchReport {
	f.t.Helper()
	r, err := verifyd.RunWatch(f.ctx, f.s, now)
	if err != nil {
		f.t.Fatalf("RunWatch: %v", err)
	}
	return r
}

// gb is a number of the UK range with these digits.
func gb(digits string) verifyd.Number { return verifyd.Number{Digits: digits, Region: "GB"} }

func testWatch(t *testing.T, newStore NewStore) {
	t.Run("PumpingRunBlocksItsPrefixWhenOn", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.accountWith("shop", verifyd.Settings{Watch: verifyd.WatchOn, WatchCooldown: verifyd.Period(6 * time.Hour)})
		f.pumping(a, 0, base())
		now := watchNow()
		r := f.runWatch(now)
		want := &verifyd.Block{AccountID: a.ID, Kind: verifyd.WatchPrefix, Subject: pumpedPrefix, Country: "GB",
			Started: now, Until: now.Add(6 * time.Hour), Sends: 200, Verified: 0, Mode: verifyd.WatchOn}
		wantEqual(t, "blocks started", normBlocks(r.Started), normBlocks([]*verifyd.Block{want}))
		wantEqual(t, "blocks active", normBlocks(r.Active), normBlocks([]*verifyd.Block{want}))
		var near []verifyd.Conversion
		for _, n := range r.Near {
			near = append(near, n.Conversion)
		}
		wantEqual(t, "near the threshold", near, []verifyd.Conversion{
			{Kind: verifyd.WatchPrefix, Subject: "33612345", Country: "FR", Sends: 60},
			{Kind: verifyd.WatchCountry, Subject: "FR", Country: "FR", Sends: 60},
		})

		limits := verifyd.SendLimits(a, gb(pumpedPrefix+"5555"), "")
		var by verifyd.Limit
		for _, l := range limits {
			if l.Name == verifyd.LimitNameWatchPrefix {
				by = l
			}
		}
		later := now.Add(time.Hour)
		f.wantRefusedTo(a, 5000, 5555, later, by, 5*time.Hour, limits...)
		f.wantRefusedTo(a, 5001, 5555, now.Add(6*time.Hour-time.Second), by, time.Second, limits...)
		f.wantSentTo(a, 5002, 5555, now.Add(6*time.Hour+time.Second), limits...)
		// Another prefix of the same country is not blocked.
		v, _ := pending(a, 5003, later)
		v.PhoneNumber = legitPrefix + "5555"
		if err := f.s.CreateVerification(f.ctx, v, nil, verifyd.SendLimits(a, gb(v.PhoneNumber), "")); err != nil {
			t.Fatalf("a send to another prefix: %v", err)
		}

		// A second run starts nothing new and counts nothing twice.
		again := f.runWatch(now.Add(time.Minute))
		if len(again.Started) != 0 || len(again.Active) != 1 {
			t.Fatalf("second run: started %d, active %d; want 0 and 1", len(again.Started), len(again.Active))
		}
		conv, err := f.s.ListConversions(f.ctx, a.ID, now.Add(-verifyd.WatchWindow))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range conv {
			if c.Subject == pumpedPrefix && c.Sends != 200 {
				t.Fatalf("the pumped prefix counts %d sends after two runs, want 200", c.Sends)
			}
		}
	})

	t.Run("PumpingRunOnlyReportedInMonitorMode", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop") // monitor is the default
		f.pumping(a, 0, base())
		now := watchNow()
		r := f.runWatch(now)
		if len(r.Started) != 1 || r.Started[0].Subject != pumpedPrefix || r.Started[0].Mode != verifyd.WatchMonitor {
			t.Fatalf("started %+v, want the pumped prefix, in monitor mode", normBlocks(r.Started))
		}
		limits := verifyd.SendLimits(a, gb(pumpedPrefix+"5555"), "")
		f.wantSentTo(a, 5000, 5555, now, limits...)

		// Turned on, the watch enforces what it reported.
		if err := a.Settings.Set("watch", "on"); err != nil {
			t.Fatal(err)
		}
		if err := f.s.UpdateAccount(f.ctx, a); err != nil {
			t.Fatal(err)
		}
		limits = verifyd.SendLimits(a, gb(pumpedPrefix+"5556"), "")
		if err := f.sendTo(a, 5001, 5556, now, limits...); verifyd.ErrorCode(err) != verifyd.EINVALID {
			t.Fatalf("a send once the watch is on: %v, want refused", err)
		}
	})

	t.Run("SixtyPercentVerifiedIsNotBlocked", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.accountWith("shop", verifyd.Settings{Watch: verifyd.WatchOn})
		f.pumping(a, 120, base())
		r := f.runWatch(watchNow())
		if len(r.Started) != 0 || len(r.Active) != 0 {
			t.Fatalf("started %+v, want none", normBlocks(r.Started))
		}
	})

	t.Run("WholeCountryBlockedWhenItConvertsTooLittle", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.accountWith("shop", verifyd.Settings{Watch: verifyd.WatchOn, WatchMinSends: 50})
		// 200 unverified sends over 40 prefixes: no prefix reaches 50, the
		// country does.
		var vs []*verifyd.Verification
		for p := range 40 {
			vs = append(vs, traffic(a, 10*p, fmt.Sprintf("447700%02d", 50+p), "GB", 5, 0, base())...)
		}
		f.createAll(vs)
		now := watchNow()
		r := f.runWatch(now)
		if len(r.Started) != 1 || r.Started[0].Kind != verifyd.WatchCountry || r.Started[0].Subject != "GB" || r.Started[0].Sends != 200 {
			t.Fatalf("started %+v, want GB", normBlocks(r.Started))
		}
		limits := verifyd.SendLimits(a, gb(legitPrefix+"5555"), "")
		var by verifyd.Limit
		for _, l := range limits {
			if l.Name == verifyd.LimitNameWatchCountry {
				by = l
			}
		}
		f.wantRefusedTo(a, 5000, 5555, now, by, verifyd.DefaultWatchCooldown, limits...)
		v, _ := pending(a, 5001, now)
		v.PhoneNumber, v.Country = "33612345678", "FR"
		if err := f.s.CreateVerification(f.ctx, v, nil, verifyd.SendLimits(a, verifyd.Number{Digits: v.PhoneNumber, Region: "FR"}, "")); err != nil {
			t.Fatalf("a send to another country: %v", err)
		}
	})

	t.Run("OffCountsNothing", func(t *testing.T) {
		f := newFixture(t, newStore)
		off := f.accountWith("off", verifyd.Settings{Watch: verifyd.WatchOff})
		loadTest := f.accountWith("load", verifyd.Settings{LimitsOff: true})
		f.pumping(off, 0, base())
		f.createAll(traffic(loadTest, 5000, pumpedPrefix, "GB", 200, 0, base()))
		r := f.runWatch(watchNow())
		if len(r.Started) != 0 {
			t.Fatalf("started %+v, want none", normBlocks(r.Started))
		}
		f.wantConversions(off, base().Add(-time.Hour))
		f.wantConversions(loadTest, base().Add(-time.Hour))
	})
}
