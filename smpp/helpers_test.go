package smpp_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"verifyd"
	"verifyd/smpp"
	"verifyd/smpp/smpptest"
)

// recorder is a verifyd.ReceiptRecorder that keeps what it is given. fail,
// when set, decides the error returned for each receipt; block, when set,
// is waited on before recording.
type recorder struct {
	mu       sync.Mutex
	receipts []verifyd.Receipt
	fail     func(verifyd.Receipt) error
	entered  chan struct{}
	block    chan struct{}
	changed  chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) RecordReceipt(ctx context.Context, rc verifyd.Receipt) error {
	if r.entered != nil {
		r.entered <- struct{}{}
	}
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(rc); err != nil {
			return err
		}
	}
	r.receipts = append(r.receipts, rc)
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

func (r *recorder) all() []verifyd.Receipt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]verifyd.Receipt(nil), r.receipts...)
}

// wait waits until at least n receipts are recorded.
func (r *recorder) wait(t testing.TB, n int) []verifyd.Receipt {
	t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		got, ch := len(r.receipts), r.changed
		r.mu.Unlock()
		if got >= n {
			return r.all()
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("%d receipts recorded, want %d", got, n)
		}
	}
}

// logBuffer is a concurrency-safe buffer for a slog text handler.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testConfig parses url and shortens every timer so tests run in
// milliseconds.
func testConfig(t testing.TB, url string) smpp.Config {
	t.Helper()
	cfg, err := smpp.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	cfg.ReconnectMin = 5 * time.Millisecond
	cfg.ReconnectMax = 50 * time.Millisecond
	cfg.ThrottleMin = 20 * time.Millisecond
	cfg.ThrottleMax = 200 * time.Millisecond
	return cfg
}

// startClient starts a client on cfg and closes it when the test ends.
func startClient(t testing.TB, cfg smpp.Config, rec verifyd.ReceiptRecorder, log *slog.Logger) *smpp.Client {
	t.Helper()
	c := smpp.NewClient(cfg, rec, log)
	c.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

// waitReady waits until the client has a bind up.
func waitReady(t testing.TB, c *smpp.Client) {
	t.Helper()
	waitFor(t, "a bind up", func() bool { return c.Ready() == nil })
}

// waitFor polls cond until it holds or 5 seconds pass. It is used only for
// state the test cannot be told about (the client's own reconnects); the
// assertions themselves never depend on timing.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// newPair starts a fake SMSC and a bound client against it.
func newPair(t testing.TB, query string, edit func(*smpp.Config)) (*smpptest.Server, *smpp.Client, *recorder) {
	t.Helper()
	srv := smpptest.NewServer(t, smpptest.Options{SystemID: "verifyd", Password: "secret1"})
	cfg := testConfig(t, srv.URL("verifyd", "secret1", query))
	if edit != nil {
		edit(&cfg)
	}
	rec := newRecorder()
	c := startClient(t, cfg, rec, nil)
	waitReady(t, c)
	return srv, c, rec
}

var t0 = time.Date(2025, 3, 14, 10, 30, 0, 0, time.UTC)

func sms(text string) *verifyd.SMS {
	return &verifyd.SMS{RequestID: "req-1", To: "447700900123", From: "verifyd", Text: text}
}

func sendErr(t testing.TB, err error) *verifyd.SendError {
	t.Helper()
	var se *verifyd.SendError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *verifyd.SendError", err, err)
	}
	return se
}
