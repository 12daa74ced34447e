package http

import (
	"context"
	"net/http/httptest"
	"strconv"
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

// TestInboxEventsOutliveTheServersTimeouts serves streams under the
// deadlines serve gives every connection (newHTTPServer: a ReadTimeout and
// a WriteTimeout of 30 s, counted from the request's start), here cut to
// 200 ms: a page's stream must go on past them, still carrying new
// messages, not be cut and reconnected at each.
func TestInboxEventsOutliveTheServersTimeouts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(cfg *Config) { cfg.Dev = true }))
	st := newInboxStreams(e.srv)
	st.poll, st.heartbeat = 10*time.Millisecond, 50*time.Millisecond
	ts := httptest.NewUnstartedServer(e.srv.handle(st.serve))
	ts.Config.ReadTimeout, ts.Config.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond
	ts.Start()
	t.Cleanup(ts.Close)
	c := openStream(t, ts.URL, "")
	select {
	case <-c.done:
		t.Fatal("the stream ended at the server's timeouts")
	case <-time.After(time.Second):
	}
	m := e.addInbox("447979080215", "Your verification code is 123456", time.Second)
	if ev := c.next(t); ev.id != strconv.FormatInt(m.ID, 10) {
		t.Fatalf("event %+v, want message %d", ev, m.ID)
	}
}
