package main

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"verifyd"
	"verifyd/metrics"
)

// Instances on one PostgreSQL database purge one at a time (README: under
// an advisory lock): an instance whose turn comes while another holds the
// lock purges nothing, and purges at its next turn once the lock is free.
// The stores are opened as serve opens them, so that a store that no
// longer takes the lock (maintain finds it by its method) fails here.
func TestMaintenanceOnPostgresPurgesOnOneInstanceAtATime(t *testing.T) {
	t.Parallel()
	dsn := pgDatabase(t, "maintain_one_at_a_time")
	open := func() verifyd.Store {
		t.Helper()
		s, err := openStore(t.Context(), database{kind: "postgres", dsn: dsn})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	first, second := open(), open()
	old := time.Date(2030, 3, 14, 9, 0, 0, 0, time.UTC)
	a := &verifyd.Account{Name: "shop", Created: old}
	if err := first.CreateAccount(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	v := &verifyd.Verification{ID: "0bd57dc3-580c-4c1d-8aee-2ff79bd8633c", AccountID: a.ID, PhoneNumber: "447979080215",
		Country: "GB", NumberStatus: verifyd.NumberOn, State: verifyd.StateExpired, CodeMAC: make([]byte, 32),
		MaxAttempts: verifyd.DefaultMaxAttempts, Created: old, ValidUntil: old.Add(verifyd.DefaultValidity), Updated: old}
	if err := first.CreateVerification(t.Context(), v, nil, nil); err != nil {
		t.Fatal(err)
	}
	now := old.Add(verifyd.DefaultRetention + time.Hour)
	mt := &maintenance{store: second, now: func() time.Time { return now },
		logger: slog.New(slog.DiscardHandler), m: metrics.New(prometheus.NewRegistry())}

	ex, ok := first.(exclusive)
	if !ok {
		t.Fatalf("%T does not take the maintenance lock: every instance would purge at once", first)
	}
	inside, held, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	// Freed before the stores close (cleanups run last first), also when
	// the test fails while the lock is held: Close waits for its connection.
	release := sync.OnceFunc(func() { close(held) })
	t.Cleanup(release)
	go func() {
		_, err := ex.TryMaintenance(context.Background(), func(context.Context) error {
			close(inside)
			<-held
			return nil
		})
		done <- err
	}()
	<-inside
	if err := mt.turn(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := second.FindVerification(t.Context(), a.ID, v.ID); err != nil {
		t.Fatalf("while another instance held the lock: %v, want the verification still there", err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := mt.turn(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := second.FindVerification(t.Context(), a.ID, v.ID); verifyd.ErrorCode(err) != verifyd.ENOTFOUND {
		t.Fatalf("after the lock was freed: %v, want the verification purged", err)
	}
}
