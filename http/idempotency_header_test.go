package http

import (
	"net/http"
	"testing"
	"time"
)

// An Idempotency-Key is one value (its draft makes it a single string). Two
// of them, or one left empty (a client whose key variable was empty), were
// taken as the first one or as no key at all, so a client that believed its
// retries safe could send a second code. Both are now refused like any
// other malformed key, and nothing is created.
func TestIdempotencyKeyMustBeOneValue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for name, keys := range map[string][]string{
		"Two":   {"retry-1", "retry-2"},
		"Same":  {"retry-1", "retry-1"},
		"Empty": {""},
	} {
		w := e.doWith("POST", "/webapi/verify", `{"to":"447979080215","from":"Test"}`, func(r *http.Request) {
			r.SetBasicAuth(e.user, e.secret)
			r.Header["Idempotency-Key"] = keys
		})
		if got := failures(t, w); w.Code != http.StatusBadRequest || len(got) != 1 || got[0] != "Idempotency-Key:InvalidJson" {
			t.Errorf("%s (%q): %d %v, want 400 and one failure of Idempotency-Key", name, keys, w.Code, got)
		}
	}
	if ms, err := e.store.ClaimMessages(t.Context(), e.clock(), time.Minute, 10); err != nil || len(ms) != 0 {
		t.Errorf("%d messages queued (%v), want none", len(ms), err)
	}
}
