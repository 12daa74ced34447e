package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestMetricsListenerFollowsTheWireRules: API.md says --metrics-addr may move
// /metrics to its own listener, and its wire rules hold for every route:
// paths match case-insensitively and ignore a trailing slash (section 1), a
// query carrying password= or secret= is refused with 400 CredentialsInQuery
// (section 2), and an unknown route or method is answered as JSON, 405 with
// Allow when the path exists. The listener was a bare ServeMux: GET
// /metrics/ and GET /METRICS were a text "404 page not found", GET
// /metrics?password=x was served 200, and POST /metrics a text 405.
func TestMetricsListenerFollowsTheWireRules(t *testing.T) {
	t.Parallel()
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write([]byte("verifyd_up 1\n"))
	})
	h := metricsListener(metrics, slog.New(slog.DiscardHandler))
	do := func(method, target string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
		return w
	}
	for _, target := range []string{"/metrics", "/metrics/", "/Metrics", "/METRICS/"} {
		if w := do("GET", target); w.Code != http.StatusOK || w.Body.String() != "verifyd_up 1\n" {
			t.Errorf("GET %s: %d %q; want 200 and the metrics", target, w.Code, w.Body)
		}
	}
	for _, target := range []string{"/metrics?password=x", "/metrics?secret=x"} {
		w := do("GET", target)
		var fs []struct{ Property, FailureCode, Details string }
		if w.Code != http.StatusBadRequest || json.Unmarshal(w.Body.Bytes(), &fs) != nil ||
			len(fs) != 1 || fs[0].FailureCode != "CredentialsInQuery" || fs[0].Property != "" {
			t.Errorf("GET %s: %d %q; want 400 CredentialsInQuery", target, w.Code, w.Body)
		}
	}
	for _, c := range []struct {
		method, target string
		status         int
		allow          string
	}{
		{"GET", "/healthz", http.StatusNotFound, ""},
		{"GET", "/webapi/verify", http.StatusNotFound, ""},
		{"POST", "/metrics", http.StatusMethodNotAllowed, "GET, HEAD"},
	} {
		w := do(c.method, c.target)
		var e struct{ Code, Message string }
		if w.Code != c.status || w.Header().Get("Allow") != c.allow ||
			w.Header().Get("Content-Type") != "application/json; charset=utf-8" ||
			json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Code == "" || e.Message == "" {
			t.Errorf("%s %s: %d, Allow %q, Content-Type %q, body %q; want %d as a JSON error, Allow %q",
				c.method, c.target, w.Code, w.Header().Get("Allow"), w.Header().Get("Content-Type"), w.Body, c.status, c.allow)
		}
	}
}
