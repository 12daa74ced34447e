package postgres_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"verifyd"
	"verifyd/postgres"
)

// holdRow locks the rows query selects (FOR UPDATE, with arg) from a
// session of its own, as a stuck administrator's transaction (or a hung
// instance) would, until the returned func is called.
func holdRow(t *testing.T, dsn, query string, arg any) (release func()) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if tag, err := tx.Exec(t.Context(), query, arg); err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("locking %v: %v, %d rows", arg, err, tag.RowsAffected())
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			tx.Rollback(context.Background())
			conn.Close(context.Background())
		})
	}
	t.Cleanup(release)
	return release
}

// TestReceiptOfALockedRowFailsOnlyItself: a part, or a message, whose row
// another session holds locked must not take down the receipts grouped
// with one that needs it. The group's statement waited for the lock until
// the Store's timeout and every receipt in it failed (the SMSC sends them
// again later), and since the receipt for that row came back in each next
// group, the delivery states of the whole instance stopped moving while
// the lock was held.
func TestReceiptOfALockedRowFailsOnlyItself(t *testing.T) {
	// Not parallel: noPileUp counts the process's goroutines.
	ctx := t.Context()
	dsn := newDatabase(t)
	// Long enough that a group waiting for the lock to the end would fail
	// every check below; the wait for a lock is bounded well inside it.
	s := open(t, dsn, postgres.WithTimeout(8*time.Second))
	a := createAccount(t, s)
	at := now().Add(time.Second)
	parts := [][]string{{"h0"}, {"m1a", "m1b"}, {"f2"}, {"f3"}}
	var (
		reqs    []string
		results []verifyd.MessageResult
	)
	for n, ids := range parts {
		v, m := pending(a, n)
		if err := s.CreateVerification(ctx, v, m, nil); err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, v.ID)
		results = append(results, verifyd.MessageResult{RequestID: v.ID, State: verifyd.DeliverySubmitted, CarrierIDs: ids, At: at})
	}
	if ms, err := s.ClaimMessages(ctx, now(), time.Minute, len(parts)); err != nil || len(ms) != len(parts) {
		t.Fatalf("ClaimMessages = %d messages, %v; want %d", len(ms), err, len(parts))
	}
	if err := s.FinishMessages(ctx, results); err != nil {
		t.Fatal(err)
	}
	delivered := func(id string) verifyd.Receipt {
		return verifyd.Receipt{CarrierID: id, State: verifyd.DeliveryDelivered, At: at.Add(time.Second)}
	}
	delivery := func(n int) verifyd.DeliveryState {
		t.Helper()
		v, err := s.FindVerification(ctx, a.ID, reqs[n])
		if err != nil {
			t.Fatal(err)
		}
		if v.Delivery == nil {
			return ""
		}
		return v.Delivery.State
	}
	releasePart := holdRow(t, dsn, "SELECT 1 FROM message_parts WHERE carrier_id = $1 FOR UPDATE", "h0")
	releaseMessage := holdRow(t, dsn, "SELECT 1 FROM messages WHERE request_id = $1 FOR UPDATE", reqs[1])

	for _, tc := range []struct {
		name         string
		held, free   string
		heldN, freeN int
	}{
		{"PartLocked", "h0", "f2", 0, 2},
		{"MessageLocked", "m1a", "f3", 1, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := s.CommitReceiptGroup(ctx, []verifyd.Receipt{delivered(tc.held), delivered(tc.free)})
			if verifyd.ErrorCode(errs[0]) != verifyd.EUNAVAILABLE {
				t.Errorf("receipt needing the locked row: %v, want EUNAVAILABLE", errs[0])
			}
			if errs[1] != nil {
				t.Errorf("receipt in its group needing no locked row: %v, want it recorded", errs[1])
			}
			if got := delivery(tc.freeN); got != verifyd.DeliveryDelivered {
				t.Errorf("the other receipt's message is %s while the lock is held, want Delivered", got)
			}
			if got := delivery(tc.heldN); got != verifyd.DeliverySubmitted {
				t.Errorf("the locked receipt's message is %s, want Submitted", got)
			}
		})
	}

	t.Run("UnderLoad", func(t *testing.T) {
		// The carrier keeps sending the receipts that need the locked rows
		// while others come in: those must be recorded, and nothing may
		// pile up.
		before := runtime.NumGoroutine()
		stop := make(chan struct{})
		var (
			wg      sync.WaitGroup
			refused atomic.Int32
		)
		for i := range 8 {
			id := []string{"h0", "m1a", "m1b"}[i%3]
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					err := s.RecordReceipt(ctx, delivered(id))
					if verifyd.ErrorCode(err) != verifyd.EUNAVAILABLE {
						t.Errorf("receipt %s needing a locked row: %v, want EUNAVAILABLE", id, err)
						return
					}
					refused.Add(1)
				}
			})
		}
		for refused.Load() == 0 && !waitingForLock(t, dsn) {
			time.Sleep(10 * time.Millisecond)
		}
		// Receipts for parts not known yet are kept for their finish.
		for i := range 3 {
			if err := s.RecordReceipt(ctx, delivered(fmt.Sprintf("early%d", i))); err != nil {
				t.Errorf("receipt %d of another part while the locked ones are sent again and again: %v", i, err)
			}
		}
		var early int
		if err := connect(t, dsn).QueryRow(ctx,
			"SELECT count(*) FROM message_parts WHERE carrier_id LIKE 'early%' AND request_id IS NULL").Scan(&early); err != nil {
			t.Fatal(err)
		}
		if early != 3 {
			t.Errorf("%d early receipts kept while the rows are locked, want 3", early)
		}
		close(stop)
		wg.Wait()
		releasePart()
		releaseMessage()
		// Once the locks go, the receipts are recorded as ever.
		for _, id := range []string{"h0", "m1a", "m1b"} {
			if err := s.RecordReceipt(ctx, delivered(id)); err != nil {
				t.Fatalf("receipt %s once the lock went: %v", id, err)
			}
		}
		for n := range parts {
			if got := delivery(n); got != verifyd.DeliveryDelivered {
				t.Errorf("message %d is %s, want Delivered", n, got)
			}
		}
		checkPartCounts(t, dsn, nil)
		noPileUp(t, before)
	})
}

