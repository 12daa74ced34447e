package http

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"verifyd"
)

// sseEvent is one event of a text/event-stream.
type sseEvent struct {
	id  string
	msg inboxMessage
}

// sseClient reads one event stream in the background.
type sseClient struct {
	resp     *http.Response
	events   chan sseEvent
	comments chan string
	cancel   context.CancelFunc
	done     chan struct{} // closed when the stream ends
}

// openStream GETs url as a browser's EventSource would, and fails the test
// unless the answer is a stream.
func openStream(t *testing.T, url string, lastEventID string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c := &sseClient{resp: resp, events: make(chan sseEvent, 200), comments: make(chan string, 200), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		var data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data != "" {
					if err := json.Unmarshal([]byte(data), &ev.msg); err != nil {
						t.Errorf("event data %q: %v", data, err)
					}
					c.events <- ev
				}
				ev, data = sseEvent{}, ""
			case strings.HasPrefix(line, ":"):
				select {
				case c.comments <- line:
				default:
				}
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	t.Cleanup(c.close)
	return c
}

func (c *sseClient) close() {
	c.cancel()
	c.resp.Body.Close()
	<-c.done
}

// next waits for the next event.
func (c *sseClient) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev := <-c.events:
		return ev
	case <-c.done:
		t.Fatal("the stream ended")
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
	return sseEvent{}
}

// none checks that no event comes for a while.
func (c *sseClient) none(t *testing.T, wait time.Duration) {
	t.Helper()
	select {
	case ev := <-c.events:
		t.Fatalf("unexpected event %+v", ev)
	case <-time.After(wait):
	}
}

// addInbox puts a message into the inbox as the dev sender would, with its
// text sealed, created at the given offset from t0.
func (e *testEnv) addInbox(to, text string, at time.Duration) *verifyd.InboxMessage {
	e.t.Helper()
	id := "inbox-" + strconv.Itoa(int(at))
	m := &verifyd.InboxMessage{RequestID: id, To: to, From: "Test", Sealed: e.keyring.Seal(id, []byte(text)), Created: t0.Add(at)}
	if err := e.store.AddInboxMessages(context.Background(), []*verifyd.InboxMessage{m}); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// fastStreams serves the inbox stream of e's server with quick polls and
// heartbeats, so a test waits milliseconds instead of half-seconds.
func fastStreams(t *testing.T, e *testEnv, max int) (*httptest.Server, *inboxStreams) {
	t.Helper()
	st := newInboxStreams(e.srv)
	st.poll, st.heartbeat = 10*time.Millisecond, 50*time.Millisecond
	st.slots = make(chan struct{}, max)
	ts := httptest.NewServer(e.srv.handle(st.serve))
	t.Cleanup(ts.Close)
	return ts, st
}

func TestInboxEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(cfg *Config) { cfg.Dev = true }))
	a := e.addInbox("447979080215", "Your verification code is 111111", time.Second)
	b := e.addInbox("33612345678", "Your verification code is 222222", 2*time.Second)

	t.Run("BacklogThenNewOnesThroughTheRoute", func(t *testing.T) {
		ts := httptest.NewServer(e.srv)
		defer ts.Close()
		c := openStream(t, ts.URL+"/Inbox/Events/", "")
		first, second := c.next(t), c.next(t)
		if first.id != strconv.FormatInt(a.ID, 10) || second.id != strconv.FormatInt(b.ID, 10) {
			t.Fatalf("backlog ids %s, %s; want %d then %d (oldest first)", first.id, second.id, a.ID, b.ID)
		}
		want := inboxMessage{ID: first.id, RequestID: a.RequestID, To: "447979080215", From: "Test",
			Body: "Your verification code is 111111", Created: timestamp(t0.Add(time.Second))}
		if first.msg != want {
			t.Fatalf("event %+v, want %+v", first.msg, want)
		}
		m := e.addInbox("447979080215", "Your verification code is 333333", 3*time.Second)
		if ev := c.next(t); ev.id != strconv.FormatInt(m.ID, 10) || ev.msg.Body != "Your verification code is 333333" {
			t.Fatalf("new message event %+v", ev)
		}
		c.close()
	})

	ts, _ := fastStreams(t, e, 4)
	t.Run("ReconnectGetsTheWholeBacklog", func(t *testing.T) {
		// The page had b but not a: with several servers on PostgreSQL,
		// a can commit after b though its id is lower. The page skips by
		// id what it has, so the stream sends the backlog again whatever
		// the Last-Event-ID.
		c := openStream(t, ts.URL, strconv.FormatInt(b.ID, 10))
		for _, m := range []*verifyd.InboxMessage{a, b} {
			if ev := c.next(t); ev.id != strconv.FormatInt(m.ID, 10) {
				t.Fatalf("event %+v after Last-Event-ID %d, want message %d", ev, b.ID, m.ID)
			}
		}
	})
	t.Run("FilteredByNormalisedNumber", func(t *testing.T) {
		c := openStream(t, ts.URL+"?to=%2B33%206%2012%2034%2056%2078", "")
		if ev := c.next(t); ev.msg.To != "33612345678" {
			t.Fatalf("event %+v", ev)
		}
		c.none(t, 100*time.Millisecond)
		nonsense := openStream(t, ts.URL+"?to=nonsense", "")
		nonsense.none(t, 100*time.Millisecond)
	})
	t.Run("LateCommitOfAnOlderMessageStillSent", func(t *testing.T) {
		c := openStream(t, ts.URL+"?to=447979080215", "")
		for range 2 {
			c.next(t)
		}
		// Another node's clock was behind: the message lists below the
		// newest, yet the page has not seen it.
		old := e.addInbox("447979080215", "Your verification code is 444444", 0)
		if ev := c.next(t); ev.id != strconv.FormatInt(old.ID, 10) {
			t.Fatalf("event %+v, want the late message %d", ev, old.ID)
		}
	})
	t.Run("KeepAliveWhenIdle", func(t *testing.T) {
		c := openStream(t, ts.URL+"?to=449999999999", "")
		select {
		case <-c.comments:
		case <-time.After(5 * time.Second):
			t.Fatal("no keep-alive comment on an idle stream")
		}
	})
}

