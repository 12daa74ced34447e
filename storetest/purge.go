package storetest

import (
	"slices"
	"testing"
	"time"

	"verifyd"
)

// purge purges as of now and wants n verifications gone.
func (f *fixture) purge(now time.Time, n int) {
	f.t.Helper()
	got, err := f.s.PurgeVerifications(f.ctx, now)
	if err != nil {
		f.t.Fatalf("PurgeVerifications(+%v): %v", now.Sub(base()), err)
	}
	if got != n {
		f.t.Fatalf("PurgeVerifications(+%v) = %d, want %d", now.Sub(base()), got, n)
	}
}

func testPurge(t *testing.T, newStore NewStore) {
	t.Run("DeletesVerificationsPastTheirAccountsRetention", func(t *testing.T) {
		f := newFixture(t, newStore)
		long := f.account("long") // the default retention, 30 days
		short := &verifyd.Account{Name: "short", Settings: verifyd.Settings{RetentionDays: 1}, Created: base()}
		if err := f.s.CreateAccount(f.ctx, short); err != nil {
			t.Fatalf("CreateAccount: %v", err)
		}
		kept, _ := f.queue(long, 1, base())
		gone, _ := f.queue(short, 2, base())
		day := 24 * time.Hour

		f.purge(base().Add(day-time.Second), 0)
		f.purge(base().Add(day+time.Second), 1)
		_, err := f.s.FindVerification(f.ctx, short.ID, gone.ID)
		wantCode(t, err, verifyd.ENOTFOUND)
		f.find(long.ID, kept.ID)

		f.purge(base().Add(verifyd.DefaultRetention-time.Second), 0)
		f.purge(base().Add(verifyd.DefaultRetention+time.Second), 1)
		_, err = f.s.FindVerification(f.ctx, long.ID, kept.ID)
		wantCode(t, err, verifyd.ENOTFOUND)
	})

	t.Run("KeepsLimitBucketsStillRunning", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		l := limit("1:number:447700900001", 1, time.Hour)
		f.wantSent(a, 1, base(), l)
		f.purge(base().Add(30*time.Minute), 0)
		f.wantThrottled(a, 2, base().Add(30*time.Minute), l, 30*time.Minute, l)
		f.purge(base().Add(2*time.Hour), 0)
		f.wantSent(a, 3, base().Add(2*time.Hour), l)
	})

	t.Run("DropsUnmatchedReceiptsAfterADay", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		f.receipt(verifyd.Receipt{CarrierID: "old", State: verifyd.DeliveryDelivered, At: base()})
		f.receipt(verifyd.Receipt{CarrierID: "young", State: verifyd.DeliveryDelivered, At: base().Add(23 * time.Hour)})
		now := base().Add(24*time.Hour + time.Second)
		f.purge(now, 0)

		_, old := f.queue(a, 1, now)
		_, young := f.queue(a, 2, now)
		f.claim(now, 10)
		f.finish(
			verifyd.MessageResult{RequestID: old.RequestID, State: verifyd.DeliverySubmitted, CarrierIDs: []string{"old"}, At: now},
			verifyd.MessageResult{RequestID: young.RequestID, State: verifyd.DeliverySubmitted, CarrierIDs: []string{"young"}, At: now},
		)
		if d := f.delivery(a.ID, old.RequestID); d.State != verifyd.DeliverySubmitted {
			t.Fatalf("a purged receipt was matched: %s", d.State)
		}
		if d := f.delivery(a.ID, young.RequestID); d.State != verifyd.DeliveryDelivered {
			t.Fatalf("a kept receipt was not matched: %s", d.State)
		}
	})
}

// Rows counts the rows a store keeps, by table, for RunRowLife: every table
// of the store's schema, each under its own name, except that a store that
// keeps early receipts (whose carrier id is not known yet) beside the parts
// they wait for reports those as "orphan_receipts" and the parts alone as
// "message_parts". s is a store newStore returned.
type Rows func(t *testing.T, s verifyd.Store) map[string]int

// lastForever are the tables whose rows live as long as the database:
// accounts (the operator's), one row per account (the watch's tally mark),
// one server key, and the migrations' own bookkeeping.
var lastForever = map[string]bool{
	"accounts":          true,
	"watch_tallies":     true,
	"server_key":        true,
	"schema_migrations": true,
	"sqlite_sequence":   true,
}

