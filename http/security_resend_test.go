package http

import (
	"encoding/json"
	"testing"
)

// A resend is a new request with a new code (SECURITY.md): it never resets
// the attempts of the number's other requests, or an attacker could send
// again after every four wrong guesses and guess on the first request for
// ever. Each request keeps its own count, and its own code.
func TestResendKeepsEveryOtherRequestsAttempts(t *testing.T) {
	t.Parallel()
	const to = "447979080215"
	e := newEnv(t)
	first, firstCode := e.sendCode(to)
	for i := 1; i <= 4; i++ {
		if _, got := statusOf(t, e, first, wrong(firstCode)); got["status"] != "CodeNotVerified" {
			t.Fatalf("wrong code %d on the first request: %v", i, got)
		}
	}
	second, secondCode := e.sendCode(to)
	if second == first || secondCode == firstCode {
		t.Fatalf("the resend reused the request id or the code: %s %s", second, secondCode)
	}
	if n := attemptsRemaining(t, e, first); n != 1 {
		t.Fatalf("the first request has %d attempts left after the resend, want 1", n)
	}
	if n := attemptsRemaining(t, e, second); n != 5 {
		t.Fatalf("the resend has %d attempts, want 5", n)
	}
	if _, got := statusOf(t, e, first, wrong(firstCode)); got["status"] != "CodeLocked" {
		t.Fatalf("fifth wrong code on the first request after a resend: %v", got)
	}
	if _, got := statusOf(t, e, second, wrong(secondCode)); got["status"] != "CodeNotVerified" {
		t.Fatalf("the first request's lock spilled onto the resend: %v", got)
	}
	if n := attemptsRemaining(t, e, second); n != 4 {
		t.Fatalf("the resend has %d attempts left after one wrong code, want 4", n)
	}
	if _, got := statusOf(t, e, second, firstCode); got["status"] != "CodeNotVerified" {
		t.Fatalf("the first request's code on the resend: %v", got)
	}
	if _, got := statusOf(t, e, second, secondCode); got["status"] != "CodeVerified" {
		t.Fatalf("the resend's own code: %v", got)
	}
}

// attemptsRemaining reads a request's record.
func attemptsRemaining(t *testing.T, e *testEnv, id string) int {
	t.Helper()
	w := e.do("GET", "/webapi/verify/"+id, "")
	var rec struct {
		AttemptsRemaining int `json:"attemptsRemaining"`
	}
	if w.Code != 200 {
		t.Fatalf("GET %s: %d %s", id, w.Code, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	return rec.AttemptsRemaining
}
