package http

import (
	"net/http"
	"testing"
	"time"
)

// Retry-After is exact (SECURITY.md): a retry at the moment it names
// passes, one a second sooner is refused. The other tests' waits are whole
// seconds, where rounding down and rounding up agree; here the refusal
// comes 400 ms into a second, so a wait of 599.6 s must be announced as 600
// (599 would send the client back while still refused).
func TestRetryAfterRoundsAPartSecondUp(t *testing.T) {
	t.Parallel()
	const to = "447979080215"
	e := newEnv(t)
	for range 5 {
		e.create(`{"to":"` + to + `","from":"Test"}`)
	}
	e.advance(400 * time.Millisecond)
	// 5 per 10 minutes: the next send may go 10 minutes after the first.
	wantThrottled(t, e.createAs("", "", "", to), "to", "number", 600)
	e.advance(599 * time.Second)
	wantThrottled(t, e.createAs("", "", "", to), "to", "number", 1)
	e.advance(time.Second)
	if w := e.createAs("", "", "", to); w.Code != http.StatusAccepted {
		t.Fatalf("a retry at the moment Retry-After named: %d %s", w.Code, w.Body)
	}
}
