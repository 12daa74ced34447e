package main

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeStopsWithAnInboxPageOpen stops serve --dev while a browser's
// inbox page holds its event stream: a stream never goes idle, so unless
// serve ends it the graceful stop waits out --shutdown-timeout (15 s) for
// it, at every Ctrl-C of a developer who left the page open.
func TestServeStopsWithAnInboxPageOpen(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", s.url+"/inbox/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The stream is being served once its first line has come.
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || !strings.HasPrefix(line, "retry:") {
		t.Fatalf("the stream's first line: %q %v", line, err)
	}
	start := time.Now()
	if err := s.stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("serve took %v to stop with an inbox stream open: the stream held the graceful stop", took)
	}
}
