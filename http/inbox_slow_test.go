package http

import (
	"bufio"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// smallBuffers is a listener whose connections keep little unsent data, so
// that a client that stops reading blocks the server's writes at once
// rather than after megabytes.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// waitStreams waits until n streams are being served.
func waitStreams(t *testing.T, st *inboxStreams, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for len(st.slots) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams served, want %d", len(st.slots), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInboxEventsSlowReader checks that a page that stops reading its
// stream holds up neither the server nor the other pages, and that every
// stream's goroutine ends once its page goes, however it went.
func TestInboxEventsSlowReader(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(cfg *Config) { cfg.Dev = true }))
	// Long texts, so that one poll's events fill every buffer between the
	// stream and a client that does not read.
	long := strings.Repeat("x", 1500)
	for i := range 100 {
		e.addInbox("447979080215", "Your verification code is 123456 "+long, time.Duration(i)*time.Millisecond)
	}
	st := newInboxStreams(e.srv)
	st.poll, st.heartbeat = 10*time.Millisecond, 50*time.Millisecond
	ts := httptest.NewUnstartedServer(e.srv.handle(st.serve))
	ts.Listener = smallBuffers{ts.Listener}
	ts.Start()
	t.Cleanup(ts.Close)

	// The slow page: asks for the stream, then never reads.
	slow, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	slow.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := slow.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	waitStreams(t, st, 1)

	// Other pages come and go, and see new messages as they arrive.
	for i := range 3 {
		c := openStream(t, ts.URL, "")
		for range 100 {
			c.next(t)
		}
		m := e.addInbox("33612345678", "Your verification code is 65432"+strconv.Itoa(i), time.Hour+time.Duration(i)*time.Second)
		if ev := c.next(t); ev.id != strconv.FormatInt(m.ID, 10) {
			t.Fatalf("page %d: event %+v, want the new message %d", i, ev, m.ID)
		}
		c.close()
	}
	if _, err := e.srv.cfg.Store.ListInboxMessages(t.Context(), "", 1); err != nil {
		t.Fatalf("the store with a stalled stream: %v", err)
	}

	// A page that was never read from goes: its stream ends too.
	r := bufio.NewReader(slow)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("the slow page's answer: %q %v", line, err)
	}
	slow.Close()
	waitStreams(t, st, 0)
}
