package storetest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"verifyd"
)

func testClaimMessages(t *testing.T, newStore NewStore) {
	t.Run("LeasesDueMessageCountingAnAttempt", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		got := f.claimOne(base(), m.RequestID)
		want := normMessage(*m)
		want.Attempts = 1
		wantEqual(t, "claimed message", normMessage(*got), want)
		if d := f.delivery(a.ID, m.RequestID); d.State != verifyd.DeliveryQueued {
			t.Fatalf("a leased message shows %s, want Queued", d.State)
		}
	})

	t.Run("NotClaimedAgainWhileLeaseHolds", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.claimOne(base(), m.RequestID)
		if ms := f.claim(base().Add(lease-time.Millisecond), 10); len(ms) != 0 {
			t.Fatalf("claimed %v while the lease held", ids(ms))
		}
	})

	t.Run("ReclaimedOnceLeasePassed", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.claimOne(base(), m.RequestID)
		if got := f.claimOne(base().Add(lease+time.Second), m.RequestID); got.Attempts != 2 {
			t.Fatalf("attempts %d after the second claim, want 2", got.Attempts)
		}
	})

	t.Run("NotClaimedBeforeNextAttempt", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		v, m := pending(a, 1, base())
		m.NextAttempt = base().Add(time.Minute)
		f.create(v, m)
		if ms := f.claim(m.NextAttempt.Add(-time.Millisecond), 10); len(ms) != 0 {
			t.Fatalf("claimed %v before NextAttempt", ids(ms))
		}
		f.claimOne(m.NextAttempt, m.RequestID)
	})

	t.Run("ClaimsAtMostMax", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		for n := 1; n <= 5; n++ {
			f.queue(a, n, base())
		}
		seen := map[string]bool{}
		for _, want := range []int{2, 2, 1, 0} {
			ms := f.claim(base(), 2)
			if len(ms) != want {
				t.Fatalf("claimed %v, want %d", ids(ms), want)
			}
			for _, m := range ms {
				if seen[m.RequestID] {
					t.Fatalf("%s claimed twice", m.RequestID)
				}
				seen[m.RequestID] = true
			}
		}
	})

	t.Run("PastDeadlineExpiresInsteadOfClaimed", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, late := f.queue(a, 1, base())
		_, onTime := f.queue(a, 2, base().Add(time.Minute))
		now := late.Deadline // a code no longer valid is not worth sending
		f.claimOne(now, onTime.RequestID)
		if d := f.delivery(a.ID, late.RequestID); d.State != verifyd.DeliveryExpired || !d.Updated.Equal(now) {
			t.Fatalf("delivery %+v, want Expired at the claim", d)
		}
		if ms := f.claim(now.Add(time.Hour), 10); len(ms) != 0 {
			t.Fatalf("claimed %v after they expired", ids(ms))
		}
	})

	t.Run("LeaseRunningOutPastDeadlineExpires", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.claimOne(m.Deadline.Add(-time.Second), m.RequestID)
		if ms := f.claim(m.Deadline.Add(lease), 10); len(ms) != 0 {
			t.Fatalf("claimed %v past the deadline", ids(ms))
		}
		if d := f.delivery(a.ID, m.RequestID); d.State != verifyd.DeliveryExpired {
			t.Fatalf("delivery %s, want Expired", d.State)
		}
	})

	t.Run("ConcurrentClaimersClaimEachMessageOnce", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		const messages = 120
		for n := 1; n <= messages; n++ {
			f.queue(a, n, base())
		}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			counts  = map[string]int{}
			claimed int
			start   = make(chan struct{})
		)
		for range 8 {
			wg.Go(func() {
				<-start
				for {
					ms, err := f.s.ClaimMessages(f.ctx, base(), lease, 7)
					if err != nil {
						t.Errorf("ClaimMessages: %v", err)
						return
					}
					mu.Lock()
					for _, m := range ms {
						counts[m.RequestID]++
					}
					claimed += len(ms)
					done := len(ms) == 0 || claimed > messages // more than there are: some twice
					mu.Unlock()
					if done {
						return
					}
				}
			})
		}
		close(start)
		wg.Wait()
		if len(counts) != messages {
			t.Fatalf("%d distinct messages claimed, want %d", len(counts), messages)
		}
		for id, n := range counts {
			if n != 1 {
				t.Fatalf("%s claimed %d times", id, n)
			}
		}
	})
}

