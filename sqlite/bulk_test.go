package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"verifyd"
)

// The bulk ways of writing must leave the database exactly as the
// statement-per-row ways would: these tests run the same history through
// both, on two stores, and compare every row.

// insertAll is a bulk kind that inserts the keys of every waiting write of
// its kind into the scratch table with one statement.
var insertAll = &bulk{run: func(t *tx, ops []*op) error {
	keys := make([]any, len(ops))
	for i, o := range ops {
		keys[i] = o.arg
	}
	_, err := t.exec("INSERT INTO scratch (k) VALUES "+strings.TrimSuffix(strings.Repeat("(?), ", len(ops)), ", "), keys...)
	return err
}}

func TestWriterBulk(t *testing.T) {
	t.Parallel()

	t.Run("WaitingWritesOfAKindRunOnce", func(t *testing.T) {
		t.Parallel()
		s, _ := openTest(t)
		scratch(t, s)
		release := hold(t, s)
		before := s.WriteStats()
		var wg sync.WaitGroup
		errs := make([]error, 20)
		for i := range errs {
			wg.Go(func() {
				key := fmt.Sprintf("k%02d", i)
				errs[i] = s.w.writeBulk(context.Background(), insertAll, key, insert(key))
			})
		}
		plain := sendAll(s, map[string]func(*tx) error{"plain": insert("plain")})
		waitQueued(s, 21)
		release()
		wg.Wait()
		if err := errors.Join(append(errs, plain()["plain"])...); err != nil {
			t.Fatal(err)
		}
		after := s.WriteStats()
		if bulks, groups := after.Bulks-before.Bulks, after.Groups-before.Groups; bulks != 1 || groups != 1 {
			t.Fatalf("%d bulk runs in %d groups, want 1 in 1", bulks, groups)
		}
		if got := strings.Count(keys(t, s), ",") + 1; got != 21 {
			t.Fatalf("%d rows committed, want 21", got)
		}
	})

	t.Run("FailingBulkRunsEachAlone", func(t *testing.T) {
		t.Parallel()
		s, _ := openTest(t)
		scratch(t, s)
		if err := s.w.write(t.Context(), insert("taken")); err != nil {
			t.Fatal(err)
		}
		release := hold(t, s)
		var wg sync.WaitGroup
		errs := map[string]error{}
		var mu sync.Mutex
		for _, key := range []string{"a", "taken", "b"} {
			wg.Go(func() {
				err := s.w.writeBulk(context.Background(), insertAll, key, insert(key))
				mu.Lock()
				errs[key] = err
				mu.Unlock()
			})
		}
		waitQueued(s, 3)
		release()
		wg.Wait()
		if errs["a"] != nil || errs["b"] != nil || !isConflict(errs["taken"]) {
			t.Fatalf("results %v, want a and b to succeed and taken to conflict", errs)
		}
		if k := keys(t, s); k != "a,b,taken" {
			t.Fatalf("committed %q, want a,b,taken", k)
		}
	})

	t.Run("PanickingBulkRunsEachAlone", func(t *testing.T) {
		t.Parallel()
		s, _ := openTest(t)
		scratch(t, s)
		boom := &bulk{run: func(*tx, []*op) error { panic("boom") }}
		release := hold(t, s)
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range errs {
			wg.Go(func() {
				errs[i] = s.w.writeBulk(context.Background(), boom, nil, insert(fmt.Sprint(i)))
			})
		}
		waitQueued(s, 3)
		release()
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if k := keys(t, s); k != "0,1,2" {
			t.Fatalf("committed %q, want 0,1,2", k)
		}
	})
}

