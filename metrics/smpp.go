package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"verifyd/smpp"
)

// WatchSMPP registers the SMPP client's state, read from stats at each
// scrape (smpp.Client.Stats), so that nothing is copied between scrapes.
func (m *Metrics) WatchSMPP(stats func() smpp.Stats) {
	m.reg.MustRegister(newSMPPCollector(stats))
}

// smppCollector turns one Stats snapshot into metrics at scrape time.
type smppCollector struct {
	stats func() smpp.Stats

	binds, bindsUp, window, inFlight                      *prometheus.Desc
	throttles, queueFull, reconnects, submitted, receipts *prometheus.Desc
}

func newSMPPCollector(stats func() smpp.Stats) *smppCollector {
	return &smppCollector{
		stats:      stats,
		binds:      desc("verifyd_smpp_binds", "SMPP sessions configured."),
		bindsUp:    desc("verifyd_smpp_binds_up", "SMPP sessions bound now."),
		window:     desc("verifyd_smpp_window_slots", "Window slots over the bound submitting sessions."),
		inFlight:   desc("verifyd_smpp_window_in_use", "Window slots in use: submits waiting for their response."),
		throttles:  desc("verifyd_smpp_throttles_total", "ESME_RTHROTTLED answers from the SMSC."),
		queueFull:  desc("verifyd_smpp_queue_full_total", "ESME_RMSGQFUL answers from the SMSC."),
		reconnects: desc("verifyd_smpp_reconnects_total", "Connection attempts after each session's first."),
		submitted:  desc("verifyd_smpp_submitted_total", "Message parts the SMSC accepted."),
		receipts:   desc("verifyd_smpp_receipts_total", "Delivery receipts recorded."),
	}
}

func (c *smppCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.binds, c.bindsUp, c.window, c.inFlight,
		c.throttles, c.queueFull, c.reconnects, c.submitted, c.receipts} {
		ch <- d
	}
}

func (c *smppCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(c.binds, st.Binds)
	gauge(c.bindsUp, st.BindsUp)
	gauge(c.window, st.Window)
	gauge(c.inFlight, st.InFlight)
	counter(c.throttles, st.Throttles)
	counter(c.queueFull, st.QueueFull)
	counter(c.reconnects, st.Reconnects)
	counter(c.submitted, st.Submitted)
	counter(c.receipts, st.Receipts)
}