func testFinishMessages(t *testing.T, newStore NewStore) {
	t.Run("QueuedIsRetriedAtNextAttempt", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.claimOne(base(), m.RequestID)
		retry := base().Add(30 * time.Second)
		f.finish(verifyd.MessageResult{RequestID: m.RequestID, State: verifyd.DeliveryQueued, Error: "ESME_RMSGQFUL",
			NextAttempt: retry, At: base().Add(time.Second)})
		if ms := f.claim(retry.Add(-time.Millisecond), 10); len(ms) != 0 {
			t.Fatalf("claimed %v before the retry time", ids(ms))
		}
		got := f.claimOne(retry, m.RequestID)
		if got.Attempts != 2 || string(got.Sealed) != string(m.Sealed) {
			t.Fatalf("retry has %d attempts and text %q, want 2 and the same text", got.Attempts, got.Sealed)
		}
		if d := f.delivery(a.ID, m.RequestID); d.State != verifyd.DeliveryQueued {
			t.Fatalf("delivery %s, want Queued", d.State)
		}
	})

	t.Run("QueuedReleasesTheLease", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.claimOne(base(), m.RequestID)
		retry := base().Add(time.Second) // well inside the ten-second lease
		f.finish(verifyd.MessageResult{RequestID: m.RequestID, State: verifyd.DeliveryQueued, Error: "throttled",
			NextAttempt: retry, At: retry})
		f.claimOne(retry, m.RequestID)
	})

	t.Run("SubmittedRecordsFirstCarrierIDAndIsNotClaimedAgain", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.claimOne(base(), m.RequestID)
		at := base().Add(time.Second)
		f.finish(verifyd.MessageResult{RequestID: m.RequestID, State: verifyd.DeliverySubmitted,
			CarrierIDs: []string{"part1", "part2"}, At: at})
		wantEqual(t, "delivery", f.delivery(a.ID, m.RequestID),
			verifyd.Delivery{State: verifyd.DeliverySubmitted, CarrierID: "part1", Updated: at})
		if ms := f.claim(base().Add(time.Minute), 10); len(ms) != 0 {
			t.Fatalf("claimed %v after submit", ids(ms))
		}
	})

	t.Run("DeliveredIsFinalWithItsParts", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, one := f.queue(a, 1, base())
		_, two := f.queue(a, 2, base())
		_, sent := f.queue(a, 3, base())
		f.claim(base(), 10)
		at := base().Add(time.Second)
		// Alone, and in a batch with a submitted message (which one worker
		// never sends, having one sender, but a store takes).
		f.finish(verifyd.MessageResult{RequestID: one.RequestID, State: verifyd.DeliveryDelivered,
			CarrierIDs: []string{"inbox-1"}, At: at})
		f.finish(
			verifyd.MessageResult{RequestID: two.RequestID, State: verifyd.DeliveryDelivered,
				CarrierIDs: []string{"inbox-2", "inbox-3"}, At: at},
			verifyd.MessageResult{RequestID: sent.RequestID, State: verifyd.DeliverySubmitted,
				CarrierIDs: []string{"c1"}, At: at},
		)
		wantEqual(t, "submitted delivery", f.delivery(a.ID, sent.RequestID),
			verifyd.Delivery{State: verifyd.DeliverySubmitted, CarrierID: "c1", Updated: at})
		wantEqual(t, "delivery", f.delivery(a.ID, one.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryDelivered, CarrierID: "inbox-1", Updated: at})
		wantEqual(t, "two-part delivery", f.delivery(a.ID, two.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryDelivered, CarrierID: "inbox-2", Updated: at})
		// Its parts are final: a later receipt changes nothing.
		f.receipt(verifyd.Receipt{CarrierID: "inbox-3", State: verifyd.DeliveryUndeliverable, Error: "late",
			At: at.Add(time.Second)})
		wantEqual(t, "delivery after a late receipt", f.delivery(a.ID, two.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryDelivered, CarrierID: "inbox-2", Updated: at})
		if ms := f.claim(base().Add(time.Minute), 10); len(ms) != 0 {
			t.Fatalf("claimed %v after delivery", ids(ms))
		}
	})

	t.Run("DeliveredAfterARetryInOneBatch", func(t *testing.T) {
		// A request id twice in a batch, in the order the worker gave them:
		// a store may have to record such a batch one result at a time.
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.claimOne(base(), m.RequestID)
		at := base().Add(time.Second)
		f.finish(
			verifyd.MessageResult{RequestID: m.RequestID, State: verifyd.DeliveryQueued, Error: "throttled",
				NextAttempt: at, At: at},
			verifyd.MessageResult{RequestID: m.RequestID, State: verifyd.DeliveryDelivered,
				CarrierIDs: []string{"inbox-1"}, At: at},
		)
		wantEqual(t, "delivery", f.delivery(a.ID, m.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryDelivered, CarrierID: "inbox-1", Updated: at})
	})

	t.Run("FailedAndExpiredAreFinal", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, failed := f.queue(a, 1, base())
		_, expired := f.queue(a, 2, base())
		f.claim(base(), 10)
		at := base().Add(time.Second)
		f.finish(
			verifyd.MessageResult{RequestID: failed.RequestID, State: verifyd.DeliveryFailed, Error: "ESME_RINVDSTADR", At: at},
			verifyd.MessageResult{RequestID: expired.RequestID, State: verifyd.DeliveryExpired, Error: "deadline", At: at},
		)
		wantEqual(t, "failed delivery", f.delivery(a.ID, failed.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryFailed, Error: "ESME_RINVDSTADR", Updated: at})
		wantEqual(t, "expired delivery", f.delivery(a.ID, expired.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryExpired, Error: "deadline", Updated: at})
		if ms := f.claim(base().Add(time.Minute), 10); len(ms) != 0 {
			t.Fatalf("claimed %v after they finished", ids(ms))
		}
	})

	t.Run("EmptyResultsAreANoOp", func(t *testing.T) {
		f := newFixture(t, newStore)
		f.finish()
	})

	// A worker's result can come after its lease ran out and another claim
	// took the message: it is recorded only for the claim that made it
	// (MessageResult.Attempt), so that a stale retry cannot release the
	// newer lease and hand the message to a third claim mid-send.
	t.Run("StaleResultLeavesTheNewerClaimAlone", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		first := f.claimOne(base(), m.RequestID)
		t1 := base().Add(lease + time.Second)
		second := f.claimOne(t1, m.RequestID)
		f.finish(verifyd.MessageResult{RequestID: m.RequestID, State: verifyd.DeliveryQueued, Error: "timeout",
			NextAttempt: t1.Add(time.Second), At: t1, Attempt: first.Attempts})
		if ms := f.claim(t1.Add(2*time.Second), 10); len(ms) != 0 {
			t.Fatalf("claimed %v while the second claim's lease holds", ids(ms))
		}
		f.finish(verifyd.MessageResult{RequestID: m.RequestID, State: verifyd.DeliverySubmitted,
			CarrierIDs: []string{"c1"}, At: t1.Add(time.Second), Attempt: first.Attempts})
		if d := f.delivery(a.ID, m.RequestID); d.State != verifyd.DeliveryQueued {
			t.Fatalf("a stale Submitted was recorded: %+v", d)
		}
		f.finish(verifyd.MessageResult{RequestID: m.RequestID, State: verifyd.DeliverySubmitted,
			CarrierIDs: []string{"c2"}, At: t1.Add(2 * time.Second), Attempt: second.Attempts})
		wantEqual(t, "delivery", f.delivery(a.ID, m.RequestID),
			verifyd.Delivery{State: verifyd.DeliverySubmitted, CarrierID: "c2", Updated: t1.Add(2 * time.Second)})
	})

	// Carriers reuse ids; two messages of one batch with the same id must
	// both be recorded (the later one owning the id), never one left leased
	// to be sent again.
	t.Run("SameCarrierIDForTwoMessagesOfOneBatch", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m1 := f.queue(a, 1, base())
		_, m2 := f.queue(a, 2, base())
		f.claim(base(), 10)
		at := base().Add(time.Second)
		f.finish(verifyd.MessageResult{RequestID: m1.RequestID, State: verifyd.DeliverySubmitted, CarrierIDs: []string{"x"}, At: at},
			verifyd.MessageResult{RequestID: m2.RequestID, State: verifyd.DeliverySubmitted, CarrierIDs: []string{"x"}, At: at})
		for _, id := range []string{m1.RequestID, m2.RequestID} {
			if d := f.delivery(a.ID, id); d.State != verifyd.DeliverySubmitted {
				t.Errorf("%s: delivery %+v, want Submitted", id, d)
			}
		}
		if ms := f.claim(base().Add(time.Hour), 10); len(ms) != 0 {
			t.Fatalf("claimed again after the submit: %v", ids(ms))
		}
	})
}

