package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"verifyd"
	"verifyd/metrics"
	"verifyd/phone"
)

// How often maintenance runs: the conversion watch every round, so that a
// block starts within a minute of the tally that shows it, and the purge,
// which walks whole tables, every tenth.
const (
	maintenanceRound = time.Minute
	purgeEvery       = 10
	// slowPurge is how long a purge may take before it is logged even
	// when no verification went.
	slowPurge = time.Second
)

// maintenance is the periodic upkeep of one instance.
type maintenance struct {
	store  verifyd.Store
	now    func() time.Time
	logger *slog.Logger
	m      *metrics.Metrics
	rounds int
}

// maintain runs the periodic upkeep until ctx ends: the conversion watch,
// and the purge of what the retention period and the abuse rules no longer
// keep. With several instances on PostgreSQL only the one holding the
// maintenance lock does a round; the others skip it.
func maintain(ctx context.Context, store verifyd.Store, now func() time.Time, logger *slog.Logger, m *metrics.Metrics) {
	mt := &maintenance{store: store, now: now, logger: logger, m: m}
	tick := time.NewTicker(maintenanceRound)
	defer tick.Stop()
	for {
		if err := mt.turn(ctx); err != nil && ctx.Err() == nil {
			logger.Error("maintenance", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// exclusive is a store shared by instances, of which one at a time does
// the maintenance.
type exclusive interface {
	TryMaintenance(ctx context.Context, fn func(context.Context) error) (bool, error)
}

// turn is this instance's turn at maintenance: a round, unless another
// instance holds the lock. Then the watch gauges show no blocks here, not
// this instance's last round's, since they are read as the max across
// instances and the blocks found then may have ended.
func (mt *maintenance) turn(ctx context.Context) error {
	ex, ok := mt.store.(exclusive)
	if !ok {
		return mt.round(ctx)
	}
	ran, err := ex.TryMaintenance(ctx, mt.round)
	if !ran && err == nil {
		mt.m.Watched(&verifyd.WatchReport{})
	}
	return err
}

// round runs the watch, and the purge every purgeEvery rounds from the
// first.
func (mt *maintenance) round(ctx context.Context) error {
	purge := mt.rounds%purgeEvery == 0
	mt.rounds++
	r, werr := verifyd.RunWatch(ctx, mt.store, mt.now())
	if r != nil {
		logBlocks(ctx, mt.store, r.Started, mt.logger)
	}
	if werr == nil {
		mt.m.Watched(r)
	}
	var perr error
	if purge {
		start := mt.now()
		n, err := mt.store.PurgeVerifications(ctx, start)
		// A purge works through its backlog a chunk at a time, beside the
		// traffic; how long it took is what tells an operator that a
		// backlog (or a slow step) holds the database.
		took := mt.now().Sub(start)
		mt.m.Purged(n, took, err)
		if n > 0 || took >= slowPurge {
			mt.logger.Info("purged verifications past their retention", "count", n, "took", took.Round(time.Millisecond).String())
		}
		if err != nil {
			perr = fmt.Errorf("purge: %w", err)
		}
	}
	return errors.Join(werr, perr)
}

// logBlocks writes one line per block the watch started. A prefix is most
// of a phone number, so the line masks it like a number; verifyd limits
// status shows it to the operator.
func logBlocks(ctx context.Context, store verifyd.AccountStore, started []*verifyd.Block, logger *slog.Logger) {
	if len(started) == 0 {
		return
	}
	names := map[int64]string{}
	if accounts, err := store.ListAccounts(ctx); err == nil {
		for _, a := range accounts {
			names[a.ID] = a.Name
		}
	}
	for _, b := range started {
		msg := "conversion watch: sends blocked"
		if b.Mode != verifyd.WatchOn {
			msg = "conversion watch: would block sends (monitor mode)"
		}
		attrs := []any{"account", names[b.AccountID], "kind", b.Kind, "country", b.Country}
		if b.Kind == verifyd.WatchPrefix {
			attrs = append(attrs, "prefix", phone.Mask(b.Subject))
		}
		attrs = append(attrs, "sends", b.Sends, "verified", b.Verified,
			"until", b.Until.UTC().Format(time.RFC3339), "see", "verifyd limits status")
		logger.Warn(msg, attrs...)
	}
}
