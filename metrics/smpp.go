package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"verifyd/smpp"
)

// WatchSMPP registers the SMPP client's state, read from stats at each
// scrape (smpp.Client.Stats), so that nothing is copied between scrapes.
func (m *Metrics) WatchSMPP(stats func() smpp.Stats) {
	m.reg.MustRegister(&smppCollector{stats: stats})
}

var (
	smppBinds      = prometheus.NewDesc("verifyd_smpp_binds", "SMPP sessions configured.", nil, nil)
	smppBindsUp    = prometheus.NewDesc("verifyd_smpp_binds_up", "SMPP sessions bound now.", nil, nil)
	smppWindow     = prometheus.NewDesc("verifyd_smpp_window_slots", "Window slots over the bound submitting sessions.", nil, nil)
	smppInFlight   = prometheus.NewDesc("verifyd_smpp_window_in_use", "Window slots in use: submits waiting for their response.", nil, nil)
	smppThrottles  = prometheus.NewDesc("verifyd_smpp_throttles_total", "ESME_RTHROTTLED answers from the SMSC.", nil, nil)
	smppQueueFull  = prometheus.NewDesc("verifyd_smpp_queue_full_total", "ESME_RMSGQFUL answers from the SMSC.", nil, nil)
	smppReconnects = prometheus.NewDesc("verifyd_smpp_reconnects_total", "Connection attempts after each session's first.", nil, nil)
	smppSubmitted  = prometheus.NewDesc("verifyd_smpp_submitted_total", "Message parts the SMSC accepted.", nil, nil)
	smppReceipts   = prometheus.NewDesc("verifyd_smpp_receipts_total", "Delivery receipts recorded.", nil, nil)
)

// smppCollector turns one Stats snapshot into metrics at scrape time.
// These descriptors are static (the variables above are immutable values,
// not registered state), so they are shared by every collector.
type smppCollector struct {
	stats func() smpp.Stats
}

func (c *smppCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{smppBinds, smppBindsUp, smppWindow, smppInFlight,
		smppThrottles, smppQueueFull, smppReconnects, smppSubmitted, smppReceipts} {
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
	gauge(smppBinds, st.Binds)
	gauge(smppBindsUp, st.BindsUp)
	gauge(smppWindow, st.Window)
	gauge(smppInFlight, st.InFlight)
	counter(smppThrottles, st.Throttles)
	counter(smppQueueFull, st.QueueFull)
	counter(smppReconnects, st.Reconnects)
	counter(smppSubmitted, st.Submitted)
	counter(smppReceipts, st.Receipts)
}