func testReceipts(t *testing.T, newStore NewStore) {
	t.Run("Provisional", func(t *testing.T) { testProvisionalReceipts(t, newStore) })
	t.Run("ProvisionalOrders", func(t *testing.T) { testProvisionalOrders(t, newStore) })

	t.Run("DeliveredReceiptIsMatched", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.submit(base(), m.RequestID, "c1")
		at := base().Add(5 * time.Second)
		f.receipt(verifyd.Receipt{CarrierID: "c1", State: verifyd.DeliveryDelivered, At: at})
		wantEqual(t, "delivery", f.delivery(a.ID, m.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryDelivered, CarrierID: "c1", Updated: at})
	})

	t.Run("FailureReceiptCarriesItsError", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.submit(base(), m.RequestID, "c1")
		at := base().Add(5 * time.Second)
		f.receipt(verifyd.Receipt{CarrierID: "c1", State: verifyd.DeliveryUndeliverable, Error: "UNDELIV", At: at})
		wantEqual(t, "delivery", f.delivery(a.ID, m.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryUndeliverable, CarrierID: "c1", Error: "UNDELIV", Updated: at})
	})

	t.Run("SameReceiptTwiceChangesNothing", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.submit(base(), m.RequestID, "c1")
		r := verifyd.Receipt{CarrierID: "c1", State: verifyd.DeliveryDelivered, At: base().Add(5 * time.Second)}
		f.receipt(r)
		first := f.delivery(a.ID, m.RequestID)
		f.receipt(r)
		wantEqual(t, "delivery after the repeat", f.delivery(a.ID, m.RequestID), first)
	})

	t.Run("ReceiptBeforeSubmitIsMatchedWhenIDIsRecorded", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.claimOne(base(), m.RequestID)
		at := base().Add(time.Second)
		f.receipt(verifyd.Receipt{CarrierID: "early", State: verifyd.DeliveryDelivered, At: at})
		f.receipt(verifyd.Receipt{CarrierID: "early", State: verifyd.DeliveryDelivered, At: at})
		f.finish(verifyd.MessageResult{RequestID: m.RequestID, State: verifyd.DeliverySubmitted,
			CarrierIDs: []string{"early"}, At: at.Add(time.Second)})
		if d := f.delivery(a.ID, m.RequestID); d.State != verifyd.DeliveryDelivered || d.CarrierID != "early" {
			t.Fatalf("delivery %+v, want Delivered with carrier id early", d)
		}
	})

	t.Run("ReceiptForUnknownIDIsAccepted", func(t *testing.T) {
		f := newFixture(t, newStore)
		f.receipt(verifyd.Receipt{CarrierID: "never-seen", State: verifyd.DeliveryDelivered, At: base()})
	})

	t.Run("MultipartDeliveredOnceEveryPartIs", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.submit(base(), m.RequestID, "p1", "p2")
		f.receipt(verifyd.Receipt{CarrierID: "p2", State: verifyd.DeliveryDelivered, At: base().Add(time.Second)})
		if d := f.delivery(a.ID, m.RequestID); d.State != verifyd.DeliverySubmitted {
			t.Fatalf("delivery %s with one part of two delivered, want Submitted", d.State)
		}
		at := base().Add(2 * time.Second)
		f.receipt(verifyd.Receipt{CarrierID: "p1", State: verifyd.DeliveryDelivered, At: at})
		wantEqual(t, "delivery", f.delivery(a.ID, m.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryDelivered, CarrierID: "p1", Updated: at})
	})

	t.Run("MultipartFailsWithAnyPart", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.submit(base(), m.RequestID, "p1", "p2")
		at := base().Add(time.Second)
		f.receipt(verifyd.Receipt{CarrierID: "p2", State: verifyd.DeliveryUndeliverable, Error: "UNDELIV", At: at})
		f.receipt(verifyd.Receipt{CarrierID: "p1", State: verifyd.DeliveryDelivered, At: at.Add(time.Second)})
		wantEqual(t, "delivery", f.delivery(a.ID, m.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryUndeliverable, CarrierID: "p1", Error: "UNDELIV", Updated: at})
	})

	t.Run("IntermediateReceiptChangesNothing", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.submit(base(), m.RequestID, "c1")
		before := f.delivery(a.ID, m.RequestID)
		f.receipt(verifyd.Receipt{CarrierID: "c1", State: verifyd.DeliverySubmitted, At: base().Add(time.Second)})
		wantEqual(t, "delivery", f.delivery(a.ID, m.RequestID), before)
	})

	// Receipts that came before their submit was recorded count in the
	// order they came, as they would have after it: the first failure in
	// time fails the message (whether the submit is the batch's only result
	// for it or follows a retry), and the last delivery in time settles it.
	for _, tc := range []struct {
		name  string
		retry bool
	}{
		{"EarlyFailuresOfTwoPartsFirstInTimeCounts", false},
		{"EarlyFailuresOfTwoPartsFirstInTimeCountsAfterARetryInOneBatch", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, newStore)
			a := f.account("shop")
			_, m := f.queue(a, 1, base())
			f.claimOne(base(), m.RequestID)
			at := base().Add(time.Second)
			f.receipt(verifyd.Receipt{CarrierID: "p1", State: verifyd.DeliveryExpired, Error: "EXPIRED", At: at.Add(time.Second)})
			f.receipt(verifyd.Receipt{CarrierID: "p2", State: verifyd.DeliveryUndeliverable, Error: "UNDELIV", At: at})
			var results []verifyd.MessageResult
			if tc.retry {
				results = append(results, verifyd.MessageResult{RequestID: m.RequestID, State: verifyd.DeliveryQueued,
					Error: "throttled", NextAttempt: at, At: at})
			}
			f.finish(append(results, verifyd.MessageResult{RequestID: m.RequestID, State: verifyd.DeliverySubmitted,
				CarrierIDs: []string{"p1", "p2"}, At: at.Add(3 * time.Second)})...)
			wantEqual(t, "delivery", f.delivery(a.ID, m.RequestID),
				verifyd.Delivery{State: verifyd.DeliveryUndeliverable, CarrierID: "p1", Error: "UNDELIV", Updated: at})
		})
	}
	t.Run("EarlyDeliveredPartsOutOfOrderSettleAtTheLast", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.claimOne(base(), m.RequestID)
		at := base().Add(time.Second)
		f.receipt(verifyd.Receipt{CarrierID: "p1", State: verifyd.DeliveryDelivered, At: at.Add(time.Second)})
		f.receipt(verifyd.Receipt{CarrierID: "p2", State: verifyd.DeliveryDelivered, At: at})
		f.finish(verifyd.MessageResult{RequestID: m.RequestID, State: verifyd.DeliverySubmitted,
			CarrierIDs: []string{"p1", "p2"}, At: at.Add(3 * time.Second)})
		wantEqual(t, "delivery", f.delivery(a.ID, m.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryDelivered, CarrierID: "p1", Updated: at.Add(time.Second)})
	})
}