// RunRowLife checks that every kind of row a store keeps goes with the
// purge at its bound and not before: a table that nothing ever purges
// grows for as long as the service runs. It fills every table but those of
// lastForever, so a table added later fails here until its purge is
// written and its bound added below.
func RunRowLife(t *testing.T, newStore NewStore, rows Rows) {
	t.Run("EveryRowGoesAtItsBound", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop") // 30 days' retention, a day's failure cooldown
		v, m := pending(a, 1, base())
		f.create(v, m, limit("1:number:"+v.PhoneNumber, 1, time.Hour))
		f.submit(base(), v.ID, "c1", "c2")
		f.receipt(verifyd.Receipt{CarrierID: "c1", State: verifyd.DeliveryDelivered, At: base()})
		f.receipt(verifyd.Receipt{CarrierID: "early", State: verifyd.DeliveryDelivered, At: base()})
		f.wrongCodes(a, 1, 1, base().Add(time.Minute))
		f.tally(a, base().Add(-time.Hour), base().Add(time.Hour))
		b := &verifyd.Block{AccountID: a.ID, Kind: verifyd.WatchPrefix, Subject: "44770090", Country: "GB",
			Started: base(), Until: base().Add(time.Hour), Sends: 200, Mode: verifyd.WatchOn}
		if _, err := f.s.StartBlock(f.ctx, b); err != nil {
			t.Fatal(err)
		}
		r := idempotent(a.ID, "k1", base())
		f.begin(r)
		r.Done, r.Status, r.Response = true, 202, []byte(`{}`)
		if err := f.s.FinishIdempotentRequest(f.ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := f.s.AddInboxMessages(f.ctx, []*verifyd.InboxMessage{inboxMessage(1, number(1), base())}); err != nil {
			t.Fatal(err)
		}

		// When each kind of row goes: the first purge that may drop it.
		day := 24 * time.Hour
		bounds := map[string]time.Time{
			"limit_buckets":       base().Add(time.Hour),              // its tat
			"watch_blocks":        base().Add(time.Hour),              // its end
			"orphan_receipts":     base().Add(day + time.Millisecond), // older than a day
			"idempotent_requests": base().Add(day + time.Millisecond), // older than 24 hours
			"number_failures":     base().Add(time.Minute + verifyd.DefaultFailureCooldown),
			"watch_counts":        base().Truncate(time.Hour).Add(time.Hour + verifyd.WatchWindow),
			"inbox_messages":      base().Add(verifyd.InboxRetention + time.Millisecond),
			"verifications":       base().Add(verifyd.DefaultRetention + time.Millisecond),
			"messages":            base().Add(verifyd.DefaultRetention + time.Millisecond),
			"message_parts":       base().Add(verifyd.DefaultRetention + time.Millisecond),
		}
		full := rows(t, f.s)
		for table, n := range full {
			if lastForever[table] {
				continue
			}
			if _, ok := bounds[table]; !ok {
				t.Errorf("table %s has no bound on its rows' life here: what purges it, and when?", table)
			}
			if n == 0 {
				t.Errorf("table %s is empty before any purge: the test does not fill it", table)
			}
		}
		for table := range bounds {
			if _, ok := full[table]; !ok {
				t.Errorf("table %s is not counted", table)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
		// Purge a millisecond before each bound, then at it.
		var times []time.Time
		for _, at := range bounds {
			times = append(times, at.Add(-time.Millisecond), at)
		}
		slices.SortFunc(times, time.Time.Compare)
		for _, now := range slices.Compact(times) {
			if _, err := f.s.PurgeVerifications(f.ctx, now); err != nil {
				t.Fatalf("PurgeVerifications(+%v): %v", now.Sub(base()), err)
			}
			got := rows(t, f.s)
			for table, bound := range bounds {
				want := full[table]
				if !now.Before(bound) {
					want = 0
				}
				if got[table] != want {
					t.Errorf("after a purge at +%v: %d rows in %s, want %d (they go at +%v)",
						now.Sub(base()), got[table], table, want, bound.Sub(base()))
				}
			}
		}
	})
}