func TestInboxEventsCapped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(cfg *Config) { cfg.Dev = true }))
	ts, _ := fastStreams(t, e, 1)
	c := openStream(t, ts.URL, "")
	resp, err := http.Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a stream over the cap: %d, want 503 (the page then polls)", resp.StatusCode)
	}
	// A page that goes frees its stream.
	c.close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(ts.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slot of a closed stream was never freed: %d", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestInboxEventsEndOnShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(cfg *Config) { cfg.Dev = true }))
	ts, _ := fastStreams(t, e, 4)
	c := openStream(t, ts.URL, "")
	<-c.comments // the stream is being served
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := ts.Config.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a stream open: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Shutdown took %v: the open stream held it", took)
	}
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream outlived the server")
	}
}

func TestInboxPageCSP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(cfg *Config) { cfg.Dev = true }))
	w := e.doWith("GET", "/inbox", "", nil)
	csp := w.Header().Get("Content-Security-Policy")
	if strings.Contains(csp, "unsafe") || !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Fatalf("CSP %q is not strict", csp)
	}
	page := w.Body.String()
	for _, tag := range []string{"script", "style"} {
		_, rest, _ := strings.Cut(page, "<"+tag+">")
		content, _, ok := strings.Cut(rest, "</"+tag+">")
		if !ok {
			t.Fatalf("the page has no <%s>", tag)
		}
		sum := sha256.Sum256([]byte(content))
		if want := tag + "-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, want) {
			t.Fatalf("CSP %q does not allow the page's own %s (%s)", csp, tag, want)
		}
	}
	if m := regexp.MustCompile(`\s(on[a-z]+|style)=`).FindString(page); m != "" {
		t.Fatalf("the page has an inline %q attribute, which the CSP blocks", m)
	}
}

// TestInboxEventsHeadEnds asks for the stream with HEAD, as a link checker
// or a monitor might (the GET route answers HEAD too): the answer is the
// stream's headers, and then the request is over, so that it holds no
// stream slot and its keep-alive connection can carry the next request.
func TestInboxEventsHeadEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(cfg *Config) { cfg.Dev = true }))
	ts := httptest.NewServer(e.srv)
	t.Cleanup(ts.Close)
	// Shutdown ends the streams still open, so that a failure here does not
	// leave Close waiting for them.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		ts.Config.Shutdown(ctx)
	})
	client := ts.Client()
	for i := range inboxMaxStreams + 1 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "HEAD", ts.URL+"/inbox/events", nil)
		resp, err := client.Do(req)
		cancel()
		if err != nil {
			t.Fatalf("HEAD number %d: %v (the one before still holds its connection)", i+1, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("HEAD: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	// Every slot is still free for a page.
	c := openStream(t, ts.URL+"/inbox/events", "")
	c.close()
}
