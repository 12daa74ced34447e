package http

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestIdempotencyKeyConcurrentCreatesSendOneCode: many creates with one key
// and one body at once (a client retrying on a timeout while its first try
// still runs) send exactly one code. Each answers the first 202, or 409
// while it runs, or the first 202 replayed once it has answered; never a
// second request id.
func TestIdempotencyKeyConcurrentCreatesSendOneCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 40
	body := `{"to":"447979080215","from":"Test"}`
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		answers = make([]*httptestResult, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			w := e.doWith("POST", "/webapi/verify", body, func(r *http.Request) {
				r.SetBasicAuth(e.user, e.secret)
				r.Header.Set("Idempotency-Key", "retried")
			})
			answers[i] = &httptestResult{w.Code, w.Body.String(), w.Header()}
		})
	}
	close(start)
	wg.Wait()

	var first *httptestResult
	for _, a := range answers {
		if a.code == http.StatusAccepted && a.header.Get("Idempotent-Replayed") == "" {
			if first != nil {
				t.Fatalf("two creates ran under one key:\n%s\n%s", first.body, a.body)
			}
			first = a
		}
	}
	if first == nil {
		t.Fatalf("no create ran: %+v", answers[0])
	}
	for _, a := range answers {
		switch {
		case a == first, a.code == http.StatusConflict:
		case a.code == http.StatusAccepted && a.body == first.body:
		default:
			t.Errorf("answer %d %s %v, want 409 or the first 202 (%s)", a.code, a.body, a.header, first.body)
		}
	}
	ms, err := e.store.ClaimMessages(t.Context(), e.clock(), time.Minute, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 {
		t.Fatalf("%d messages queued under one key, want 1", len(ms))
	}
}

// TestIdempotencyKeyBelongsToItsAccount: another account's create under the
// same key neither replays the first account's answer (its request id and
// number) nor is refused for a body it never sent; it runs as its own.
func TestIdempotencyKeyBelongsToItsAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	user, secret := e.otherAccount("other")
	send := func(user, secret, body string) *httptestResult {
		t.Helper()
		w := e.doWith("POST", "/webapi/verify", body, func(r *http.Request) {
			r.SetBasicAuth(user, secret)
			r.Header.Set("Idempotency-Key", "order-1")
		})
		return &httptestResult{w.Code, w.Body.String(), w.Header()}
	}
	body := `{"to":"447979080215","from":"Test"}`
	first := send(e.user, e.secret, body)
	if first.code != http.StatusAccepted {
		t.Fatalf("first: %d %s", first.code, first.body)
	}
	same := send(user, secret, body)
	if same.code != http.StatusAccepted || same.body == first.body || same.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("the other account, same key and body: %d %s %v, want a 202 of its own", same.code, same.body, same.header)
	}
	other := send(user, secret, `{"to":"447979080216","from":"Test"}`)
	if other.code != http.StatusUnprocessableEntity {
		// Its own key now holds its own first body: that one is 422.
		t.Fatalf("the other account, its key with another body: %d %s, want 422", other.code, other.body)
	}
	user3, secret3 := e.otherAccount("third")
	if w := send(user3, secret3, `{"to":"447979080217","from":"Test"}`); w.code != http.StatusAccepted {
		t.Fatalf("a third account, same key, a body no one sent with it: %d %s, want 202", w.code, w.body)
	}
}
