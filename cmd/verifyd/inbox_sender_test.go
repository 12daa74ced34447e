package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// serve's default sender is the inbox, which sends nothing to a phone, and
// only --dev shows it. A server started without --dev and without --sms
// answered every create 202, recorded every message Delivered and said
// nothing of it but "sms":"inbox" in its start-up line; it now warns.
func TestServeWarnsThatTheInboxReachesNoPhone(t *testing.T) {
	t.Parallel()
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan string, 1)
	done := make(chan error, 1)
	key := strings.Repeat("ab", 32)
	e := &env{
		getenv:  func(k string) string { return map[string]string{"VERIFYD_SECRET_KEY": key}[k] },
		stdout:  &stdout,
		stderr:  &stderr,
		started: func(url string) { started <- url },
	}
	args := []string{"serve", "--addr", "127.0.0.1:0", "--db", "sqlite:" + filepath.Join(t.TempDir(), "v.db")}
	go func() { done <- runWith(ctx, args, e) }()
	select {
	case <-started:
	case err := <-done:
		cancel()
		t.Fatalf("serve stopped at once: %v\n%s", err, stderr.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if log := stderr.String(); !strings.Contains(log, `"level":"WARN","msg":"no message reaches a phone`) ||
		!strings.Contains(log, "--sms") {
		t.Errorf("serve with the inbox sender and no --dev logged:\n%s\nwant a warning that no message reaches a phone, naming --sms", log)
	}
	// With --dev the inbox is the point: no warning.
	if log := startServer(t).stderr.String(); strings.Contains(log, "no message reaches a phone") {
		t.Errorf("serve --dev warned of the inbox:\n%s", log)
	}
}
