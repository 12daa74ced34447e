package postgres_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"verifyd"
)

// Receipts race the finish that records their carrier ids, and each other,
// on two instances: whichever comes first, every message ends in the state
// its parts say.
func TestTwoInstancesSettleEveryMessageWhateverOrderReceiptsCome(t *testing.T) {
	t.Parallel()
	stores := twoInstances(t)
	const messages = 240
	a := queueOnBoth(t, stores, messages)
	claimed, err := stores[0].ClaimMessages(t.Context(), now(), time.Minute, messages)
	if err != nil || len(claimed) != messages {
		t.Fatalf("claimed %d messages (%v), want %d", len(claimed), err, messages)
	}
	failed := func(n int) bool { return n%5 == 0 } // its first part fails
	var (
		results  []verifyd.MessageResult
		receipts []verifyd.Receipt
	)
	at := now().Add(time.Second)
	for n := range messages {
		v, _ := pending(a, n)
		ids := []string{fmt.Sprintf("c%d-0", n), fmt.Sprintf("c%d-1", n)}
		results = append(results, verifyd.MessageResult{RequestID: v.ID, State: verifyd.DeliverySubmitted, CarrierIDs: ids, At: at})
		first := verifyd.Receipt{CarrierID: ids[0], State: verifyd.DeliveryDelivered, At: at.Add(time.Second)}
		if failed(n) {
			first.State, first.Error = verifyd.DeliveryUndeliverable, "UNDELIV"
		}
		receipts = append(receipts, first, verifyd.Receipt{CarrierID: ids[1], State: verifyd.DeliveryDelivered, At: at.Add(2 * time.Second)})
	}
	rand.Shuffle(len(receipts), func(i, j int) { receipts[i], receipts[j] = receipts[j], receipts[i] })
	const recorders = 8
	parallel(recorders+1, func(i int) {
		if i == recorders {
			for j := 0; j < len(results); j += 16 {
				if err := stores[j/16%2].FinishMessages(t.Context(), results[j:min(j+16, len(results))]); err != nil {
					t.Error(err)
				}
			}
			return
		}
		for j := i; j < len(receipts); j += recorders {
			if err := stores[j%2].RecordReceipt(t.Context(), receipts[j]); err != nil {
				t.Error(err)
			}
		}
	})
	for n := range messages {
		v, _ := pending(a, n)
		got, err := stores[1].FindVerification(t.Context(), a.ID, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := verifyd.DeliveryDelivered
		if failed(n) {
			want = verifyd.DeliveryUndeliverable
		}
		if got.Delivery == nil || got.Delivery.State != want {
			t.Errorf("message %d: delivery %+v, want %s", n, got.Delivery, want)
		}
	}
}
