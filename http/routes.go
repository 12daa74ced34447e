package http

import "net/http"

// route is one entry of the API. The table below is the single list that
// both the mux registration and the OpenAPI test read, so a route cannot be
// served without being described.
type route struct {
	method  string
	path    string // lowercase, no trailing slash: paths are matched after normalizePath
	handler http.Handler
}

// pattern is the route's ServeMux pattern, which is also its name in logs
// and metrics.
func (rt route) pattern() string { return rt.method + " " + rt.path }

// routeTable lists every route the server answers with cfg as given: the
// inbox only in dev mode, /metrics only when a handler was passed in.
func (s *Server) routeTable() []route {
	if s.metricsOnly {
		return []route{{"GET", "/metrics", s.cfg.Metrics}}
	}
	rs := []route{
		// Comapi Verify.
		{"POST", "/webapi/verify", s.authed(s.handleCreate)},
		{"POST", "/webapi/verify/sendcode", s.authed(s.handleCreate)}, // the PHP sample's path
		{"PUT", "/webapi/verify/{id}/validate", s.authed(s.handleValidate)},
		{"POST", "/webapi/verify/{id}/validate", s.authed(s.handleValidate)},

		// Extensions.
		{"GET", "/webapi/verify/{id}", s.authed(s.handleGet)},
		{"DELETE", "/webapi/verify/{id}", s.authed(s.handleCancel)},
		{"GET", "/healthz", s.handle(s.handleHealth)},
		{"GET", "/readyz", s.handle(s.handleReady)},
		{"GET", "/openapi.json", s.handle(s.handleOpenAPI)},
	}
	if s.cfg.Metrics != nil {
		// No credentials: Prometheus scrapes without them, and operators
		// restrict the route by network policy (or serve it on its own
		// listener instead).
		rs = append(rs, route{"GET", "/metrics", s.cfg.Metrics})
	}
	if s.cfg.Receipts != nil {
		// No account credentials: Kannel cannot send them. Each report
		// carries a token over its reference instead.
		rs = append(rs, route{"GET", s.cfg.Receipts.ReceiptPath(), s.handle(s.handleKannelReceipt)})
	}
	if s.cfg.Dev {
		// No credentials: dev mode runs on a developer's machine, and the
		// page must open in a browser as is. Only under a Host that names
		// this machine directly, so that another site's page cannot rebind
		// its domain name here and read the codes (inbox_host.go).
		rs = append(rs,
			route{"GET", "/inbox", s.handle(s.onlyDirectHosts(s.handleInboxPage))},
			route{"GET", "/inbox/messages", s.handle(s.onlyDirectHosts(s.handleInboxMessages))},
			route{"GET", "/inbox/events", s.handle(s.onlyDirectHosts(newInboxStreams(s).serve))},
		)
	}
	return rs
}

// routes registers the route table on the mux.
func (s *Server) routes() {
	for _, rt := range s.routeTable() {
		s.mux.Handle(rt.pattern(), rt.handler)
	}
}
