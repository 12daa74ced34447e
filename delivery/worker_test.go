package delivery_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"verifyd"
	"verifyd/delivery"
	"verifyd/sqlite"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// plainOpener stands in for the keyring: "sealed" text is the text reversed,
// so a worker that forgot to open would send the wrong text.
type plainOpener struct{}

func (plainOpener) Open(requestID string, sealed []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, errors.New("nothing to open")
	}
	return reverse(sealed), nil
}

func reverse(b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[len(b)-1-i] = b[i]
	}
	return out
}

// sender records hand-overs and answers each from a script.
type sender struct {
	mu     sync.Mutex
	sent   []*verifyd.SMS
	answer func(m *verifyd.SMS, try int) error
	tries  map[string]int
	n      atomic.Int64
}

func (s *sender) Send(ctx context.Context, m *verifyd.SMS) ([]string, error) {
	s.mu.Lock()
	if s.tries == nil {
		s.tries = map[string]int{}
	}
	s.tries[m.RequestID]++
	try := s.tries[m.RequestID]
	s.sent = append(s.sent, m)
	s.mu.Unlock()
	if s.answer != nil {
		if err := s.answer(m, try); err != nil {
			return nil, err
		}
	}
	return []string{fmt.Sprintf("C%d", s.n.Add(1))}, nil
}

func (s *sender) Ready() error { return nil }

func (s *sender) triesOf(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tries[id]
}

type fixture struct {
	store  *sqlite.Store
	clock  *clock
	sender *sender
	worker *delivery.Worker
	stop   func()
	acct   *verifyd.Account
}

func start(t *testing.T, s *sender) *fixture {
	t.Helper()
	return startWith(t, s, s)
}

// startWith starts a worker on snd, which records its hand-overs in s.
func startWith(t *testing.T, snd verifyd.Sender, s *sender) *fixture {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	acct := &verifyd.Account{Name: "app", Created: time.Unix(1_700_000_000, 0)}
	if err := store.CreateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	c := &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	w := delivery.New(delivery.Config{
		Store: store, Sender: snd, Opener: plainOpener{}, Now: c.Now,
		Poll: 5 * time.Millisecond, Lease: time.Minute, MaxBackoff: 8 * time.Second,
	})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { w.Run(runCtx); close(done) }()
	stop := sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	return &fixture{store: store, clock: c, sender: s, worker: w, stop: stop, acct: acct}
}

// queue creates a verification with a message valid for ttl.
func (f *fixture) queue(t *testing.T, id, text string, ttl time.Duration) {
	t.Helper()
	now := f.clock.Now()
	v := &verifyd.Verification{
		ID: id, AccountID: f.acct.ID, PhoneNumber: "447700900123", Country: "GB",
		NumberStatus: verifyd.NumberOn, State: verifyd.StatePending, CodeMAC: []byte("mac"),
		MaxAttempts: 5, Created: now, ValidUntil: now.Add(ttl), Updated: now,
	}
	m := &verifyd.Message{
		RequestID: id, AccountID: f.acct.ID, To: v.PhoneNumber, From: "Test",
		Sealed: reverse([]byte(text)), NextAttempt: now, Deadline: v.ValidUntil, Created: now,
	}
	if err := f.store.CreateVerification(context.Background(), v, m, nil); err != nil {
		t.Fatal(err)
	}
	f.worker.Wake()
}