// TestFinishOfALockedRowLeavesOnlyItself: a claimed message, or the part
// of an early receipt, whose row another session holds locked must not
// keep the rest of its finish batch unrecorded. The batch waited for the
// lock until the Store's timeout and failed whole, every time the worker
// tried it again, so its other messages were never recorded and went out
// a second time once their leases ran out.
func TestFinishOfALockedRowLeavesOnlyItself(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := newDatabase(t)
	s := open(t, dsn, postgres.WithTimeout(8*time.Second))
	a := createAccount(t, s)
	at := now().Add(time.Second)
	var reqs []string
	for n := range 5 {
		v, m := pending(a, n)
		if err := s.CreateVerification(ctx, v, m, nil); err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, v.ID)
	}
	claimed, err := s.ClaimMessages(ctx, now(), time.Minute, 5)
	if err != nil || len(claimed) != 5 {
		t.Fatalf("ClaimMessages = %d messages, %v; want 5", len(claimed), err)
	}
	attempt := map[string]int{}
	for _, m := range claimed {
		attempt[m.RequestID] = m.Attempts
	}
	// The receipt of message 3's part came before its finish.
	if err := s.RecordReceipt(ctx, verifyd.Receipt{CarrierID: "e3", State: verifyd.DeliveryDelivered, At: at.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	result := func(n int, state verifyd.DeliveryState, ids ...string) verifyd.MessageResult {
		return verifyd.MessageResult{RequestID: reqs[n], State: state, CarrierIDs: ids, At: at, Attempt: attempt[reqs[n]]}
	}
	batch := []verifyd.MessageResult{
		result(0, verifyd.DeliverySubmitted, "c0"),
		result(1, verifyd.DeliverySubmitted, "c1"),
		result(2, verifyd.DeliveryFailed),
		result(3, verifyd.DeliverySubmitted, "e3"),
		result(4, verifyd.DeliverySubmitted, "c4"),
	}
	batch[2].Error = "refused"
	delivery := func(n int) verifyd.DeliveryState {
		t.Helper()
		v, err := s.FindVerification(ctx, a.ID, reqs[n])
		if err != nil {
			t.Fatal(err)
		}
		return v.Delivery.State
	}
	releaseMessage := holdRow(t, dsn, "SELECT 1 FROM messages WHERE request_id = $1 FOR UPDATE", reqs[1])
	releasePart := holdRow(t, dsn, "SELECT 1 FROM message_parts WHERE carrier_id = $1 FOR UPDATE", "e3")

	err = s.FinishMessages(ctx, batch)
	if verifyd.ErrorCode(err) != verifyd.EUNAVAILABLE {
		t.Errorf("finish of a batch with locked rows: %v, want EUNAVAILABLE", err)
	}
	want := []verifyd.DeliveryState{verifyd.DeliverySubmitted, verifyd.DeliveryQueued, verifyd.DeliveryFailed,
		verifyd.DeliveryQueued, verifyd.DeliverySubmitted}
	for n, state := range want {
		if got := delivery(n); got != state {
			t.Errorf("message %d is %s while the locks are held, want %s", n, got, state)
		}
	}

	releaseMessage()
	releasePart()
	// The worker records the whole batch again.
	if err := s.FinishMessages(ctx, batch); err != nil {
		t.Fatalf("finish once the locks went: %v", err)
	}
	want[1], want[3] = verifyd.DeliverySubmitted, verifyd.DeliveryDelivered
	for n, state := range want {
		if got := delivery(n); got != state {
			t.Errorf("message %d is %s, want %s", n, got, state)
		}
	}
	checkPartCounts(t, dsn, nil)
}