// history is a store with an account and a verification with a message
// for each id, all claimed.
func history(t *testing.T, n int) (*Store, *verifyd.Account, []string) {
	t.Helper()
	s, _ := openTest(t)
	ctx := t.Context()
	a := &verifyd.Account{Name: "shop", Created: base()}
	if err := s.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		v := &verifyd.Verification{ID: ids[i], AccountID: a.ID, PhoneNumber: fmt.Sprintf("44770090%04d", i),
			Country: "GB", NumberStatus: verifyd.NumberOn, State: verifyd.StatePending, CodeMAC: []byte{1},
			MaxAttempts: 5, Created: base(), ValidUntil: base().Add(time.Hour), Updated: base()}
		m := &verifyd.Message{RequestID: v.ID, AccountID: a.ID, To: v.PhoneNumber, From: "shop",
			Sealed: []byte("sealed " + v.ID), NextAttempt: base(), Deadline: v.ValidUntil, Created: base()}
		if err := s.CreateVerification(ctx, v, m, nil); err != nil {
			t.Fatal(err)
		}
	}
	if ms, err := s.ClaimMessages(ctx, base(), time.Minute, n); err != nil || len(ms) != n {
		t.Fatalf("claimed %d of %d: %v", len(ms), n, err)
	}
	return s, a, ids
}

