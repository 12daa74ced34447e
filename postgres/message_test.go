package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"verifyd"
	"verifyd/postgres"
)

// The text waiting for delivery (sealed, but it holds the code) is wiped
// once the message is handed over, fails, expires or is withdrawn, and kept
// only while a retry may need it. The column is read directly: no method
// of the store returns it for a message it will not deliver.
func TestSealedTextWiped(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	s := open(t, dsn)
	a := createAccount(t, s)
	ids := make([]string, 7)
	for n := 1; n < len(ids); n++ {
		v, m := pending(a, n)
		if err := s.CreateVerification(t.Context(), v, m, nil); err != nil {
			t.Fatal(err)
		}
		ids[n] = v.ID
	}
	if ms, err := s.ClaimMessages(t.Context(), now(), time.Minute, 10); err != nil || len(ms) != 6 {
		t.Fatalf("ClaimMessages = %d messages, %v; want 6", len(ms), err)
	}
	at := now().Add(time.Second)
	if err := s.FinishMessages(t.Context(), []verifyd.MessageResult{
		{RequestID: ids[1], State: verifyd.DeliverySubmitted, CarrierIDs: []string{"c1"}, At: at},
		{RequestID: ids[2], State: verifyd.DeliveryDelivered, CarrierIDs: []string{"c2"}, At: at},
		{RequestID: ids[3], State: verifyd.DeliveryFailed, Error: "rejected", At: at},
		{RequestID: ids[4], State: verifyd.DeliveryQueued, NextAttempt: at, At: at},
		{RequestID: ids[5], State: verifyd.DeliveryExpired, At: at},
	}); err != nil {
		t.Fatal(err)
	}
	// Message 6 is withdrawn while claimed.
	if _, err := s.UpdateVerification(t.Context(), a.ID, ids[6], func(v *verifyd.Verification) error {
		v.Cancel(at)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{ids[1]: false, ids[2]: false, ids[3]: false, ids[4]: true, ids[5]: false, ids[6]: false}
	rows, _ := connect(t, dsn).Query(t.Context(), "SELECT request_id, state, sealed IS NOT NULL FROM messages")
	var (
		id, state string
		kept      bool
		seen      int
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &state, &kept}, func() error {
		seen++
		if kept != want[id] {
			t.Errorf("message %s (%s) keeps its text: %v, want %v", id, state, kept, want[id])
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if seen != len(want) {
		t.Errorf("%d messages, want %d", seen, len(want))
	}
}

func TestExpiredAtClaimIsWiped(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	s := open(t, dsn)
	v, m := pending(createAccount(t, s), 1)
	if err := s.CreateVerification(t.Context(), v, m, nil); err != nil {
		t.Fatal(err)
	}
	if ms, err := s.ClaimMessages(t.Context(), m.Deadline, time.Minute, 10); err != nil || len(ms) != 0 {
		t.Fatalf("ClaimMessages at the deadline = %d messages, %v; want none", len(ms), err)
	}
	var (
		state string
		wiped bool
	)
	if err := connect(t, dsn).QueryRow(t.Context(), "SELECT state, sealed IS NULL FROM messages").Scan(&state, &wiped); err != nil {
		t.Fatal(err)
	}
	if state != "Expired" || !wiped {
		t.Fatalf("message %s, text wiped %v; want Expired and wiped", state, wiped)
	}
}

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
	seqs := make([][]verifyd.Receipt, len(receipts))
	for j, r := range receipts {
		seqs[j] = []verifyd.Receipt{r}
	}
	settleRacing(t, stores, results, seqs)
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

// Provisional failures (UNKNOWN) and the receipts that replace them race
// the finish that records their carrier ids, and each other, on two
// instances: every message ends in the state its parts say, and its counts
// of parts (parts_left, parts_unsure) are those of its parts.
func TestTwoInstancesReplaceProvisionalReceiptsAndCountPartsRight(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	stores := [2]*postgres.Store{open(t, dsn), open(t, dsn)}
	const messages = 160
	a := queueOnBoth(t, stores, messages)
	claimed, err := stores[0].ClaimMessages(t.Context(), now(), time.Minute, messages)
	if err != nil || len(claimed) != messages {
		t.Fatalf("claimed %d messages (%v), want %d", len(claimed), err, messages)
	}
	at := now().Add(time.Second)
	unknown := func(id string) verifyd.Receipt {
		return verifyd.Receipt{CarrierID: id, State: verifyd.DeliveryFailed, Error: "UNKNOWN", At: at.Add(time.Second), Provisional: true}
	}
	delivered := func(id string) verifyd.Receipt {
		return verifyd.Receipt{CarrierID: id, State: verifyd.DeliveryDelivered, At: at.Add(2 * time.Second)}
	}
	// Each part's receipts, in the order they must come; by n%4 its message
	// ends Delivered (0, 1), Undeliverable (2), or failed provisionally with
	// its second part still UNKNOWN (3).
	var (
		results []verifyd.MessageResult
		parts   [][]verifyd.Receipt
		want    = map[string]verifyd.DeliveryState{}
	)
	for n := range messages {
		v, _ := pending(a, n)
		ids := []string{fmt.Sprintf("c%d-0", n), fmt.Sprintf("c%d-1", n)}
		results = append(results, verifyd.MessageResult{RequestID: v.ID, State: verifyd.DeliverySubmitted, CarrierIDs: ids, At: at})
		first := []verifyd.Receipt{unknown(ids[0]), delivered(ids[0])}
		second := []verifyd.Receipt{delivered(ids[1])}
		want[v.ID] = verifyd.DeliveryDelivered
		switch n % 4 {
		case 1:
			second = []verifyd.Receipt{unknown(ids[1]), delivered(ids[1])}
		case 2:
			first[1].State, first[1].Error = verifyd.DeliveryUndeliverable, "UNDELIV"
			want[v.ID] = verifyd.DeliveryUndeliverable
		case 3:
			second = []verifyd.Receipt{unknown(ids[1])}
			want[v.ID] = verifyd.DeliveryFailed
		}
		parts = append(parts, first, second)
	}
	rand.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	settleRacing(t, stores, results, parts)
	for id, state := range want {
		got, err := stores[1].FindVerification(t.Context(), a.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Delivery == nil || got.Delivery.State != state {
			t.Errorf("message %s: delivery %+v, want %s", id, got.Delivery, state)
		}
	}
	// A message failed for good counts no more; every other one counts
	// its parts without a definitive receipt, and those failed provisionally
	// (a part whose definitive receipt came first has no row left).
	rows, _ := connect(t, dsn).Query(t.Context(), `SELECT m.request_id, m.state, m.parts_left, m.parts_unsure,
			count(*) FILTER (WHERE p.state = 'Submitted' OR p.provisional), count(*) FILTER (WHERE p.provisional)
		FROM messages m LEFT JOIN message_parts p ON p.request_id = m.request_id
		WHERE m.state <> 'Undeliverable' GROUP BY m.request_id`)
	var (
		id, state                      string
		left, unsure, wantLeft, wantUn int
		seen                           int
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &state, &left, &unsure, &wantLeft, &wantUn}, func() error {
		seen++
		if left != wantLeft || unsure != wantUn {
			t.Errorf("message %s (%s) counts %d parts left and %d unsure, want %d and %d", id, state, left, unsure, wantLeft, wantUn)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if seen != messages*3/4 {
		t.Errorf("%d messages counted, want %d", seen, messages*3/4)
	}
}

// A group of receipts locks its parts in carrier id order and may wait on
// one of them; a part created, and failed provisionally, meanwhile (after
// the group's statement began) is replaced by the group's definitive
// receipt all the same, and its message must count it off: here it goes
// back to Submitted, its other part waiting, with nothing left unsure.
func TestReceiptReplacingAProvisionalPartMadeWhileItsGroupWaited(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	// The group waits on the held part while the test finishes a message
	// and records a receipt: a wait of the default second could run out
	// first on a loaded machine.
	s := open(t, dsn, postgres.WithTimeout(2*time.Minute))
	s.SetLockedWait(time.Minute)
	a := createAccount(t, s)
	var reqs []string
	for n := range 2 {
		v, m := pending(a, n)
		if err := s.CreateVerification(t.Context(), v, m, nil); err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, v.ID)
	}
	if ms, err := s.ClaimMessages(t.Context(), now(), time.Minute, 10); err != nil || len(ms) != 2 {
		t.Fatalf("ClaimMessages = %d messages, %v; want 2", len(ms), err)
	}
	at := func(s int) time.Time { return now().Add(time.Duration(s) * time.Second) }
	if err := s.FinishMessages(t.Context(), []verifyd.MessageResult{
		{RequestID: reqs[0], State: verifyd.DeliverySubmitted, CarrierIDs: []string{"a0"}, At: at(1)},
	}); err != nil {
		t.Fatal(err)
	}

	// Another session holds the first part the group will lock.
	holder := connect(t, dsn)
	tx, err := holder.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), "SELECT 1 FROM message_parts WHERE carrier_id = 'a0' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- s.RecordReceiptGroup(t.Context(), []verifyd.Receipt{
			{CarrierID: "a0", State: verifyd.DeliveryDelivered, At: at(5)},
			{CarrierID: "b1", State: verifyd.DeliveryDelivered, At: at(5)},
		})
	}()
	waitForLockWait(t, connect(t, dsn))

	// Meanwhile the second message is submitted and its first part
	// failed provisionally.
	if err := s.FinishMessages(t.Context(), []verifyd.MessageResult{
		{RequestID: reqs[1], State: verifyd.DeliverySubmitted, CarrierIDs: []string{"b1", "b2"}, At: at(2)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordReceipt(t.Context(), verifyd.Receipt{CarrierID: "b1", State: verifyd.DeliveryFailed,
		Error: "UNKNOWN", At: at(3), Provisional: true}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	got, err := s.FindVerification(t.Context(), a.ID, reqs[1])
	if err != nil {
		t.Fatal(err)
	}
	want := verifyd.Delivery{State: verifyd.DeliverySubmitted, CarrierID: "b1", Updated: at(5)}
	if got.Delivery == nil || *got.Delivery != want {
		t.Errorf("delivery %+v, want %+v", got.Delivery, want)
	}
	checkPartCounts(t, dsn, nil)
}

// checkPartCounts fails unless every message with parts counts in
// parts_left its parts without a definitive receipt, and in parts_unsure
// those failed provisionally, as its part rows say (a part whose
// definitive receipt came before it has no row); a message failed for good
// (failed) is final and counts nothing unsure.
func checkPartCounts(t *testing.T, dsn string, failed map[string]bool) {
	t.Helper()
	rows, _ := connect(t, dsn).Query(t.Context(), `SELECT m.request_id, m.state, m.parts_left, m.parts_unsure,
			count(*) FILTER (WHERE p.state = 'Submitted' OR p.provisional),
			count(*) FILTER (WHERE p.provisional)
		FROM messages m JOIN message_parts p ON p.request_id = m.request_id
		GROUP BY m.request_id`)
	var (
		id, state                      string
		left, unsure, wantLeft, wantUn int
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &state, &left, &unsure, &wantLeft, &wantUn}, func() error {
		switch {
		case failed[id] && unsure != 0:
			t.Errorf("message %s (%s) failed for good counts %d parts unsure, want 0", id, state, unsure)
		case !failed[id] && (left != wantLeft || unsure != wantUn):
			t.Errorf("message %s (%s) counts %d parts left and %d unsure, want %d and %d", id, state, left, unsure, wantLeft, wantUn)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// Receipts of every kind, for parts of multi-part messages, race each
// other and the finishes that record the parts, on two instances: each
// part's receipts come in their order, the parts' in any. Every message
// ends as its parts say (failed for good once one is, failed while one is
// failed provisionally, Delivered once all are, else Submitted), and counts
// its parts as its part rows do.
func TestTwoInstancesSettleRandomProvisionalReceipts(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	stores := [2]*postgres.Store{open(t, dsn), open(t, dsn)}
	const (
		messages  = 200
		recorders = 8
	)
	a := queueOnBoth(t, stores, messages)
	if ms, err := stores[0].ClaimMessages(t.Context(), now(), time.Minute, messages); err != nil || len(ms) != messages {
		t.Fatalf("claimed %d messages (%v), want %d", len(ms), err, messages)
	}
	rnd := rand.New(rand.NewPCG(11, 13))
	at := now().Add(time.Second)
	kinds := []verifyd.Receipt{
		{State: verifyd.DeliveryFailed, Error: "UNKNOWN", Provisional: true},
		{State: verifyd.DeliveryDelivered},
		{State: verifyd.DeliveryDelivered},
		{State: verifyd.DeliveryUndeliverable, Error: "UNDELIV"},
	}
	var (
		results []verifyd.MessageResult
		queues  [recorders][][]verifyd.Receipt // each recorder's parts, each part's receipts in order
		want    = map[string]verifyd.DeliveryState{}
	)
	for n := range messages {
		v, _ := pending(a, n)
		var ids []string
		var failed, unsure, waiting bool
		for p := range 1 + rnd.IntN(3) {
			id := fmt.Sprintf("c%d-%d", n, p)
			ids = append(ids, id)
			var rs []verifyd.Receipt
			state := "" // what the part says: "", "unsure" or a definitive state
			for range rnd.IntN(4) {
				r := kinds[rnd.IntN(len(kinds))]
				r.CarrierID, r.At = id, at.Add(time.Duration(rnd.IntN(60))*time.Second)
				rs = append(rs, r)
				switch {
				case state == "" && r.Provisional:
					state = "unsure"
				case state == "" || (state == "unsure" && !r.Provisional):
					state = string(r.State)
				}
			}
			switch state {
			case "":
				waiting = true
			case "unsure":
				unsure = true
			case string(verifyd.DeliveryUndeliverable):
				failed = true
			}
			i := rnd.IntN(recorders)
			queues[i] = append(queues[i], rs)
		}
		results = append(results, verifyd.MessageResult{RequestID: v.ID, State: verifyd.DeliverySubmitted, CarrierIDs: ids, At: at})
		switch {
		case failed:
			want[v.ID] = verifyd.DeliveryUndeliverable
		case unsure:
			want[v.ID] = verifyd.DeliveryFailed
		case waiting:
			want[v.ID] = verifyd.DeliverySubmitted
		default:
			want[v.ID] = verifyd.DeliveryDelivered
		}
	}
	rand.Shuffle(len(results), func(i, j int) { results[i], results[j] = results[j], results[i] })
	parallel(recorders+2, func(i int) {
		if i >= recorders {
			// Two finishers, one per instance, take turns through the batches.
			for j := (i - recorders) * 8; j < len(results); j += 16 {
				if err := stores[i-recorders].FinishMessages(t.Context(), results[j:min(j+8, len(results))]); err != nil {
					t.Error(err)
				}
			}
			return
		}
		// Interleave this recorder's parts, each in its own order.
		parts := queues[i]
		for {
			var live []int
			for p, rs := range parts {
				if len(rs) > 0 {
					live = append(live, p)
				}
			}
			if len(live) == 0 {
				return
			}
			p := live[rand.IntN(len(live))]
			if err := stores[rand.IntN(2)].RecordReceipt(t.Context(), parts[p][0]); err != nil {
				t.Error(err)
			}
			parts[p] = parts[p][1:]
		}
	})
	for id, state := range want {
		got, err := stores[1].FindVerification(t.Context(), a.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Delivery == nil || got.Delivery.State != state {
			t.Errorf("message %s: delivery %+v, want %s", id, got.Delivery, state)
		}
	}
	failed := map[string]bool{}
	for id, state := range want {
		failed[id] = state == verifyd.DeliveryUndeliverable
	}
	checkPartCounts(t, dsn, failed)
}

// settleRacing records results on the two instances in turn, in batches of
// 16, while 8 recorders record the receipt sequences seqs, each in its own
// order and sequence j on instance j%2: finishes and receipts race as they
// do between a worker and a carrier.
func settleRacing(t *testing.T, stores [2]*postgres.Store, results []verifyd.MessageResult, seqs [][]verifyd.Receipt) {
	t.Helper()
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
		for j := i; j < len(seqs); j += recorders {
			for _, r := range seqs[j] {
				if err := stores[j%2].RecordReceipt(t.Context(), r); err != nil {
					t.Error(err)
				}
			}
		}
	})
}
