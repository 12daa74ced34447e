package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"verifyd"
	"verifyd/metrics"
)

// failingPurge is a store whose purge fails.
type failingPurge struct{ verifyd.Store }

func (failingPurge) PurgeVerifications(context.Context, time.Time) (int, error) {
	return 0, errors.New("disk I/O error")
}

// The purge's line says how many verifications went and how long it took,
// and a failed purge is named as such in the maintenance error.
func TestMaintenancePurgeSaysWhatItTookAndWhatFailed(t *testing.T) {
	t.Parallel()
	store := pumpedStore(t)
	var logs syncBuffer
	later := watchNow.Add(verifyd.DefaultRetention + time.Hour)
	mt := &maintenance{store: store, now: func() time.Time { return later },
		logger: slog.New(slog.NewJSONHandler(&logs, nil)), m: metrics.New(prometheus.NewRegistry())}
	if err := mt.round(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"msg":"purged verifications past their retention"`, `"count":120`, `"took":"0s"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log has no %s:\n%s", want, logs.String())
		}
	}

	mt = &maintenance{store: failingPurge{store}, now: func() time.Time { return later },
		logger: slog.New(slog.DiscardHandler), m: metrics.New(prometheus.NewRegistry())}
	if err := mt.round(t.Context()); err == nil || !strings.HasPrefix(err.Error(), "purge: ") {
		t.Fatalf("round with a failing purge: %v, want an error that names the purge", err)
	}
}