// testProvisionalReceipts holds the stores to SMPP's UNKNOWN (a
// provisional failure, verifyd.Receipt.Provisional): it fails the part and
// its message at once, but the part's next final receipt replaces it, and
// the message is worked out again from its parts. A definitive receipt is
// never replaced, and a second provisional one changes nothing.
func testProvisionalReceipts(t *testing.T, newStore NewStore) {
	unknown := func(id string, at time.Time) verifyd.Receipt {
		return verifyd.Receipt{CarrierID: id, State: verifyd.DeliveryFailed, Error: "UNKNOWN", At: at, Provisional: true}
	}
	delivered := func(id string, at time.Time) verifyd.Receipt {
		return verifyd.Receipt{CarrierID: id, State: verifyd.DeliveryDelivered, At: at}
	}
	undeliverable := func(id string, at time.Time) verifyd.Receipt {
		return verifyd.Receipt{CarrierID: id, State: verifyd.DeliveryUndeliverable, Error: "UNDELIV", At: at}
	}
	at := func(s int) time.Time { return base().Add(time.Duration(s) * time.Second) }

	t.Run("UnknownThenDeliveredIsDelivered", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.submit(base(), m.RequestID, "c1")
		f.receipt(unknown("c1", at(1)))
		wantEqual(t, "delivery after UNKNOWN", f.delivery(a.ID, m.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryFailed, CarrierID: "c1", Error: "UNKNOWN", Updated: at(1)})
		f.receipt(delivered("c1", at(2)))
		wantEqual(t, "delivery after DELIVRD", f.delivery(a.ID, m.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryDelivered, CarrierID: "c1", Updated: at(2)})
	})

	t.Run("UnknownThenUndeliverableIsUndeliverableForGood", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.submit(base(), m.RequestID, "c1")
		f.receipt(unknown("c1", at(1)))
		f.receipt(undeliverable("c1", at(2)))
		want := verifyd.Delivery{State: verifyd.DeliveryUndeliverable, CarrierID: "c1", Error: "UNDELIV", Updated: at(2)}
		wantEqual(t, "delivery after UNDELIV", f.delivery(a.ID, m.RequestID), want)
		f.receipt(delivered("c1", at(3))) // the definitive one stands
		wantEqual(t, "delivery after a late DELIVRD", f.delivery(a.ID, m.RequestID), want)
	})

	t.Run("UnknownTwiceChangesNothing", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.submit(base(), m.RequestID, "c1")
		f.receipt(unknown("c1", at(1)))
		second := unknown("c1", at(2))
		second.Error = "UNKNOWN err:2"
		f.receipt(second)
		wantEqual(t, "delivery after a second UNKNOWN", f.delivery(a.ID, m.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryFailed, CarrierID: "c1", Error: "UNKNOWN", Updated: at(1)})
		f.receipt(delivered("c1", at(3))) // still provisional
		wantEqual(t, "delivery after DELIVRD", f.delivery(a.ID, m.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryDelivered, CarrierID: "c1", Updated: at(3)})
	})

	t.Run("DeliveredThenUnknownStaysDelivered", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.submit(base(), m.RequestID, "c1")
		f.receipt(delivered("c1", at(1)))
		f.receipt(unknown("c1", at(2)))
		wantEqual(t, "delivery", f.delivery(a.ID, m.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryDelivered, CarrierID: "c1", Updated: at(1)})
	})

	t.Run("MultipartUnknownOverriddenWhileAPartWaitsIsSubmitted", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.submit(base(), m.RequestID, "p1", "p2")
		f.receipt(unknown("p1", at(1)))
		wantEqual(t, "delivery after UNKNOWN", f.delivery(a.ID, m.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryFailed, CarrierID: "p1", Error: "UNKNOWN", Updated: at(1)})
		f.receipt(delivered("p1", at(2)))
		wantEqual(t, "delivery with part 2 waiting", f.delivery(a.ID, m.RequestID),
			verifyd.Delivery{State: verifyd.DeliverySubmitted, CarrierID: "p1", Updated: at(2)})
		f.receipt(delivered("p2", at(3)))
		wantEqual(t, "delivery", f.delivery(a.ID, m.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryDelivered, CarrierID: "p1", Updated: at(3)})
	})

	t.Run("MultipartStaysFailedWhileAnotherPartIsUnknown", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.submit(base(), m.RequestID, "p1", "p2")
		f.receipt(unknown("p1", at(1)))
		f.receipt(unknown("p2", at(2)))
		f.receipt(delivered("p1", at(3)))
		if d := f.delivery(a.ID, m.RequestID); d.State != verifyd.DeliveryFailed || d.Error != "UNKNOWN" {
			t.Fatalf("delivery %+v with part 2 still UNKNOWN, want Failed", d)
		}
		f.receipt(delivered("p2", at(4)))
		wantEqual(t, "delivery", f.delivery(a.ID, m.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryDelivered, CarrierID: "p1", Updated: at(4)})
	})

	t.Run("MultipartDefinitiveFailureOfAnotherPartStands", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.submit(base(), m.RequestID, "p1", "p2")
		f.receipt(unknown("p1", at(1)))
		f.receipt(undeliverable("p2", at(2)))
		want := verifyd.Delivery{State: verifyd.DeliveryUndeliverable, CarrierID: "p1", Error: "UNDELIV", Updated: at(2)}
		wantEqual(t, "delivery after UNDELIV", f.delivery(a.ID, m.RequestID), want)
		f.receipt(delivered("p1", at(3)))
		wantEqual(t, "delivery after DELIVRD", f.delivery(a.ID, m.RequestID), want)
	})

	// The UNKNOWN comes before the submit is recorded, the DELIVRD after.
	t.Run("EarlyUnknownThenDelivered", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.claimOne(base(), m.RequestID)
		f.receipt(unknown("p1", at(1)))
		f.finish(verifyd.MessageResult{RequestID: m.RequestID, State: verifyd.DeliverySubmitted,
			CarrierIDs: []string{"p1", "p2"}, At: at(2)})
		wantEqual(t, "delivery after the submit", f.delivery(a.ID, m.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryFailed, CarrierID: "p1", Error: "UNKNOWN", Updated: at(1)})
		f.receipt(delivered("p1", at(3)))
		wantEqual(t, "delivery with part 2 waiting", f.delivery(a.ID, m.RequestID),
			verifyd.Delivery{State: verifyd.DeliverySubmitted, CarrierID: "p1", Updated: at(3)})
		f.receipt(delivered("p2", at(4)))
		wantEqual(t, "delivery", f.delivery(a.ID, m.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryDelivered, CarrierID: "p1", Updated: at(4)})
	})

	// Both come before the submit: the kept receipt is replaced, and the
	// submit finds the DELIVRD.
	t.Run("EarlyUnknownThenEarlyDelivered", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, one := f.queue(a, 1, base())
		_, two := f.queue(a, 2, base())
		f.claim(base(), 10)
		f.receipt(unknown("a1", at(1)))
		f.receipt(unknown("b1", at(1)))
		f.receipt(delivered("a1", at(2)))
		f.receipt(undeliverable("b1", at(2)))
		f.receipt(unknown("b1", at(3)))
		f.finish(verifyd.MessageResult{RequestID: one.RequestID, State: verifyd.DeliverySubmitted,
			CarrierIDs: []string{"a1"}, At: at(4)},
			verifyd.MessageResult{RequestID: two.RequestID, State: verifyd.DeliverySubmitted,
				CarrierIDs: []string{"b1", "b2"}, At: at(4)})
		wantEqual(t, "delivery", f.delivery(a.ID, one.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryDelivered, CarrierID: "a1", Updated: at(2)})
		wantEqual(t, "two-part delivery", f.delivery(a.ID, two.RequestID),
			verifyd.Delivery{State: verifyd.DeliveryUndeliverable, CarrierID: "b1", Error: "UNDELIV", Updated: at(2)})
	})

	// A carrier reuses an id: the newer message owns it, and the receipt
	// that could have replaced the older message's provisional failure can
	// no longer reach it. That failure stands, whatever its other parts
	// say, whether the newer message's finish is recorded in one go or one
	// result at a time (a request id twice in the batch).
	for _, tc := range []struct {
		name  string
		retry bool
	}{{"ReusedCarrierIDLeavesAnOlderProvisionalFailureFailed", false},
		{"ReusedCarrierIDLeavesAnOlderProvisionalFailureFailedAfterARetryInOneBatch", true}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, newStore)
			a := f.account("shop")
			_, older := f.queue(a, 1, base())
			f.submit(base(), older.RequestID, "r1", "a2")
			f.receipt(unknown("r1", at(1)))
			_, newer := f.queue(a, 2, base())
			f.claimOne(at(2), newer.RequestID)
			var results []verifyd.MessageResult
			if tc.retry {
				results = append(results, verifyd.MessageResult{RequestID: newer.RequestID, State: verifyd.DeliveryQueued,
					Error: "throttled", NextAttempt: at(2), At: at(2)})
			}
			f.finish(append(results, verifyd.MessageResult{RequestID: newer.RequestID, State: verifyd.DeliverySubmitted,
				CarrierIDs: []string{"r1"}, At: at(2)})...)
			want := verifyd.Delivery{State: verifyd.DeliveryFailed, CarrierID: "r1", Error: "UNKNOWN", Updated: at(1)}
			f.receipt(delivered("a2", at(3)))
			if d := f.delivery(a.ID, older.RequestID); d.State != want.State || d.Error != want.Error || !d.Updated.Equal(want.Updated) {
				t.Fatalf("older delivery %+v after its other part's DELIVRD, want %+v", d, want)
			}
			f.receipt(delivered("r1", at(4)))
			if d := f.delivery(a.ID, older.RequestID); d.State != want.State || d.Error != want.Error || !d.Updated.Equal(want.Updated) {
				t.Fatalf("older delivery %+v after the newer one's DELIVRD, want %+v", d, want)
			}
			wantEqual(t, "newer delivery", f.delivery(a.ID, newer.RequestID),
				verifyd.Delivery{State: verifyd.DeliveryDelivered, CarrierID: "r1", Updated: at(4)})
		})
	}

	// A message withdrawn (cancelled) while its send was in flight is
	// never submitted: receipts for the carrier ids of that send, the
	// provisional one first, change nothing of it.
	t.Run("CancelledWhileSentStaysWithdrawn", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		_, m := f.queue(a, 1, base())
		f.claimOne(base(), m.RequestID)
		if _, err := f.s.UpdateVerification(f.ctx, a.ID, m.RequestID, func(v *verifyd.Verification) error {
			v.Cancel(at(1))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want := f.delivery(a.ID, m.RequestID)
		if want.State != verifyd.DeliveryFailed {
			t.Fatalf("delivery %+v after the cancel, want Failed", want)
		}
		f.receipt(unknown("w1", at(2)))
		f.finish(verifyd.MessageResult{RequestID: m.RequestID, State: verifyd.DeliverySubmitted,
			CarrierIDs: []string{"w1", "w2"}, At: at(3)})
		wantEqual(t, "delivery after the send's finish", f.delivery(a.ID, m.RequestID), want)
		f.receiptsAtOnce(delivered("w1", at(4)), delivered("w2", at(4)))
		wantEqual(t, "delivery after the send's receipts", f.delivery(a.ID, m.RequestID), want)
	})

	// Receipts that come together may be recorded together.
	t.Run("SeveralAtOnce", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		var ms []*verifyd.Message
		for n := 1; n <= 4; n++ {
			_, m := f.queue(a, n, base())
			ms = append(ms, m)
		}
		f.claim(base(), 10)
		f.finish(verifyd.MessageResult{RequestID: ms[0].RequestID, State: verifyd.DeliverySubmitted,
			CarrierIDs: []string{"a1"}, At: base()},
			verifyd.MessageResult{RequestID: ms[1].RequestID, State: verifyd.DeliverySubmitted,
				CarrierIDs: []string{"b1", "b2"}, At: base()},
			verifyd.MessageResult{RequestID: ms[2].RequestID, State: verifyd.DeliverySubmitted,
				CarrierIDs: []string{"c1"}, At: base()})
		f.receiptsAtOnce(unknown("a1", at(1)), unknown("b1", at(1)), unknown("c1", at(1)), unknown("d1", at(1)))
		for i, id := range []string{"a1", "b1", "c1"} {
			wantEqual(t, "delivery after UNKNOWN", f.delivery(a.ID, ms[i].RequestID),
				verifyd.Delivery{State: verifyd.DeliveryFailed, CarrierID: id, Error: "UNKNOWN", Updated: at(1)})
		}
		f.receiptsAtOnce(delivered("a1", at(2)), delivered("b1", at(2)), delivered("b2", at(2)),
			undeliverable("c1", at(2)), delivered("d1", at(2)))
		f.finish(verifyd.MessageResult{RequestID: ms[3].RequestID, State: verifyd.DeliverySubmitted,
			CarrierIDs: []string{"d1"}, At: at(3)})
		for i, want := range []verifyd.Delivery{
			{State: verifyd.DeliveryDelivered, CarrierID: "a1", Updated: at(2)},
			{State: verifyd.DeliveryDelivered, CarrierID: "b1", Updated: at(2)},
			{State: verifyd.DeliveryUndeliverable, CarrierID: "c1", Error: "UNDELIV", Updated: at(2)},
			{State: verifyd.DeliveryDelivered, CarrierID: "d1", Updated: at(2)},
		} {
			wantEqual(t, "delivery", f.delivery(a.ID, ms[i].RequestID), want)
		}
	})
}

