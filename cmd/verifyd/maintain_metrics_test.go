package main

import (
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"verifyd"
	"verifyd/metrics"
)

// purgeSamples gathers the purge's series from reg.
func purgeSamples(t *testing.T, reg *prometheus.Registry) (runs uint64, purged, failures float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		switch mf.GetName() {
		case "verifyd_purge_seconds":
			runs = m.GetHistogram().GetSampleCount()
		case "verifyd_purged_verifications_total":
			purged = m.GetCounter().GetValue()
		case "verifyd_purge_failures_total":
			failures = m.GetCounter().GetValue()
		}
	}
	return runs, purged, failures
}

// A purge shows at /metrics: that it ran, what it deleted, and that it
// failed, which the log alone tells no alert.
func TestMaintenancePurgeIsCounted(t *testing.T) {
	t.Parallel()
	store := pumpedStore(t)
	later := watchNow.Add(verifyd.DefaultRetention + time.Hour)
	reg := prometheus.NewRegistry()
	mt := &maintenance{store: store, now: func() time.Time { return later },
		logger: slog.New(slog.DiscardHandler), m: metrics.New(reg)}
	if err := mt.round(t.Context()); err != nil {
		t.Fatal(err)
	}
	if runs, purged, failures := purgeSamples(t, reg); runs != 1 || purged != 120 || failures != 0 {
		t.Errorf("after a purge: %d runs, %v purged, %v failures; want 1, 120, 0", runs, purged, failures)
	}

	reg = prometheus.NewRegistry()
	mt = &maintenance{store: failingPurge{store}, now: func() time.Time { return later },
		logger: slog.New(slog.DiscardHandler), m: metrics.New(reg)}
	if err := mt.round(t.Context()); err == nil {
		t.Fatal("round with a failing purge: no error")
	}
	if runs, purged, failures := purgeSamples(t, reg); runs != 1 || purged != 0 || failures != 1 {
		t.Errorf("after a failed purge: %d runs, %v purged, %v failures; want 1, 0, 1", runs, purged, failures)
	}
}
