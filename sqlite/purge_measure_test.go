package sqlite_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"verifyd"
	"verifyd/sqlite"
)

// TestMeasurePurge times the purge of a backlog of expired rows and what
// it costs the creates that run meanwhile, for the record
// (VERIFYD_MEASURE_PURGE=1): no assertion on time.
func TestMeasurePurge(t *testing.T) {
	if os.Getenv("VERIFYD_MEASURE_PURGE") == "" {
		t.Skip("set VERIFYD_MEASURE_PURGE=1 to measure")
	}
	const expired, live = 200_000, 1_000_000
	path := filepath.Join(t.TempDir(), "verifyd.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	a := &verifyd.Account{Name: "m", Created: time.Unix(0, 0)}
	if err := s.CreateAccount(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	s.Close()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	old := now.Add(-40 * 24 * time.Hour).UnixMilli()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)")
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		start := time.Now()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		t.Logf("fill %.60s... %v", q, time.Since(start))
	}
	series := `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?) `
	kind := os.Getenv("VERIFYD_MEASURE_KIND")
	switch kind {
	case "", "verifications":
		exec(series+`INSERT INTO verifications (vid, id, account_id, phone_number, country, number_status, state, attempts, max_attempts, created, valid_until, updated)
			SELECT n, 'v' || n, ?, '4477' || printf('%08d', n), 'GB', 'On', 'Pending', 0, 5, ? + n, ? + n + 600000, ? + n FROM g`,
			expired, a.ID, old, old, old)
		exec(series+`INSERT INTO messages (vid, request_id, account_id, to_number, from_id, state, attempts, next_attempt, deadline, lease_until, error, created, updated)
			SELECT n, 'v' || n, ?, '4477', 'x', 'Delivered', 1, 0, 0, 0, '', ?, ? FROM g`, expired, a.ID, old, old)
		exec(series+`INSERT INTO message_parts (carrier_id, vid, part, state, error, updated)
			SELECT 'c' || n || '-' || p.p, n, p.p, 'Delivered', '', ? FROM g, (SELECT 0 AS p UNION ALL SELECT 1) p`, expired, old)
	case "buckets":
		exec(series+`INSERT INTO limit_buckets (key, tat) SELECT '1:number:' || hex(randomblob(8)), CASE WHEN n % 6 = 0 THEN ? ELSE ? END FROM g`,
			expired+live, now.Add(-time.Hour).UnixMilli(), now.Add(time.Hour).UnixMilli())
	case "failures":
		exec(series+`INSERT INTO number_failures (account_id, phone_number, failures, last)
			SELECT ?, '4477' || printf('%08d', n), 1, CASE WHEN n % 6 = 0 THEN ? ELSE ? END FROM g`,
			expired+live, a.ID, old, now.UnixMilli())
	case "orphans":
		exec(series+`INSERT INTO orphan_receipts (carrier_id, state, error, at) SELECT 'o' || n, 'Delivered', '', ? FROM g`, expired, old)
	}
	db.Close()

	s, err = sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Creates at a steady pace beside the purge, each timed.
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		latencies []time.Duration
		stop      = make(chan struct{})
	)
	wg.Go(func() {
		for n := int64(10_000_000); ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			start := time.Now()
			id := fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n)
			v := &verifyd.Verification{ID: id, AccountID: a.ID, PhoneNumber: "447700900123", Country: "GB",
				NumberStatus: verifyd.NumberOn, State: verifyd.StatePending, CodeMAC: make([]byte, 32),
				MaxAttempts: 5, Created: now, ValidUntil: now.Add(10 * time.Minute), Updated: now}
			m := &verifyd.Message{RequestID: id, AccountID: a.ID, To: v.PhoneNumber, From: "m",
				Sealed: make([]byte, 80), NextAttempt: now, Deadline: v.ValidUntil, Created: now}
			if err := s.CreateVerification(t.Context(), v, m, nil); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			latencies = append(latencies, time.Since(start))
			mu.Unlock()
		}
	})
	time.Sleep(200 * time.Millisecond)
	before := s.WriteStats()
	start := time.Now()
	n, err := s.PurgeVerifications(t.Context(), now)
	took := time.Since(start)
	after := s.WriteStats()
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	p := func(q float64) time.Duration {
		return latencies[int(q*float64(len(latencies)-1))].Round(10 * time.Microsecond)
	}
	t.Logf("%s: purged %d verifications in %v; writer busy %v over %d groups; creates meanwhile p50 %v p99 %v max %v (%d)",
		kind, n, took.Round(time.Millisecond), (after.Busy - before.Busy).Round(time.Millisecond), after.Groups-before.Groups,
		p(0.5), p(0.99), p(1), len(latencies))
}