// waitFor polls the delivery until cond holds; the bound is generous and
// only guards against a hang, it measures nothing.
func (f *fixture) waitFor(t *testing.T, id string, cond func(*verifyd.Delivery) bool) *verifyd.Delivery {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := f.store.FindVerification(context.Background(), f.acct.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		if v.Delivery != nil && cond(v.Delivery) {
			return v.Delivery
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery of %s is %+v", id, v.Delivery)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func state(s verifyd.DeliveryState) func(*verifyd.Delivery) bool {
	return func(d *verifyd.Delivery) bool { return d.State == s }
}

// finalSender is a sender whose Send delivers, as the dev inbox's does.
type finalSender struct{ *sender }

func (finalSender) DeliversOnSend() {}

func TestWorker(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		f := start(t, &sender{})
		for i := range 300 {
			f.queue(t, fmt.Sprintf("req-%03d", i), fmt.Sprintf("Your code is %06d", i), 10*time.Minute)
		}
		for i := range 300 {
			d := f.waitFor(t, fmt.Sprintf("req-%03d", i), state(verifyd.DeliverySubmitted))
			if d.CarrierID == "" {
				t.Fatalf("req-%03d: no carrier id", i)
			}
		}
		f.stop()
		if len(f.sender.sent) != 300 {
			t.Fatalf("sent %d messages, want 300 (each exactly once)", len(f.sender.sent))
		}
		seen := map[string]bool{}
		for _, m := range f.sender.sent {
			var i int
			fmt.Sscanf(m.RequestID, "req-%d", &i)
			if want := fmt.Sprintf("Your code is %06d", i); m.Text != want || m.To != "447700900123" || m.From != "Test" {
				t.Fatalf("sent %+v, want text %q", m, want)
			}
			if seen[m.RequestID] {
				t.Fatalf("%s sent twice", m.RequestID)
			}
			seen[m.RequestID] = true
		}
	})

	t.Run("FinalSenderDelivers", func(t *testing.T) {
		t.Parallel()
		s := &sender{}
		f := startWith(t, finalSender{s}, s)
		f.queue(t, "r1", "Your code is 123456", 10*time.Minute)
		d := f.waitFor(t, "r1", func(d *verifyd.Delivery) bool { return d.State != verifyd.DeliveryQueued })
		if d.State != verifyd.DeliveryDelivered || d.CarrierID == "" {
			t.Fatalf("delivery %+v, want Delivered with its carrier id", d)
		}
	})

	t.Run("TemporaryRetriedWithBackoff", func(t *testing.T) {
		t.Parallel()
		s := &sender{answer: func(m *verifyd.SMS, try int) error {
			if try < 3 {
				return &verifyd.SendError{Kind: verifyd.SendTemporary, Reason: "ESME_RSYSERR"}
			}
			return nil
		}}
		f := start(t, s)
		f.queue(t, "r1", "Your code is 123456", 10*time.Minute)
		for try := 1; try < 3; try++ {
			d := f.waitFor(t, "r1", func(d *verifyd.Delivery) bool { return s.triesOf("r1") == try && d.Error == "ESME_RSYSERR" })
			if d.State != verifyd.DeliveryQueued {
				t.Fatalf("after try %d: %s, want Queued", try, d.State)
			}
			// Not before the backoff: the clock has not moved.
			f.worker.Wake()
			time.Sleep(20 * time.Millisecond)
			if got := s.triesOf("r1"); got != try {
				t.Fatalf("retried before its backoff: %d tries", got)
			}
			f.clock.Add(9 * time.Second)
			f.worker.Wake()
		}
		f.waitFor(t, "r1", state(verifyd.DeliverySubmitted))
	})

	t.Run("PermanentFailsAtOnce", func(t *testing.T) {
		t.Parallel()
		s := &sender{answer: func(*verifyd.SMS, int) error {
			return &verifyd.SendError{Kind: verifyd.SendPermanent, Reason: "ESME_RINVDSTADR"}
		}}
		f := start(t, s)
		f.queue(t, "r1", "Your code is 123456", 10*time.Minute)
		d := f.waitFor(t, "r1", state(verifyd.DeliveryFailed))
		if d.Error != "ESME_RINVDSTADR" {
			t.Fatalf("error %q", d.Error)
		}
		f.clock.Add(time.Minute)
		f.worker.Wake()
		time.Sleep(20 * time.Millisecond)
		if n := s.triesOf("r1"); n != 1 {
			t.Fatalf("%d tries, want 1", n)
		}
	})

	t.Run("ExpiredIsNeverSent", func(t *testing.T) {
		t.Parallel()
		s := &sender{answer: func(*verifyd.SMS, int) error {
			return &verifyd.SendError{Kind: verifyd.SendTemporary, Reason: "ESME_RSYSERR"}
		}}
		f := start(t, s)
		f.queue(t, "r1", "Your code is 123456", 3*time.Second)
		// The first try fails and is queued again; by the next, the
		// deadline has passed.
		f.waitFor(t, "r1", func(d *verifyd.Delivery) bool { return d.Error == "ESME_RSYSERR" })
		f.clock.Add(4 * time.Second)
		f.worker.Wake()
		f.waitFor(t, "r1", state(verifyd.DeliveryExpired))
		if n := s.triesOf("r1"); n != 1 {
			t.Fatalf("%d tries, want 1", n)
		}

		f.stop()
		s2 := &sender{}
		f2 := start(t, s2)
		f2.stop() // queue while no worker runs
		f2.queue(t, "r2", "Your code is 654321", time.Minute)
		f2.clock.Add(2 * time.Minute)
		w := delivery.New(delivery.Config{Store: f2.store, Sender: s2, Opener: plainOpener{}, Now: f2.clock.Now, Poll: 5 * time.Millisecond})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { w.Run(ctx); close(done) }()
		f2.waitFor(t, "r2", state(verifyd.DeliveryExpired))
		cancel()
		<-done
		if n := s2.triesOf("r2"); n != 0 {
			t.Fatalf("handed over after its deadline (%d tries)", n)
		}
	})

	t.Run("BusyQueueDrainsWithoutWakes", func(t *testing.T) {
		t.Parallel()
		s := &sender{answer: func(*verifyd.SMS, int) error {
			time.Sleep(time.Millisecond)
			return nil
		}}
		f := start(t, s)
		f.stop()
		for i := range 40 {
			f.queue(t, fmt.Sprintf("req-%02d", i), "Your code is 123456", 10*time.Minute)
		}
		// Few slots and no poll to speak of: only hand-overs ending can
		// bring the next claims.
		w := delivery.New(delivery.Config{Store: f.store, Sender: s, Opener: plainOpener{}, Now: f.clock.Now,
			Concurrency: 4, Batch: 4, Poll: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { w.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		for i := range 40 {
			f.waitFor(t, fmt.Sprintf("req-%02d", i), state(verifyd.DeliverySubmitted))
		}
	})

	t.Run("StopWaitsForHandOvers", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		entered := make(chan struct{}, 10)
		s := &sender{answer: func(*verifyd.SMS, int) error {
			entered <- struct{}{}
			<-release
			return nil
		}}
		f := start(t, s)
		f.queue(t, "r1", "Your code is 123456", 10*time.Minute)
		<-entered
		stopped := make(chan struct{})
		go func() { f.stop(); close(stopped) }()
		select {
		case <-stopped:
			t.Fatal("Run returned while a hand-over was under way")
		case <-time.After(50 * time.Millisecond):
		}
		close(release)
		<-stopped
		f.waitFor(t, "r1", state(verifyd.DeliverySubmitted))
	})
}

// The worker's log lines must never hold a message's text (it carries the
// code) or the number it goes to, on any outcome: success, a temporary
// failure that will be retried, a permanent refusal.
func TestWorkerLogsNoTextOrNumber(t *testing.T) {
	t.Parallel()
	texts := map[string]string{
		"ok":   "Your code is 418203",
		"temp": "Your code is 739516",
		"perm": "Your code is 260847",
	}
	s := &sender{answer: func(m *verifyd.SMS, _ int) error {
		switch m.RequestID {
		case "temp":
			return &verifyd.SendError{Kind: verifyd.SendTemporary, Reason: "ESME_RSYSERR"}
		case "perm":
			return &verifyd.SendError{Kind: verifyd.SendPermanent, Reason: "ESME_RINVDSTADR"}
		}
		return nil
	}}
	f := start(t, s)
	f.stop()
	for id, text := range texts {
		f.queue(t, id, text, 10*time.Minute)
	}
	var logs bytes.Buffer // the handler serialises writes; read only after Run returns
	w := delivery.New(delivery.Config{Store: f.store, Sender: s, Opener: plainOpener{}, Now: f.clock.Now,
		Poll: 5 * time.Millisecond, Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	f.waitFor(t, "ok", state(verifyd.DeliverySubmitted))
	f.waitFor(t, "temp", func(d *verifyd.Delivery) bool { return d.State == verifyd.DeliveryQueued && d.Error == "ESME_RSYSERR" })
	f.waitFor(t, "perm", state(verifyd.DeliveryFailed))
	cancel()
	<-done

	out := logs.String()
	// The failures were logged, so the check below looks at real lines.
	for _, msg := range []string{"message refused", "message will be retried"} {
		if !strings.Contains(out, msg) {
			t.Fatalf("no %q line in the log:\n%s", msg, out)
		}
	}
	secrets := []string{"447700900123", "7700900123"}
	for _, text := range texts {
		secrets = append(secrets, text, strings.TrimPrefix(text, "Your code is "))
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		for _, secret := range secrets {
			if strings.Contains(line, secret) {
				t.Errorf("a log line holds %q: %s", secret, line)
			}
		}
	}
}

// partialClaimStore returns its first leased messages together with an
// error, as the PostgreSQL store does when a later expiry round of a claim
// fails after an earlier round leased messages.
type partialClaimStore struct {
	verifyd.MessageStore
	failed atomic.Bool
}

func (s *partialClaimStore) ClaimMessages(ctx context.Context, now time.Time, lease time.Duration, max int) ([]*verifyd.Message, error) {
	ms, err := s.MessageStore.ClaimMessages(ctx, now, lease, max)
	if err == nil && len(ms) > 0 && s.failed.CompareAndSwap(false, true) {
		return ms, errors.New("second expiry round: timeout")
	}
	return ms, err
}

// TestClaimedMessagesReturnedWithAnErrorAreDelivered: messages a claim
// leased are the worker's even when the claim also reports an error;
// dropping them left each waiting a whole lease before anyone sent it.
func TestClaimedMessagesReturnedWithAnErrorAreDelivered(t *testing.T) {
	s := &sender{}
	f := start(t, s)
	f.stop()
	f.queue(t, "r1", "Your code is 123456", 10*time.Minute)
	w := delivery.New(delivery.Config{Store: &partialClaimStore{MessageStore: f.store}, Sender: s,
		Opener: plainOpener{}, Now: f.clock.Now, Poll: 5 * time.Millisecond, Lease: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for s.triesOf("r1") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a message the claim leased was not handed over")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// resultStore keeps the results the worker finishes.
type resultStore struct {
	verifyd.MessageStore
	mu      sync.Mutex
	results []verifyd.MessageResult
}

func (s *resultStore) FinishMessages(ctx context.Context, rs []verifyd.MessageResult) error {
	s.mu.Lock()
	s.results = append(s.results, rs...)
	s.mu.Unlock()
	return s.MessageStore.FinishMessages(ctx, rs)
}

// TestResultsNameTheirClaim: each result carries the attempt its claim
// counted, so that the store can refuse it once a later claim has taken
// the message (the stale-result case of the store conformance suite).
func TestResultsNameTheirClaim(t *testing.T) {
	s := &sender{}
	f := start(t, s)
	f.stop()
	f.queue(t, "r1", "Your code is 123456", 10*time.Minute)
	rs := &resultStore{MessageStore: f.store}
	w := delivery.New(delivery.Config{Store: rs, Sender: s, Opener: plainOpener{}, Now: f.clock.Now,
		Poll: 5 * time.Millisecond, Lease: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rs.mu.Lock()
		n := len(rs.results)
		rs.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no result recorded")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if r := rs.results[0]; r.RequestID != "r1" || r.Attempt != 1 {
		t.Fatalf("result %+v, want request r1 of attempt 1", r)
	}
}

// downStore refuses FinishMessages for its first seconds, as a database
// that restarts does.
type downStore struct {
	verifyd.MessageStore
	until   time.Time
	refused atomic.Int64
}

func (s *downStore) FinishMessages(ctx context.Context, rs []verifyd.MessageResult) error {
	if time.Now().Before(s.until) {
		s.refused.Add(1)
		return verifyd.Errorf(verifyd.EUNAVAILABLE, "database unavailable")
	}
	return s.MessageStore.FinishMessages(ctx, rs)
}

// TestOutcomeRecordedAfterAnOutageWithinTheLease: a hand-over whose outcome
// cannot be recorded while the database is away is recorded once it is back,
// within the lease, not dropped after a few tries: dropped, the message is
// claimed again when its lease runs out and its text sent a second time.
func TestOutcomeRecordedAfterAnOutageWithinTheLease(t *testing.T) {
	t.Parallel()
	s := &sender{}
	f := start(t, s)
	f.stop()
	f.queue(t, "r1", "Your code is 123456", 10*time.Minute)
	ds := &downStore{MessageStore: f.store, until: time.Now().Add(4 * time.Second)}
	w := delivery.New(delivery.Config{Store: ds, Sender: s, Opener: plainOpener{}, Now: f.clock.Now,
		Poll: 5 * time.Millisecond, Lease: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	f.waitFor(t, "r1", state(verifyd.DeliverySubmitted))
	if n := s.triesOf("r1"); n != 1 || ds.refused.Load() == 0 {
		t.Fatalf("handed over %d times, %d records refused; want once, recorded after the outage", n, ds.refused.Load())
	}
}
