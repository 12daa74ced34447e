package http

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The inbox is served without credentials, so the Host a request names is
// all that tells a developer's own browser tab from a page elsewhere whose
// domain name was rebound to the developer's machine: the inbox answers
// only to names a browser reaches this server by directly, and to the host
// --addr names (InboxHosts).
func TestInboxHosts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(cfg *Config) {
		cfg.Dev = true
		cfg.InboxHosts = []string{"verifyd.dev.example"}
	}))
	hosts := []struct {
		host string
		ok   bool
	}{
		{"127.0.0.1", true},
		{"127.0.0.1:8080", true},
		{"10.1.2.3:8080", true},
		{"[::1]", true},
		{"[::1]:8080", true},
		{"[fe80::1%25eth0]:8080", true},
		{"localhost", true},
		{"localhost:8080", true},
		{"LocalHost.:8080", true},
		{"app.localhost:8080", true},
		{"devbox", true},
		{"devbox:8080", true},
		{"verifyd.dev.example:8080", true}, // the host --addr names
		{"Verifyd.Dev.Example", true},
		{"", false},
		{"example.com", false},
		{"attacker.example:8080", false},
		{"127.0.0.1.attacker.example", false},
		{"localhost.attacker.example:8080", false},
		{"devbox.attacker.example", false},
		{"dev.example:8080", false},
		{"[::1", false},
	}
	for _, target := range []string{"/inbox", "/inbox/messages?to=447979080215", "/inbox/events"} {
		for _, h := range hosts {
			ctx, cancel := context.WithCancel(context.Background())
			w := &cancelOnWrite{httptest.NewRecorder(), cancel}
			r := httptest.NewRequest("GET", target, nil).WithContext(ctx)
			r.Host = h.host
			e.srv.ServeHTTP(w, r)
			cancel()
			switch {
			case h.ok && w.Code != http.StatusOK:
				t.Errorf("%s, Host %q: %d %s, want 200", target, h.host, w.Code, w.Body)
			case !h.ok && w.Code != http.StatusForbidden:
				t.Errorf("%s, Host %q: %d %s, want 403", target, h.host, w.Code, w.Body)
			case !h.ok:
				var got errorBody
				decodeInto(t, w.ResponseRecorder, &got)
				if got.Code != "forbidden" || got.Message == "" {
					t.Errorf("%s, Host %q: %s", target, h.host, w.Body)
				}
			}
		}
	}
}

// The API routes carry their own credentials, and are served under whatever
// name an operator puts in front of them: the Host stays theirs.
func TestAPIRoutesIgnoreTheHost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(cfg *Config) { cfg.Dev = true }))
	for _, host := range []string{"attacker.example", "verify.example.com:443", "127.0.0.1:8080"} {
		setHost := func(r *http.Request) { r.Host = host; r.SetBasicAuth(e.user, e.secret) }
		w := e.doWith("POST", "/webapi/verify", `{"to":"447979080215","from":"Test"}`, setHost)
		if w.Code != http.StatusAccepted {
			t.Fatalf("create, Host %q: %d %s", host, w.Code, w.Body)
		}
		var vc verifyCode
		decodeInto(t, w, &vc)
		if w := e.doWith("GET", "/webapi/verify/"+vc.RequestID, "", setHost); w.Code != http.StatusOK {
			t.Fatalf("read, Host %q: %d %s", host, w.Code, w.Body)
		}
		if w := e.doWith("PUT", "/webapi/verify/"+vc.RequestID+"/validate", `{"code":"`+e.code(vc.RequestID)+`"}`, setHost); w.Code != http.StatusOK {
			t.Fatalf("validate, Host %q: %d %s", host, w.Code, w.Body)
		}
		for _, open := range []string{"/healthz", "/readyz", "/openapi.json"} {
			if w := e.doWith("GET", open, "", func(r *http.Request) { r.Host = host }); w.Code != http.StatusOK {
				t.Fatalf("%s, Host %q: %d %s", open, host, w.Code, w.Body)
			}
		}
	}
}
