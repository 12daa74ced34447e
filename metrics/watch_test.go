package metrics_test

import (
	"testing"
	"time"

	"verifyd"
)

func TestWatchBlocksAreCountedByKindAndMode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, verifyd.Settings{})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	prefix := &verifyd.Block{Kind: verifyd.WatchPrefix, Subject: "44770090", Country: "GB", Started: now, Until: now.Add(time.Hour), Mode: verifyd.WatchOn}
	country := &verifyd.Block{Kind: verifyd.WatchCountry, Subject: "GB", Country: "GB", Started: now, Until: now.Add(time.Hour), Mode: verifyd.WatchMonitor}
	old := &verifyd.Block{Kind: verifyd.WatchPrefix, Subject: "44770091", Country: "GB", Started: now, Until: now.Add(time.Hour), Mode: verifyd.WatchOn}
	e.m.Watched(&verifyd.WatchReport{Started: []*verifyd.Block{prefix, country}, Active: []*verifyd.Block{prefix, country, old}})

	s := e.scrape()
	want(t, s, "verifyd_watch_blocks_started_total", l("kind", "prefix", "mode", "on"), 1)
	want(t, s, "verifyd_watch_blocks_started_total", l("kind", "country", "mode", "monitor"), 1)
	want(t, s, "verifyd_watch_blocks_started_total", l("kind", "country", "mode", "on"), 0)
	want(t, s, "verifyd_watch_blocks", l("kind", "prefix", "mode", "on"), 2)
	want(t, s, "verifyd_watch_blocks", l("kind", "country", "mode", "monitor"), 1)
	want(t, s, "verifyd_sends_refused_total", l("limit", "watchPrefix"), 0)
	want(t, s, "verifyd_sends_refused_total", l("limit", "failures"), 0)

	// A later run with nothing lasting sets the gauge back to zero.
	e.m.Watched(&verifyd.WatchReport{})
	s = e.scrape()
	want(t, s, "verifyd_watch_blocks", l("kind", "prefix", "mode", "on"), 0)
	want(t, s, "verifyd_watch_blocks_started_total", l("kind", "prefix", "mode", "on"), 1)
}