// dump is every row that finishing and receipts touch, as text.
func dump(t *testing.T, s *Store) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT vid, request_id, state, hex(sealed), attempts, next_attempt, lease_until, error, updated, provisional
			FROM messages ORDER BY vid`,
		"SELECT carrier_id, vid, part, state, error, updated, provisional FROM message_parts ORDER BY carrier_id",
		"SELECT carrier_id, state, error, at, provisional FROM orphan_receipts ORDER BY carrier_id",
	} {
		rows, err := s.rdb.QueryContext(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&b, vals...)
		}
		rows.Close()
		b.WriteString("--\n")
	}
	return b.String()
}

// earlyStates are the final receipt states a carrier reports; "" stands
// for a provisional failure (SMPP's UNKNOWN).
var earlyStates = []verifyd.DeliveryState{verifyd.DeliveryDelivered, verifyd.DeliveryDelivered,
	verifyd.DeliveryUndeliverable, verifyd.DeliveryFailed, verifyd.DeliveryExpired, "", ""}

// randomReceipt is a receipt for id of a state drawn from earlyStates.
func randomReceipt(rnd *rand.Rand, id, errText string, at time.Time) verifyd.Receipt {
	r := verifyd.Receipt{CarrierID: id, State: earlyStates[rnd.IntN(len(earlyStates))], Error: errText, At: at}
	if r.State == "" {
		r.State, r.Provisional = verifyd.DeliveryFailed, true
	}
	return r
}

func TestFinishMessagesBulk(t *testing.T) {
	t.Parallel()
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			const n = 90 // chunks of 64, 16, 4, 4 and 1
			bulkStore, a, ids := history(t, n)
			eachStore, _, _ := history(t, n)
			rnd := rand.New(rand.NewPCG(seed, 1))
			at := func() time.Time { return base().Add(time.Duration(rnd.IntN(10_000)) * time.Millisecond) }

			// The same past in both: a cancelled message, a carrier id
			// an older message holds (failed provisionally), receipts that
			// came early.
			for _, s := range []*Store{bulkStore, eachStore} {
				ctx := t.Context()
				if _, err := s.UpdateVerification(ctx, a.ID, ids[0], func(v *verifyd.Verification) error {
					v.State = verifyd.StateCancelled
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				if err := s.FinishMessages(ctx, []verifyd.MessageResult{{RequestID: ids[1],
					State: verifyd.DeliverySubmitted, CarrierIDs: []string{"reused"}, At: base()}}); err != nil {
					t.Fatal(err)
				}
				if err := s.RecordReceipt(ctx, verifyd.Receipt{CarrierID: "reused", State: verifyd.DeliveryFailed,
					Error: "UNKNOWN", At: base(), Provisional: true}); err != nil {
					t.Fatal(err)
				}
			}
			var results []verifyd.MessageResult
			var early []verifyd.Receipt
			results = append(results, verifyd.MessageResult{RequestID: "unknown", State: verifyd.DeliveryFailed, At: at()})
			for i, id := range ids {
				if i <= 1 { // cancelled, and submitted before
					continue
				}
				r := verifyd.MessageResult{RequestID: id, At: at()}
				switch rnd.IntN(5) {
				case 0:
					r.State, r.Error, r.NextAttempt = verifyd.DeliveryQueued, "ESME_RTHROTTLED", at()
				case 1:
					r.State, r.Error = verifyd.DeliveryFailed, "ESME_RINVDSTADR"
				case 2:
					r.State, r.Error = verifyd.DeliveryExpired, "deadline"
				default:
					r.State = verifyd.DeliverySubmitted
					for p := range 1 + rnd.IntN(3) {
						cid := fmt.Sprintf("c%d-%d", i, p)
						if i == 2 && p == 0 {
							cid = "reused"
						}
						r.CarrierIDs = append(r.CarrierIDs, cid)
						if rnd.IntN(3) > 0 {
							early = append(early, randomReceipt(rnd, cid, "e"+cid, at()))
							if rnd.IntN(3) == 0 { // one that may replace it
								early = append(early, randomReceipt(rnd, cid, "f"+cid, at()))
							}
						}
					}
				}
				results = append(results, r)
			}
			// Also early receipts for a cancelled message and for ids never sent.
			early = append(early, verifyd.Receipt{CarrierID: "stray", State: verifyd.DeliveryDelivered, At: at()})
			for _, s := range []*Store{bulkStore, eachStore} {
				for _, r := range early {
					if err := s.RecordReceipt(t.Context(), r); err != nil {
						t.Fatal(err)
					}
				}
			}
			rnd.Shuffle(len(results), func(i, j int) { results[i], results[j] = results[j], results[i] })
			results = append(results, verifyd.MessageResult{RequestID: ids[0], State: verifyd.DeliverySubmitted,
				CarrierIDs: []string{"stray"}, At: at()})

			if _, ok := newFinish(results); !ok {
				t.Fatal("newFinish refused the batch")
			}
			if err := bulkStore.FinishMessages(t.Context(), results); err != nil {
				t.Fatalf("bulk: %v", err)
			}
			if err := eachStore.w.write(t.Context(), func(t *tx) error { return finishEach(t, results) }); err != nil {
				t.Fatalf("one by one: %v", err)
			}
			if got, want := dump(t, bulkStore), dump(t, eachStore); got != want {
				t.Fatalf("bulk finish left\n%s\none by one left\n%s", got, want)
			}
		})
	}

	t.Run("TextsKeptByteForByte", func(t *testing.T) {
		t.Parallel()
		s, a, ids := history(t, 1)
		r := verifyd.Receipt{CarrierID: "c\x00", State: verifyd.DeliveryUndeliverable, Error: "bad \xff\x00", At: base()}
		if err := s.RecordReceipt(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishMessages(t.Context(), []verifyd.MessageResult{{RequestID: ids[0],
			State: verifyd.DeliverySubmitted, CarrierIDs: []string{"c\x00"}, At: base()}}); err != nil {
			t.Fatal(err)
		}
		v, err := s.FindVerification(t.Context(), a.ID, ids[0])
		if err != nil {
			t.Fatal(err)
		}
		if d := v.Delivery; d.State != r.State || d.Error != r.Error || d.CarrierID != r.CarrierID {
			t.Fatalf("delivery %+v, want the early receipt's", d)
		}
	})

	t.Run("RepeatsGoOneByOne", func(t *testing.T) {
		t.Parallel()
		for _, results := range [][]verifyd.MessageResult{
			{{RequestID: "a", State: verifyd.DeliveryQueued}, {RequestID: "a", State: verifyd.DeliveryFailed}},
			{{RequestID: "a", State: verifyd.DeliverySubmitted, CarrierIDs: []string{"x"}},
				{RequestID: "b", State: verifyd.DeliverySubmitted, CarrierIDs: []string{"x"}}},
		} {
			if _, ok := newFinish(results); ok {
				t.Errorf("newFinish(%v) took the bulk way", results)
			}
		}
	})
}

func TestRecordReceiptBulk(t *testing.T) {
	t.Parallel()
	for seed := range uint64(10) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			const n = 10
			bulkStore, _, ids := history(t, n)
			eachStore, _, _ := history(t, n)
			rnd := rand.New(rand.NewPCG(seed, 2))
			var known []string
			var results []verifyd.MessageResult
			for i, id := range ids {
				r := verifyd.MessageResult{RequestID: id, State: verifyd.DeliverySubmitted, At: base()}
				for p := range 1 + i%3 {
					r.CarrierIDs = append(r.CarrierIDs, fmt.Sprintf("c%d-%d", i, p))
				}
				known = append(known, r.CarrierIDs...)
				results = append(results, r)
			}
			for _, s := range []*Store{bulkStore, eachStore} {
				if err := s.FinishMessages(t.Context(), results); err != nil {
					t.Fatal(err)
				}
			}
			var receipts []verifyd.Receipt
			for i := range 40 {
				id := known[rnd.IntN(len(known))]
				if rnd.IntN(4) == 0 {
					id = fmt.Sprintf("unknown-%d", rnd.IntN(5))
				}
				receipts = append(receipts, randomReceipt(rnd, id, fmt.Sprint("e", i), base().Add(time.Duration(i)*time.Second)))
			}

			release := hold(t, bulkStore)
			before := bulkStore.WriteStats()
			var wg sync.WaitGroup
			for i, r := range receipts {
				wg.Go(func() {
					if err := bulkStore.RecordReceipt(context.Background(), r); err != nil {
						t.Error(err)
					}
				})
				waitQueued(bulkStore, i+1) // queued in the order of receipts
			}
			release()
			wg.Wait()
			if bulks := bulkStore.WriteStats().Bulks - before.Bulks; bulks != 1 {
				t.Fatalf("%d bulk runs, want 1", bulks)
			}
			for _, r := range receipts {
				if err := eachStore.w.write(t.Context(), func(t *tx) error { return recordReceipt(t, r) }); err != nil {
					t.Fatal(err)
				}
			}
			if got, want := dump(t, bulkStore), dump(t, eachStore); got != want {
				t.Fatalf("bulk receipts left\n%s\none by one left\n%s", got, want)
			}
		})
	}
}

func TestAddInboxMessagesBulk(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	release := hold(t, s)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		sent [][]*verifyd.InboxMessage
	)
	for i := range 30 {
		msgs := []*verifyd.InboxMessage{{RequestID: fmt.Sprint("r", i), To: fmt.Sprint("4477009", i),
			From: "shop", Sealed: []byte{byte(i), 0, '"'}, Created: base().Add(time.Duration(i) * time.Millisecond)}}
		if i%3 == 0 { // some calls carry two
			msgs = append(msgs, &verifyd.InboxMessage{RequestID: fmt.Sprint("r", i, "b"), To: "4477000000",
				From: "sh\"op\n", Created: base()})
		}
		wg.Go(func() {
			if err := s.AddInboxMessages(context.Background(), msgs); err != nil {
				t.Error(err)
			}
			mu.Lock()
			sent = append(sent, msgs)
			mu.Unlock()
		})
	}
	waitQueued(s, 30)
	release()
	wg.Wait()
	stored, err := s.ListInboxMessages(t.Context(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[int64]*verifyd.InboxMessage{}
	for _, m := range stored {
		byID[m.ID] = m
	}
	n := 0
	for _, msgs := range sent {
		for _, m := range msgs {
			n++
			got, ok := byID[m.ID]
			if !ok {
				t.Fatalf("message %s has id %d, which is not stored", m.RequestID, m.ID)
			}
			if got.RequestID != m.RequestID || got.To != m.To || got.From != m.From ||
				string(got.Sealed) != string(m.Sealed) || !got.Created.Equal(m.Created) {
				t.Fatalf("id %d holds %+v, want %+v", m.ID, got, m)
			}
		}
	}
	if len(stored) != n {
		t.Fatalf("%d messages stored, want %d", len(stored), n)
	}
}
