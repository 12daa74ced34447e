package postgres_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// createWithKey sends a create with an Idempotency-Key to instance node.
func (p *apiPair) createWithKey(node int, key, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/webapi/verify", strings.NewReader(body))
	r.SetBasicAuth(p.account.Name, p.secret)
	r.Header.Set("Idempotency-Key", key)
	w := httptest.NewRecorder()
	p.servers[node%2].ServeHTTP(w, r)
	return w
}

// Creates with one key and one body at once through two instances (a
// client's retries landing on both behind a load balancer) send exactly one
// code: one create runs, and every other answer is 409 while it runs or its
// 202 replayed.
func TestRaceIdempotencyKeyAcrossInstances(t *testing.T) {
	t.Parallel()
	p := newAPIPair(t)
	body := `{"to":"447979080215","from":"Test"}`
	for round := range 4 {
		key := fmt.Sprintf("retried-%d", round)
		answers := make([]*httptest.ResponseRecorder, 30)
		parallel(len(answers), func(i int) { answers[i] = p.createWithKey(i+round, key, body) })
		var first *httptest.ResponseRecorder
		for _, w := range answers {
			if w.Code == http.StatusAccepted && w.Header().Get("Idempotent-Replayed") == "" {
				if first != nil {
					t.Fatalf("round %d: two creates ran under one key:\n%s\n%s", round, first.Body, w.Body)
				}
				first = w
			}
		}
		if first == nil {
			t.Fatalf("round %d: no create ran: %d %s", round, answers[0].Code, answers[0].Body)
		}
		for _, w := range answers {
			if w != first && w.Code != http.StatusConflict && (w.Code != http.StatusAccepted || w.Body.String() != first.Body.String()) {
				t.Errorf("round %d: answer %d %s, want 409 or the first 202 (%s)", round, w.Code, w.Body, first.Body)
			}
		}
		p.advance(time.Minute) // out of the number limit's way
	}
	var messages int
	if err := connect(t, p.dsn).QueryRow(context.Background(), "SELECT count(*) FROM messages").Scan(&messages); err != nil {
		t.Fatal(err)
	}
	if messages != 4 {
		t.Fatalf("%d messages queued for 4 keys, want 4", messages)
	}
}
