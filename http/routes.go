package http

// routes lists every route. Paths are matched after normalizePath, so they
// are written lowercase and without a trailing slash.
func (s *Server) routes() {
	// Comapi Verify.
	s.mux.Handle("POST /webapi/verify", s.authed(s.handleCreate))
	s.mux.Handle("POST /webapi/verify/sendcode", s.authed(s.handleCreate)) // the PHP sample's path
	s.mux.Handle("PUT /webapi/verify/{id}/validate", s.authed(s.handleValidate))
	s.mux.Handle("POST /webapi/verify/{id}/validate", s.authed(s.handleValidate))

	// Extensions.
	s.mux.Handle("GET /webapi/verify/{id}", s.authed(s.handleGet))
	s.mux.Handle("DELETE /webapi/verify/{id}", s.authed(s.handleCancel))
	s.mux.Handle("GET /healthz", s.handle(s.handleHealth))
	s.mux.Handle("GET /readyz", s.handle(s.handleReady))

	if s.cfg.Dev {
		// No credentials: dev mode runs on a developer's machine, and the
		// page must open in a browser as is.
		s.mux.Handle("GET /inbox", s.handle(s.handleInboxPage))
		s.mux.Handle("GET /inbox/messages", s.handle(s.handleInboxMessages))
	}
}
