package http

import (
	"context"
	"net/http"
	"time"

	"verifyd"
)

// readyTimeout bounds a readiness check, so a hung database makes /readyz
// answer 503 rather than hang the prober.
const readyTimeout = 2 * time.Second

// handleHealth is GET /healthz: the process is up and serving.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// handleReady is GET /readyz: the database answers and the sender is bound.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	ready := s.cfg.Ready
	if ready == nil {
		ready = s.cfg.Store.Ping
	}
	if err := ready(ctx); err != nil {
		// The cause is for the operator's log; the prober only needs 503.
		s.log.Warn("not ready", "request", requestID(r.Context()), "err", err)
		return verifyd.Errorf(verifyd.EUNAVAILABLE, "not ready")
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}
