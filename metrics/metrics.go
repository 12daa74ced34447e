// Package metrics counts what verifyd does, for Prometheus.
//
// Every metric is named verifyd_... and registered on a registry passed in
// by cmd/verifyd, never on the client library's global one. Labels are
// drawn from small closed sets: route patterns, statuses, ISO country
// codes, limit and state names. No phone number, code or secret ever
// becomes a label: a label value is kept by Prometheus for as long as its
// series lives, where no retention period or log masking reaches it.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"verifyd"
)

// Metrics holds verifyd's metrics. It implements the http package's
// Observer; Messages adds the delivery queue, WatchSMPP the SMPP binds and
// Watched the conversion watch; Purged counts the purge.
// All its methods are safe for concurrent use.
type Metrics struct {
	reg prometheus.Registerer

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	created     *prometheus.CounterVec
	finished    *prometheus.CounterVec
	validations *prometheus.CounterVec
	refused     *prometheus.CounterVec

	handovers *prometheus.CounterVec
	receipts  *prometheus.CounterVec
	toSubmit  prometheus.Histogram

	watch *watchMetrics
	purge *purgeMetrics
}

// New creates verifyd's metrics and registers them on reg. It panics if any
// is already registered there, as that is a wiring mistake.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verifyd_http_requests_total",
			Help: "HTTP requests answered, by route pattern (\"unmatched\" for none) and status.",
		}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "verifyd_http_request_duration_seconds",
			Help: "Time from a request's arrival to its answer, by route pattern.",
			// Spread around the 10 ms p99 target of a create, with room on
			// both sides for a fast validate and a slow disk.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verifyd_verifications_created_total",
			Help: "Verifications committed, by the number's country (ISO 3166-1 alpha-2) and number status.",
		}, []string{"country", "number_status"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verifyd_verifications_finished_total",
			Help: "Verifications that reached a final state, by country and state (Verified, Locked, Expired, Cancelled, NotSent). " +
				"Expired counts only those a validate or a cancel found expired.",
		}, []string{"country", "state"}),
		validations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verifyd_validations_total",
			Help: "Validates that judged a code, by the status answered.",
		}, []string{"status"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verifyd_sends_refused_total",
			Help: "Creates refused by a send limit, by the limit's name (failures: a run of wrong codes to the number; watchPrefix, watchCountry: a conversion watch block).",
		}, []string{"limit"}),
		handovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verifyd_delivery_handovers_total",
			Help: "Messages handed to the sender, by outcome: Submitted, Delivered (the dev inbox, which delivers as it takes), Retry (queued again), Failed or Expired.",
		}, []string{"outcome"}),
		receipts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verifyd_delivery_receipts_total",
			Help: "Final carrier receipts taken, by the delivery state they report. A receipt the carrier sends again " +
				"(its acknowledgement was lost) counts again, though the store records it once.",
		}, []string{"state"}),
		toSubmit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "verifyd_delivery_submit_seconds",
			Help:    "Time from a verification's creation until its message was accepted by the carrier (or the inbox).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800},
		}),
	}
	reg.MustRegister(m.requests, m.latency, m.created, m.finished, m.validations, m.refused,
		m.handovers, m.receipts, m.toSubmit)
	m.watch = newWatchMetrics(reg)
	m.purge = newPurgeMetrics(reg)

	// Series of the closed sets start at zero, so that a rate over them is
	// defined before the first event.
	for _, s := range []verifyd.Status{verifyd.CodeVerified, verifyd.CodeNotVerified, verifyd.CodeLocked, verifyd.CodeExpired} {
		m.validations.WithLabelValues(string(s))
	}
	for _, name := range verifyd.LimitNames() {
		m.refused.WithLabelValues(name)
	}
	for _, o := range []string{outcomeSubmitted, outcomeDelivered, outcomeRetry, outcomeFailed, outcomeExpired} {
		m.handovers.WithLabelValues(o)
	}
	return m
}

// Handler serves the metrics gathered from g (the registry given to New) in
// Prometheus's exposition format. A collector that fails does not hide the
// others.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Request counts one HTTP answer and its latency.
func (m *Metrics) Request(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// Created counts a committed verification. One sent to a dead number is
// finished at once (NotSent), and counted so.
func (m *Metrics) Created(v *verifyd.Verification) {
	m.created.WithLabelValues(country(v), string(v.NumberStatus)).Inc()
	if v.State.Finished() {
		m.finished.WithLabelValues(country(v), string(v.State)).Inc()
	}
}

// Throttled counts a create refused by the named send limit.
func (m *Metrics) Throttled(limit string) {
	if limit == "" {
		limit = "unknown"
	}
	m.refused.WithLabelValues(limit).Inc()
}

// Validated counts a validate's answer, and the verification's end when
// the validate finished it.
func (m *Metrics) Validated(v *verifyd.Verification, status verifyd.Status) {
	m.validations.WithLabelValues(string(status)).Inc()
	if v.State.Finished() {
		m.finished.WithLabelValues(country(v), string(v.State)).Inc()
	}
}

// Cancelled counts a verification a cancel finished, by the state it
// ended in (Expired when its validity had ended before the cancel).
func (m *Metrics) Cancelled(v *verifyd.Verification) {
	m.finished.WithLabelValues(country(v), string(v.State)).Inc()
}

// country is a verification's country label: its region, or ZZ (the code
// libphonenumber uses for "unknown") when it has none.
func country(v *verifyd.Verification) string {
	if v.Country == "" {
		return "ZZ"
	}
	return v.Country
}
