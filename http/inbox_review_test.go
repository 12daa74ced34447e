package http

import (
	"context"
	"testing"
	"time"
)

// TestInboxEventsShutdownTwice stops a server that served a stream twice,
// as a caller whose first Shutdown ran out of time may try again: each
// Shutdown runs the server's shutdown hooks anew, and the streams' hook
// must bear being run again (closing its channel twice panicked, taking
// the whole process down in the middle of its graceful stop).
func TestInboxEventsShutdownTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(cfg *Config) { cfg.Dev = true }))
	ts, _ := fastStreams(t, e, 4)
	c := openStream(t, ts.URL, "")
	<-c.comments // the stream is being served
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := ts.Config.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown %d: %v", i+1, err)
		}
		cancel()
	}
	// The hooks run in goroutines of their own: give the second its time.
	time.Sleep(100 * time.Millisecond)
}
