package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"verifyd/sqlite"
)

// WatchSQLite registers the SQLite writer's counts, read at each scrape
// (sqlite.Store.WriteStats). The writer is one goroutine that runs every
// write of the process: its busy seconds rising as fast as the clock say it
// is the bound, and writes per group say how well commits are shared.
func (m *Metrics) WatchSQLite(stats func() sqlite.WriteStats) {
	m.reg.MustRegister(&sqliteCollector{
		stats:       stats,
		groups:      desc("verifyd_sqlite_commit_groups_total", "Transactions the SQLite writer ran, each committed with one fsync."),
		writes:      desc("verifyd_sqlite_writes_total", "Writes run in those transactions."),
		bulks:       desc("verifyd_sqlite_bulk_runs_total", "Times the waiting writes of one kind ran as one statement."),
		busy:        desc("verifyd_sqlite_writer_busy_seconds_total", "Time the writer spent running transactions, commits included."),
		committing:  desc("verifyd_sqlite_commit_seconds_total", "Of that, time in COMMIT: writing the WAL and waiting for the fsync."),
		checkpoints: desc("verifyd_sqlite_checkpoints_total", "WAL checkpoints run beside the writer."),
		ckptFails:   desc("verifyd_sqlite_checkpoint_failures_total", "Of those, checkpoints that failed (the next one retries)."),
	})
}

func desc(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }

type sqliteCollector struct {
	stats func() sqlite.WriteStats

	groups, writes, bulks, busy, committing, checkpoints, ckptFails *prometheus.Desc
}

func (c *sqliteCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.groups, c.writes, c.bulks, c.busy, c.committing, c.checkpoints, c.ckptFails} {
		ch <- d
	}
}

func (c *sqliteCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	counter(c.groups, float64(st.Groups))
	counter(c.writes, float64(st.Writes))
	counter(c.bulks, float64(st.Bulks))
	counter(c.busy, st.Busy.Seconds())
	counter(c.committing, st.Committing.Seconds())
	counter(c.checkpoints, float64(st.Checkpoints))
	counter(c.ckptFails, float64(st.CheckpointFailures))
}
