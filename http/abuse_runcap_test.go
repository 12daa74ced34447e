package http

import (
	"testing"
	"time"

	"verifyd"
)

// Once a number's run of wrong codes is at the failures limit, its requests
// still pending take no more guesses: each is locked at its next validate,
// whatever the code, so the run never passes the limit (SECURITY.md: at
// most that many in a row). Refusing new sends alone left every pending
// request its remaining attempts.
func TestRunAtTheLimitLocksThePendingRequests(t *testing.T) {
	t.Parallel()
	const to, other = "447979080215", "447979080216"
	e := newEnv(t, withSettings(func(s *verifyd.Settings) {
		s.Limits = map[string]string{"number": "off", "numberDaily": "off"}
		for _, kv := range [][2]string{{"failures", "3"}, {"failures.cooldown", "5m"}} {
			if err := s.Set(kv[0], kv[1]); err != nil {
				t.Fatal(err)
			}
		}
	}))
	first, firstCode := e.sendCode(to)
	second, secondCode := e.sendCode(to)
	third, thirdCode := e.sendCode(to)
	elsewhere, elsewhereCode := e.sendCode(other)
	for i, id := range []string{first, first, second} {
		code := map[string]string{first: firstCode, second: secondCode}[id]
		if got := e.validateStatus(id, wrongCode(code)); got != "CodeNotVerified" {
			t.Fatalf("wrong code %d: %s", i+1, got)
		}
	}
	// The run is at 3: the right code of a pending request no longer
	// counts, and neither does a wrong one.
	if got := e.validateStatus(third, thirdCode); got != "CodeLocked" {
		t.Fatalf("right code with the run at the limit: %s, want CodeLocked", got)
	}
	if got := e.validateStatus(third, thirdCode); got != "204" {
		t.Fatalf("a locked request answered %s, want 204", got)
	}
	if got := e.validateStatus(first, wrongCode(firstCode)); got != "CodeLocked" {
		t.Fatalf("wrong code with the run at the limit: %s, want CodeLocked", got)
	}
	run, err := e.store.ReadRun(t.Context(), e.account.ID, to)
	if err != nil || run.Failures != 3 {
		t.Fatalf("run %+v (err %v), want 3 wrong codes in a row, no more", run, err)
	}
	if rec := e.getRecord(third); rec.State != verifyd.StateLocked || rec.AttemptsRemaining != 0 {
		t.Fatalf("record %+v, want Locked with no attempts left", rec)
	}
	// Another number's request is not touched.
	if got := e.validateStatus(elsewhere, elsewhereCode); got != "CodeVerified" {
		t.Fatalf("another number: %s", got)
	}
	// Once the cooldown has passed, the run is over.
	e.advance(5 * time.Minute)
	if got := e.validateStatus(second, secondCode); got != "CodeVerified" {
		t.Fatalf("after the cooldown: %s, want CodeVerified", got)
	}
}

// A test number is never refused a send, and its requests are never locked
// by its run.
func TestRunAtTheLimitLeavesTestNumbersAlone(t *testing.T) {
	t.Parallel()
	const to = "447979080216"
	e := newEnv(t, withSettings(func(s *verifyd.Settings) {
		for _, kv := range [][2]string{{"failures", "1"}, {"testNumbers", to + ":code=123456"}} {
			if err := s.Set(kv[0], kv[1]); err != nil {
				t.Fatal(err)
			}
		}
	}))
	first := e.create(`{"to":"` + to + `","from":"Test"}`).RequestID
	second := e.create(`{"to":"` + to + `","from":"Test"}`).RequestID
	if got := e.validateStatus(first, "000000"); got != "CodeNotVerified" {
		t.Fatalf("wrong code: %s", got)
	}
	if got := e.validateStatus(second, "123456"); got != "CodeVerified" {
		t.Fatalf("a test number's right code after a wrong one: %s, want CodeVerified", got)
	}
}