// receiptsAtOnce records rs from as many goroutines at once, so that a
// store may take them in one go, and fails on any error.
func (f *fixture) receiptsAtOnce(rs ...verifyd.Receipt) {
	f.t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(rs))
	start := make(chan struct{})
	for i, r := range rs {
		wg.Go(func() {
			<-start
			errs[i] = f.s.RecordReceipt(f.ctx, r)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			f.t.Fatalf("RecordReceipt(%s): %v", rs[i].CarrierID, err)
		}
	}
}

// testProvisionalOrders records, for many multi-part messages, receipts in
// random orders: before and after the submit, alone and several at once,
// provisional and definitive, repeated. After each step every message it
// touched must say what its parts say (see partsSay), whatever the order.
func testProvisionalOrders(t *testing.T, newStore NewStore) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("Seed", seed), func(t *testing.T) {
			f := newFixture(t, newStore)
			a := f.account("shop")
			rnd := rand.New(rand.NewPCG(seed, 7))
			const messages = 40
			type event struct {
				msg  int
				part int // -1: the message's finish
				r    verifyd.Receipt
			}
			kinds := []struct {
				state verifyd.DeliveryState
				err   string
				prov  bool
			}{
				{verifyd.DeliveryFailed, "UNKNOWN", true},
				{verifyd.DeliveryFailed, "UNKNOWN", true},
				{verifyd.DeliveryDelivered, "", false},
				{verifyd.DeliveryDelivered, "", false},
				{verifyd.DeliveryUndeliverable, "UNDELIV", false},
				{verifyd.DeliveryFailed, "DELETED", false},
				{verifyd.DeliveryExpired, "EXPIRED", false},
				{verifyd.DeliverySubmitted, "", false}, // intermediate (ENROUTE): changes nothing
			}
			var (
				reqs    []string
				carrier [][]string
				streams [][]event // per part, and one per message for its finish
			)
			for n := range messages {
				_, m := f.queue(a, n+1, base())
				reqs = append(reqs, m.RequestID)
				parts := 1 + rnd.IntN(3)
				var ids []string
				for p := range parts {
					id := fmt.Sprintf("m%d-p%d", n, p)
					ids = append(ids, id)
					var s []event
					for range rnd.IntN(4) {
						k := kinds[rnd.IntN(len(kinds))]
						s = append(s, event{msg: n, part: p, r: verifyd.Receipt{CarrierID: id, State: k.state,
							Error: k.err, Provisional: k.prov}})
					}
					streams = append(streams, s)
				}
				carrier = append(carrier, ids)
				streams = append(streams, []event{{msg: n, part: -1}})
			}
			if got := f.claim(base(), messages); len(got) != messages {
				t.Fatalf("claimed %d, want %d", len(got), messages)
			}
			// Interleave the streams, each in its own order.
			var events []event
			for {
				var live []int
				for i, s := range streams {
					if len(s) > 0 {
						live = append(live, i)
					}
				}
				if len(live) == 0 {
					break
				}
				i := live[rnd.IntN(len(live))]
				events = append(events, streams[i][0])
				streams[i] = streams[i][1:]
			}

			// The model: a part takes a receipt while it waits, and a
			// definitive one while it is failed provisionally.
			const (
				waiting     = ""
				provisional = "provisional"
			)
			parts := make([][]string, messages)
			for n := range parts {
				parts[n] = make([]string, len(carrier[n]))
			}
			finished := make([]bool, messages)
			failed := make([]*verifyd.Delivery, messages) // the first definitive failure, which stands
			take := func(e event) {
				s := &parts[e.msg][e.part]
				switch {
				case e.r.State == verifyd.DeliverySubmitted:
				case *s == waiting && e.r.Provisional:
					*s = provisional
				case *s == waiting || (*s == provisional && !e.r.Provisional):
					*s = string(e.r.State)
					if e.r.State != verifyd.DeliveryDelivered && failed[e.msg] == nil {
						failed[e.msg] = &verifyd.Delivery{State: e.r.State, Error: e.r.Error}
					}
				}
			}
			// trace lists what message n was told up to step, for a failure.
			trace := func(n, step int) string {
				var b strings.Builder
				for _, e := range events[:step+1] {
					switch {
					case e.msg != n:
					case e.part < 0:
						b.WriteString(" finish")
					default:
						fmt.Fprintf(&b, " %s:%s/%v", e.r.CarrierID, e.r.State, e.r.Provisional)
					}
				}
				return b.String()
			}
			check := func(step int, n int) {
				t.Helper()
				if !finished[n] {
					return
				}
				want := partsSay(parts[n])
				if failed[n] != nil {
					want = *failed[n]
				}
				got := f.delivery(a.ID, reqs[n])
				if got.State != want.State || got.Error != want.Error {
					t.Fatalf("step %d: message %d with parts %q shows %s %q, want %s %q (events %v)",
						step, n, parts[n], got.State, got.Error, want.State, want.Error, trace(n, step))
				}
			}
			at := 1
			for i := 0; i < len(events); {
				e := events[i]
				if e.part < 0 {
					// Finishes that come together go in one call.
					var results []verifyd.MessageResult
					j := i
					for ; j < len(events) && events[j].part < 0 && j-i < 4; j++ {
						n := events[j].msg
						results = append(results, verifyd.MessageResult{RequestID: reqs[n],
							State: verifyd.DeliverySubmitted, CarrierIDs: carrier[n], At: base().Add(time.Duration(at) * time.Second)})
						finished[n] = true
						at++
					}
					f.finish(results...)
					for k := i; k < j; k++ {
						check(j-1, events[k].msg)
					}
					i = j
					continue
				}
				// Receipts for distinct messages that come together may be
				// recorded at once (which of two failures of one message
				// came first would be up to the store).
				batch := []verifyd.Receipt{}
				seen := map[int]bool{}
				j := i
				for ; j < len(events) && events[j].part >= 0 && !seen[events[j].msg] && j-i < 1+rnd.IntN(4); j++ {
					r := events[j].r
					r.At = base().Add(time.Duration(at) * time.Second)
					at++
					seen[events[j].msg] = true
					batch = append(batch, r)
					take(events[j])
				}
				if len(batch) == 1 {
					f.receipt(batch[0])
				} else {
					f.receiptsAtOnce(batch...)
				}
				for k := i; k < j; k++ {
					check(j-1, events[k].msg)
				}
				i = j
			}
			for n := range messages {
				check(len(events)-1, n)
			}
		})
	}
}

// partsSay is what a message's state and error must be given its parts'
// ("" waiting, "provisional", or the definitive receipt's state) when none
// failed for good: failed provisionally while a part is, else Delivered
// once all are, else Submitted.
func partsSay(parts []string) verifyd.Delivery {
	var prov, waiting bool
	for _, p := range parts {
		switch p {
		case "provisional":
			prov = true
		case "":
			waiting = true
		}
	}
	switch {
	case prov:
		return verifyd.Delivery{State: verifyd.DeliveryFailed, Error: "UNKNOWN"}
	case waiting:
		return verifyd.Delivery{State: verifyd.DeliverySubmitted}
	}
	return verifyd.Delivery{State: verifyd.DeliveryDelivered}
}
