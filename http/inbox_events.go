package http

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"verifyd"
	"verifyd/phone"
)

// Defaults of the inbox's event stream. Dev mode only, so simple beats
// clever: each open page polls the store on its own.
const (
	// inboxPoll is how often a stream asks the store for new messages:
	// quick enough to feel live, and one small indexed query per page.
	inboxPoll = 500 * time.Millisecond
	// inboxHeartbeat is how often an idle stream sends a comment, so that
	// proxies keep it open and a vanished client is noticed.
	inboxHeartbeat = 15 * time.Second
	// inboxMaxStreams caps the open streams; a page refused one reads
	// /inbox/messages instead.
	inboxMaxStreams = 32
	// inboxWriteWait bounds one write to a stream. The server's own
	// WriteTimeout counts from the request's start, which a stream
	// outlives, so each write sets its own deadline.
	inboxWriteWait = 10 * time.Second
	// inboxRetryMillis is what a browser waits before reconnecting a
	// stream that ended.
	inboxRetryMillis = 1000
)

// inboxStreams serves GET /inbox/events: the dev inbox as server-sent
// events, so the page shows each message as it arrives without reloading.
//
// A stream polls Store.ListInboxMessages rather than listening to the
// inbox sender in this process: with several servers on one database, any
// of them may have delivered the message. Every message in the newest
// inboxLimit not yet sent on the stream is sent, oldest first, so one that
// commits after a newer one (ids are not commit order across processes) is
// still shown. For the same reason a reconnecting browser's Last-Event-ID
// is not a point to resume after: a message with a lower id may have
// committed since. A new stream sends the whole backlog, and the page skips
// by id what it has.
type inboxStreams struct {
	s         *Server
	poll      time.Duration
	heartbeat time.Duration
	slots     chan struct{} // one per open stream

	mu sync.Mutex
	// stopping has one channel per http.Server seen, closed when that
	// server shuts down: a stream never goes idle, so Shutdown would
	// otherwise wait for it until its deadline.
	stopping map[*http.Server]chan struct{}
}

func newInboxStreams(s *Server) *inboxStreams {
	return &inboxStreams{
		s:         s,
		poll:      inboxPoll,
		heartbeat: inboxHeartbeat,
		slots:     make(chan struct{}, inboxMaxStreams),
		stopping:  map[*http.Server]chan struct{}{},
	}
}

// serve streams one page's inbox, filtered by ?to= like /inbox/messages,
// until the client goes or the server stops.
func (st *inboxStreams) serve(w http.ResponseWriter, r *http.Request) error {
	if r.Method == http.MethodHead {
		// The GET route answers HEAD too. Its body would be thrown away
		// unwritten, so no write would ever fail: a stream served to a
		// HEAD would hold its slot, and the client's keep-alive
		// connection, until the server stops. The headers are the answer.
		setStreamHeaders(w.Header())
		w.WriteHeader(http.StatusOK)
		return nil
	}
	select {
	case st.slots <- struct{}{}:
		defer func() { <-st.slots }()
	default:
		return verifyd.Errorf(verifyd.EUNAVAILABLE, "Too many inbox pages are open; the page reads /inbox/messages instead.")
	}
	ctx := r.Context()
	stop := st.stopOf(r)
	query := r.URL.Query().Get("to")
	to := phone.Normalize(query)
	// Not a number: it matches nothing, rather than everything, but the
	// stream stays open so the page does not fall back to polling.
	none := query != "" && to == ""

	rc := http.NewResponseController(w)
	setStreamHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	send := func() bool {
		// Only a ResponseWriter without a connection (a recorder) lacks
		// deadlines; it needs none.
		_ = rc.SetWriteDeadline(time.Now().Add(inboxWriteWait))
		_, err := w.Write(buf.Bytes())
		buf.Reset()
		return err == nil && rc.Flush() == nil
	}
	buf.WriteString("retry: " + strconv.Itoa(inboxRetryMillis) + "\n\n")
	if !send() {
		return nil
	}

	poll := time.NewTicker(st.poll)
	defer poll.Stop()
	beat := time.NewTicker(st.heartbeat)
	defer beat.Stop()
	seen := map[int64]bool{}
	for {
		if !none {
			ms, err := st.s.cfg.Store.ListInboxMessages(ctx, to, inboxLimit)
			if err != nil {
				if ctx.Err() == nil {
					// The page reconnects after the retry interval; the
					// answer has begun, so the error can only be logged.
					st.s.log.Warn("inbox stream", "request", requestID(ctx), "err", err)
				}
				return nil
			}
			st.newEvents(&buf, ms, seen)
		}
		if buf.Len() > 0 {
			if !send() {
				return nil
			}
			beat.Reset(st.heartbeat)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-stop:
			return nil
		case <-beat.C:
			buf.WriteString(": keep-alive\n\n")
			if !send() {
				return nil
			}
		case <-poll.C:
		}
	}
}

// setStreamHeaders sets the headers of an event stream's answer.
func setStreamHeaders(h http.Header) {
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Accel-Buffering", "no") // nginx would otherwise hold the events back
}

// newEvents writes to buf an event for each message of ms (newest first,
// as the store lists them) not in seen, oldest first, and leaves in seen
// exactly the ids of ms: a message that fell out of the newest inboxLimit
// does not come back.
func (st *inboxStreams) newEvents(buf *bytes.Buffer, ms []*verifyd.InboxMessage, seen map[int64]bool) {
	for i := len(ms) - 1; i >= 0; i-- {
		m := ms[i]
		if seen[m.ID] {
			continue
		}
		b, err := json.Marshal(st.s.openInboxMessage(m))
		if err != nil {
			// Plain strings only; failing to encode one is a programming
			// error.
			panic(err)
		}
		// JSON holds no raw newline, so one data line carries the event.
		buf.WriteString("id: " + strconv.FormatInt(m.ID, 10) + "\ndata: ")
		buf.Write(b)
		buf.WriteString("\n\n")
	}
	clear(seen)
	for _, m := range ms {
		seen[m.ID] = true
	}
}

// stopOf returns the channel closed when the http.Server serving r shuts
// down, registering for that once per server. A request without a server
// (a test calling ServeHTTP directly) ends with its context only.
func (st *inboxStreams) stopOf(r *http.Request) <-chan struct{} {
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if !ok {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	ch, ok := st.stopping[srv]
	if !ok {
		ch = make(chan struct{})
		st.stopping[srv] = ch
		// Every Shutdown call runs the hooks again (a caller may retry
		// one that ran out of time): close once.
		srv.RegisterOnShutdown(sync.OnceFunc(func() { close(ch) }))
	}
	return ch
}
