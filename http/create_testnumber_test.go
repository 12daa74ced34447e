package http

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"verifyd"
	outbox "verifyd/delivery" // the worker; "delivery" is a type here
)

// testNumbers configures the account's test numbers as the command line
// would.
func testNumbers(value string) envOption {
	return withSettings(func(s *verifyd.Settings) {
		if err := s.Set("testNumbers", value); err != nil {
			panic(err)
		}
	})
}

// recordingSender remembers every number it was asked to text.
type recordingSender struct {
	mu sync.Mutex
	to []string
}

func (s *recordingSender) Send(_ context.Context, m *verifyd.SMS) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.to = append(s.to, m.To)
	return []string{"carrier-" + m.RequestID}, nil
}

func (s *recordingSender) Ready() error { return nil }

func (s *recordingSender) sent() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.to)
}

// getRecord reads GET /webapi/verify/{id}.
func (e *testEnv) getRecord(id string) record {
	e.t.Helper()
	w := e.do("GET", "/webapi/verify/"+id, "")
	if w.Code != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", id, w.Code, w.Body)
	}
	var rec record
	decodeInto(e.t, w, &rec)
	return rec
}

func TestTestNumberFixedCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testNumbers("447979081001:code=123456:status=Off:delivery=Undeliverable"))
	vc := e.create(`{"to":"+44 7979 081001","from":"Test"}`)
	if vc.Status != verifyd.CodeNotVerified || vc.NumberStatus != verifyd.NumberOff {
		t.Fatalf("answer %+v, want CodeNotVerified with the configured numberStatus Off", vc)
	}
	rec := e.getRecord(vc.RequestID)
	if d := rec.Delivery; d == nil || d.State != verifyd.DeliveryUndeliverable || d.MessageID == nil || *d.MessageID != "test-"+vc.RequestID || d.Error == nil {
		t.Fatalf("delivery %+v, want the configured Undeliverable from a test carrier id", d)
	}
	if w := e.validate(vc.RequestID, "654321"); w.Code != 200 {
		t.Fatalf("wrong code: %d %s", w.Code, w.Body)
	}
	if code, got := statusOf(t, e, vc.RequestID, "123456"); code != 200 || got["status"] != "CodeVerified" {
		t.Fatalf("the fixed code: %d %v", code, got)
	}
	// Every request to the number gets the same code; each stays its own.
	vc2 := e.create(`{"to":"447979081001","from":"Test"}`)
	if code, got := statusOf(t, e, vc2.RequestID, "123456"); code != 200 || got["status"] != "CodeVerified" {
		t.Fatalf("the fixed code on a second request: %d %v", code, got)
	}
	e.noLeaks("123456", "447979081001")
}

func TestTestNumberDeadIsNotSent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testNumbers("447979081002:status=Dead"))
	vc := e.create(`{"to":"447979081002","from":"Test"}`)
	if vc.Status != verifyd.CodeNotSent || vc.NumberStatus != verifyd.NumberDead {
		t.Fatalf("answer %+v, want CodeNotSent and Dead", vc)
	}
	if rec := e.getRecord(vc.RequestID); rec.State != verifyd.StateNotSent || rec.Delivery != nil {
		t.Fatalf("record %+v, want NotSent without a delivery", rec)
	}
	if w := e.validate(vc.RequestID, "000000"); w.Code != http.StatusNoContent {
		t.Fatalf("validate: %d, want 204", w.Code)
	}
}

func TestTestNumberDeliveryOutcomes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testNumbers("447979081010:code=111111:delivery=Delivered,"+
		"447979081011:code=111111:delivery=Undeliverable,447979081012:code=111111:delivery=Failed,"+
		"447979081013:code=111111:delivery=Expired,447979081014:code=111111:delivery=Submitted,"+
		"12015550123:code=111111:status=NotProvisioned"))
	for _, c := range []struct {
		to    string
		state verifyd.DeliveryState
	}{
		{"447979081010", verifyd.DeliveryDelivered},
		{"447979081011", verifyd.DeliveryUndeliverable},
		{"447979081012", verifyd.DeliveryFailed},
		{"447979081013", verifyd.DeliveryExpired},
		{"447979081014", verifyd.DeliverySubmitted},
		{"12015550123", verifyd.DeliveryDelivered},
	} {
		t.Run(string(c.state)+c.to[len(c.to)-2:], func(t *testing.T) {
			vc := e.create(`{"to":"` + c.to + `","from":"Test"}`)
			rec := e.getRecord(vc.RequestID)
			if rec.Delivery == nil || rec.Delivery.State != c.state || rec.State != verifyd.StatePending {
				t.Fatalf("record %+v delivery %+v, want Pending with delivery %s", rec, rec.Delivery, c.state)
			}
		})
	}
}

func TestTestNumberSkipsLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testNumbers("447979081003:code=123456"), withSettings(func(s *verifyd.Settings) {
		s.Limits = map[string]string{"number": "1/10m", "accountDaily": "2/1d"}
	}))
	for range 3 {
		e.create(`{"to":"447979081003","from":"Test"}`)
	}
	// The limits are on: real numbers are refused once they are used up,
	// and the test sends above took none of the account's daily two.
	e.create(`{"to":"447979080215","from":"Test"}`)
	if w := e.do("POST", "/webapi/verify", `{"to":"447979080215","from":"Test"}`); w.Code != 400 {
		t.Fatalf("second send to a real number: %d %s, want Throttled", w.Code, w.Body)
	}
	e.create(`{"to":"447979080216","from":"Test"}`)
}

func TestTestNumberBlockedLandline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testNumbers("447979081004:code=123456:status=NotProvisioned"),
		withSettings(func(s *verifyd.Settings) { s.BlockLandlines = true }))
	w := e.do("POST", "/webapi/verify", `{"to":"447979081004","from":"Test"}`)
	if got := failures(t, w); w.Code != 400 || !slices.Equal(got, []string{"to:" + verifyd.FailNumberTypeNotAllowed}) {
		t.Fatalf("%d %v, want the account's landline rule applied to the configured status", w.Code, got)
	}
}

// A delivery worker over the same store texts the real number and never
// the test numbers, whatever their outcome.
func TestTestNumberNeverReachesTheSender(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testNumbers("447979081005:code=123456:delivery=Failed,447979081006:code=123456"))
	var ids []string
	for _, to := range []string{"447979081005", "447979081006", "447979080215"} {
		ids = append(ids, e.create(`{"to":"`+to+`","from":"Test"}`).RequestID)
	}
	snd := &recordingSender{}
	w := outbox.New(outbox.Config{Store: e.store, Sender: snd, Opener: e.keyring, Now: e.clock, Poll: 5 * time.Millisecond})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for e.getRecord(ids[2]).Delivery.State != verifyd.DeliverySubmitted && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// Past the codes' validity too: a held message would be due by now.
	e.advance(11 * time.Minute)
	time.Sleep(50 * time.Millisecond)
	stop()
	<-done
	// Delivery is at least once, so the real number may appear more than
	// once; a test number never may.
	got := snd.sent()
	if !slices.Contains(got, "447979080215") || slices.ContainsFunc(got, func(to string) bool { return to != "447979080215" }) {
		t.Fatalf("the sender got %v, want only the real number", got)
	}
	if d := e.getRecord(ids[0]).Delivery; d.State != verifyd.DeliveryFailed {
		t.Fatalf("test number delivery %+v, want its configured Failed", d)
	}
}

// failingFinish is a store whose FinishMessages always fails.
type failingFinish struct{ verifyd.Store }

func (failingFinish) FinishMessages(context.Context, []verifyd.MessageResult) error {
	return errors.New("database away")
}

// Even when the outcome cannot be recorded, the held message is never
// claimed: at its deadline it expires instead.
func TestTestNumberMessageHeldWhenOutcomeLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testNumbers("447979081007:code=123456"),
		withConfig(func(cfg *Config) { cfg.Store = failingFinish{cfg.Store} }))
	if w := e.do("POST", "/webapi/verify", `{"to":"447979081007","from":"Test"}`); w.Code != 500 {
		t.Fatalf("create: %d %s, want 500 when the outcome cannot be recorded", w.Code, w.Body)
	}
	for _, at := range []time.Duration{0, 5 * time.Minute, 10*time.Minute - time.Millisecond, 10 * time.Minute, time.Hour} {
		ms, err := e.store.ClaimMessages(context.Background(), t0.Add(at), time.Minute, 10)
		if err != nil || len(ms) != 0 {
			t.Fatalf("claim at +%v: %d messages, err %v; want none", at, len(ms), err)
		}
	}
}
