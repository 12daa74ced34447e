package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"verifyd"
)

// watchMetrics counts the conversion watch's blocks. Labels are the kind
// (prefix or country) and the mode the block started in (on or monitor),
// never the prefix or country itself: a prefix is most of a phone number.
type watchMetrics struct {
	started *prometheus.CounterVec
	active  *prometheus.GaugeVec
}

func newWatchMetrics(reg prometheus.Registerer) *watchMetrics {
	w := &watchMetrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verifyd_watch_blocks_started_total",
			Help: "Blocks the conversion watch started on a number prefix or a country that too few sends verified, " +
				"by kind and by the account's mode (on refuses sends, monitor only reports).",
		}, []string{"kind", "mode"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "verifyd_watch_blocks",
			Help: "Blocks lasting at this instance's last run of the conversion watch, by kind and mode they started in. " +
				"Only the instance that holds the maintenance lock runs the watch: take the max across instances.",
		}, []string{"kind", "mode"}),
	}
	reg.MustRegister(w.started, w.active)
	for _, k := range []verifyd.WatchKind{verifyd.WatchPrefix, verifyd.WatchCountry} {
		for _, m := range []verifyd.WatchMode{verifyd.WatchOn, verifyd.WatchMonitor} {
			w.started.WithLabelValues(string(k), string(m))
			w.active.WithLabelValues(string(k), string(m))
		}
	}
	return w
}

// Watched counts what a run of the conversion watch found.
func (m *Metrics) Watched(r *verifyd.WatchReport) {
	for _, b := range r.Started {
		m.watch.started.WithLabelValues(string(b.Kind), string(b.Mode)).Inc()
	}
	counts := map[[2]string]int{}
	for _, b := range r.Active {
		counts[[2]string{string(b.Kind), string(b.Mode)}]++
	}
	for _, k := range []verifyd.WatchKind{verifyd.WatchPrefix, verifyd.WatchCountry} {
		for _, mode := range []verifyd.WatchMode{verifyd.WatchOn, verifyd.WatchMonitor} {
			m.watch.active.WithLabelValues(string(k), string(mode)).Set(float64(counts[[2]string{string(k), string(mode)}]))
		}
	}
}
