package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// purgeMetrics time the periodic purge. It walks whole tables beside the
// traffic, a chunk at a time: its duration growing from one run to the next
// says a backlog (or a slow step) holds the database, and failures say the
// tables grow past their retention.
type purgeMetrics struct {
	seconds       prometheus.Histogram
	verifications prometheus.Counter
	failures      prometheus.Counter
}

func newPurgeMetrics(reg prometheus.Registerer) *purgeMetrics {
	p := &purgeMetrics{
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "verifyd_purge_seconds",
			Help: "Time one purge of what the retention periods and the abuse rules no longer keep took, failed ones included. " +
				"Only the instance that holds the maintenance lock purges.",
			// From an idle dev database to a backlog of millions of rows.
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}),
		verifications: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verifyd_purged_verifications_total",
			Help: "Verifications (with their messages) deleted by the purge once their account's retention period ended.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verifyd_purge_failures_total",
			Help: "Purges that ended in an error (logged as \"maintenance\"); the next one, ten minutes later, goes on.",
		}),
	}
	reg.MustRegister(p.seconds, p.verifications, p.failures)
	return p
}

// Purged counts one purge: the verifications it deleted (a failed purge
// may have deleted some before it failed), how long it took, and whether
// it failed.
func (m *Metrics) Purged(verifications int, took time.Duration, err error) {
	m.purge.seconds.Observe(took.Seconds())
	if verifications > 0 {
		m.purge.verifications.Add(float64(verifications))
	}
	if err != nil {
		m.purge.failures.Inc()
	}
}
