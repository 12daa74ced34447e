package http

import (
	"strings"
	"testing"
)

// TestInboxAnswersAreNotSniffed checks that every inbox answer says what it
// is and forbids a browser to guess otherwise: a message body is text the
// server did not write, and one holding markup must never be read as a page.
func TestInboxAnswersAreNotSniffed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(cfg *Config) { cfg.Dev = true }))
	e.addInbox("447979080215", "<script>alert(1)</script> 123456", 0)
	for _, c := range []struct{ method, target, ctype string }{
		{"GET", "/inbox", "text/html; charset=utf-8"},
		{"HEAD", "/inbox", "text/html; charset=utf-8"},
		{"GET", "/inbox/messages", "application/json; charset=utf-8"},
		{"GET", "/inbox/messages?to=447979080215", "application/json; charset=utf-8"},
		{"GET", "/inbox/messages?to=nonsense", "application/json; charset=utf-8"},
		{"HEAD", "/inbox/events", "text/event-stream"},
	} {
		w := e.doWith(c.method, c.target, "", nil)
		if w.Code != 200 || w.Header().Get("Content-Type") != c.ctype || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: %d, Content-Type %q, X-Content-Type-Options %q", c.method, c.target, w.Code,
				w.Header().Get("Content-Type"), w.Header().Get("X-Content-Type-Options"))
		}
		if c.target == "/inbox/messages" && !strings.Contains(w.Body.String(), "alert(1)") {
			t.Errorf("GET /inbox/messages: the body is not there: %s", w.Body)
		}
	}
}

// TestInboxOnlyInDevMode checks that a server not in dev mode has no inbox
// routes: they would show every code sent.
func TestInboxOnlyInDevMode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addInbox("447979080215", "Your verification code is 123456", 0)
	for _, target := range []string{"/inbox", "/inbox/messages", "/inbox/messages?to=447979080215", "/inbox/events", "/INBOX/"} {
		w := e.doWith("GET", target, "", nil)
		if w.Code != 404 || strings.Contains(w.Body.String(), "123456") {
			t.Errorf("GET %s without dev mode: %d %s", target, w.Code, w.Body)
		}
	}
}
