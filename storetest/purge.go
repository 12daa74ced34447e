package storetest

import (
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
