package smpp

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"verifyd"
)

// Client is an ESME: it keeps Config.Binds sessions bound to one SMSC,
// spreads submits over them, and records the receipts they bring back. It
// implements verifyd.Sender.
type Client struct {
	cfg     Config
	rec     verifyd.ReceiptRecorder
	log     *slog.Logger
	limiter *rate.Limiter // nil when Config.Rate is 0

	// tx is the bound sessions that can submit, as an immutable slice
	// swapped under mu, so Send picks one without taking a lock.
	tx atomic.Pointer[[]*session]

	mu       sync.Mutex
	all      map[*session]struct{} // every bound session, rx included
	changed  chan struct{}         // closed and replaced when tx changes
	lastErr  error                 // why the last bind attempt failed
	started  bool
	closing  bool
	stop     chan struct{} // closed by Close: bind loops stop reconnecting
	runCtx   context.Context
	cancel   context.CancelFunc // aborts the bind loops' dials and waits
	loops    sync.WaitGroup
	refCount atomic.Uint32 // concatenation references for texts without a request id
	rr       atomic.Uint32 // round robin over the binds

	stats struct {
		throttles, queueFull, reconnects, submitted, receipts atomic.Uint64
	}
}

var _ verifyd.Sender = (*Client)(nil)

// NewClient returns a Client for cfg that passes receipts to rec (when rec is
// nil, receipts are acknowledged and dropped). It does not connect until
// Start. log receives connection events; it never sees the password, a
// message text or a phone number. A nil log discards them.
func NewClient(cfg Config, rec verifyd.ReceiptRecorder, log *slog.Logger) *Client {
	cfg = cfg.withDefaults()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg:     cfg,
		rec:     rec,
		log:     log.With("smsc", cfg.Addr, "system_id", cfg.SystemID),
		all:     make(map[*session]struct{}),
		changed: make(chan struct{}),
		stop:    make(chan struct{}),
	}
	if cfg.Rate > 0 {
		// A burst of one second's worth smooths over scheduling jitter
		// without letting a backlog exceed the rate for long.
		c.limiter = rate.NewLimiter(rate.Limit(cfg.Rate), max(1, int(cfg.Rate)))
	}
	empty := []*session{}
	c.tx.Store(&empty)
	return c
}

// Start binds in the background and keeps every bind up, reconnecting with
// capped, jittered exponential backoff, until Close (or until ctx ends, which
// drops the connections without unbinding). Calling it again does nothing.
func (c *Client) Start(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.closing {
		return
	}
	c.started = true
	c.runCtx = ctx
	ctx, c.cancel = context.WithCancel(ctx)
	roles := []role{roleTRX}
	if c.cfg.Mode == ModeTXRX {
		roles = []role{roleTX, roleRX}
	}
	for i := range c.cfg.Binds {
		for _, r := range roles {
			c.loops.Add(1)
			go c.bindLoop(ctx, i, r)
		}
	}
}

// bindLoop keeps one connection bound.
func (c *Client) bindLoop(ctx context.Context, slot int, r role) {
	defer c.loops.Done()
	log := c.log.With("bind", slot, "role", r.String())
	b := backoff{min: c.cfg.ReconnectMin, max: c.cfg.ReconnectMax, rnd: c.cfg.Rand}
	for attempt := 0; ; attempt++ {
		if c.stopped(ctx) {
			return
		}
		if attempt > 0 {
			c.stats.reconnects.Add(1)
		}
		s, err := c.dial(ctx, slot, r)
		wait := time.Duration(0)
		if err != nil {
			c.setLastErr(err)
			wait = b.next()
			log.Warn("smpp: bind failed", "err", err, "retry_in", wait)
		} else {
			b.reset() // a good bind starts the backoff over
			log.Info("smpp: bound")
			if !c.add(s) {
				// Close came while we were binding: unbind at once.
				ended := make(chan struct{})
				go func() { s.run(); close(ended) }()
				s.shutdown(ctx)
				<-ended
				return
			}
			stopWatch := context.AfterFunc(ctx, func() { s.fail(errClosing) })
			err = s.run()
			stopWatch()
			c.remove(s)
			if c.stopped(ctx) {
				return
			}
			c.setLastErr(err)
			wait = b.next()
			log.Warn("smpp: session ended, reconnecting", "err", err, "retry_in", wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		case <-c.stop:
			t.Stop()
			return
		}
	}
}

// backoff is the capped exponential wait between connection attempts.
type backoff struct {
	min, max, cur time.Duration
	rnd           func() float64
}

// next returns the wait before the next attempt and doubles the one after,
// up to max.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	}
	d := jitter(b.cur, b.rnd)
	b.cur = min(2*b.cur, b.max)
	return d
}

// reset starts over from min, after a bind that worked.
func (b *backoff) reset() { b.cur = 0 }

// jitter spreads a wait over [d/2, d), so binds that dropped together do
// not all come back in the same instant.
func jitter(d time.Duration, rnd func() float64) time.Duration {
	return d/2 + time.Duration(rnd()*float64(d/2))
}

func (c *Client) stopped(ctx context.Context) bool {
	select {
	case <-c.stop:
		return true
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

func (c *Client) setLastErr(err error) {
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
}

// add publishes a bound session; it reports false when Close has begun.
func (c *Client) add(s *session) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.all[s] = struct{}{}
	if s.role.canSubmit() {
		old := *c.tx.Load()
		next := append(append(make([]*session, 0, len(old)+1), old...), s)
		c.tx.Store(&next)
		close(c.changed)
		c.changed = make(chan struct{})
	}
	c.lastErr = nil
	return true
}

func (c *Client) remove(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.all, s)
	old := *c.tx.Load()
	next := make([]*session, 0, len(old))
	for _, x := range old {
		if x != s {
			next = append(next, x)
		}
	}
	if len(next) != len(old) {
		c.tx.Store(&next)
		close(c.changed)
		c.changed = make(chan struct{})
	}
}

// BindError is an SMSC's refusal of a bind (a wrong password answers
// ESME_RINVPASWD). It holds the status only, never the credentials.
type BindError struct {
	Status Status
}

// Error names the refusal; it never quotes the credentials.
func (e *BindError) Error() string { return "smpp: bind refused: " + e.Status.String() }

// dial connects and binds one session. Nothing but the bind goes out until
// its response arrives.
func (c *Client) dial(ctx context.Context, slot int, r role) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return nil, err
	}
	if c.cfg.TLS {
		conf, err := c.tlsConfig()
		if err != nil {
			conn.Close()
			return nil, err
		}
		tc := tls.Client(conn, conf)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("smpp: TLS: %w", err)
		}
		conn = tc
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	br, err := c.bind(conn, r)
	if !stop() || err != nil {
		conn.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, err
	}
	return newSession(c, r, slot, conn, br), nil
}

func (c *Client) bind(conn net.Conn, r role) (*bufio.Reader, error) {
	req := &PDU{
		ID: r.bindID(), Seq: 1,
		SystemID: c.cfg.SystemID, Password: c.cfg.Password, SystemType: c.cfg.SystemType,
		InterfaceVersion: InterfaceVersion,
	}
	b, err := req.MarshalBinary()
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write(b); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 32*1024)
	var buf []byte
	for {
		frame, err := ReadFrame(br, buf)
		if err != nil {
			return nil, fmt.Errorf("smpp: waiting for the bind response: %w", err)
		}
		buf = frame
		p, err := Decode(frame)
		if err != nil {
			return nil, err
		}
		switch {
		case p.ID == EnquireLink:
			// Some SMSCs check the link before answering the bind.
			resp, _ := (&PDU{ID: EnquireLinkResp, Seq: p.Seq}).MarshalBinary()
			if _, err := conn.Write(resp); err != nil {
				return nil, err
			}
			continue
		case p.Seq != 1 || (p.ID != req.ID.Response() && p.ID != GenericNack):
			return nil, fmt.Errorf("smpp: %s while waiting for the bind response", p.ID)
		case p.ID == GenericNack && p.Status == StatusOK:
			// An SMSC without this bind type may nack it (SMPP.md §8).
			return nil, &BindError{Status: StatusInvCmdID}
		case p.Status != StatusOK:
			return nil, &BindError{Status: p.Status}
		}
		return br, nil
	}
}

// tlsConfig verifies the SMSC's certificate against the system roots, or
// against Config.CAFile when set. Verification is never turned off.
func (c *Client) tlsConfig() (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(c.cfg.Addr)
	conf := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if c.cfg.CAFile != "" {
		pem, err := os.ReadFile(c.cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("smpp: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("smpp: CA file %s holds no PEM certificate", c.cfg.CAFile)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

// Ready reports nil when at least one bind can submit.
func (c *Client) Ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closing:
		return errors.New("smpp: client closed")
	case len(*c.tx.Load()) > 0:
		return nil
	case !c.started:
		return errors.New("smpp: client not started")
	case c.lastErr != nil:
		return fmt.Errorf("smpp: not bound: %w", c.lastErr)
	}
	return errors.New("smpp: not bound yet")
}

// Close stops new submits, waits (bounded by ctx and Config.UnbindWait) for
// the responses still outstanding, unbinds every session, waits for each
// unbind_resp (bounded by Config.Timeout) and closes the connections. It
// returns ctx's error when ctx ended first; the connections are closed
// either way.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	close(c.stop)
	sessions := make([]*session, 0, len(c.all))
	for s := range c.all {
		sessions = append(sessions, s)
	}
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()

	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Add(1)
		go func() { defer wg.Done(); s.shutdown(ctx) }()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		// Only now abort a bind still in progress: cancelling earlier
		// would drop the sessions above instead of unbinding them.
		c.mu.Lock()
		if c.cancel != nil {
			c.cancel()
		}
		c.mu.Unlock()
		c.loops.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, s := range sessions {
			s.fail(errClosing)
		}
		return ctx.Err()
	}
}

// Stats is a snapshot of a Client for metrics.
type Stats struct {
	Binds      int    // sessions configured (twice Config.Binds in txrx mode)
	BindsUp    int    // sessions bound now
	Window     int    // window slots over the bound submitting sessions
	InFlight   int    // of which in use: submits waiting for a response
	Throttles  uint64 // ESME_RTHROTTLED answers
	QueueFull  uint64 // ESME_RMSGQFUL answers
	Reconnects uint64 // connection attempts after each bind's first
	Submitted  uint64 // parts the SMSC accepted
	Receipts   uint64 // receipts recorded
}

// Stats returns the Client's current counters.
func (c *Client) Stats() Stats {
	st := Stats{
		Binds:      c.cfg.Binds,
		Throttles:  c.stats.throttles.Load(),
		QueueFull:  c.stats.queueFull.Load(),
		Reconnects: c.stats.reconnects.Load(),
		Submitted:  c.stats.submitted.Load(),
		Receipts:   c.stats.receipts.Load(),
	}
	if c.cfg.Mode == ModeTXRX {
		st.Binds *= 2
	}
	c.mu.Lock()
	st.BindsUp = len(c.all)
	c.mu.Unlock()
	for _, s := range *c.tx.Load() {
		st.Window += cap(s.slots)
		st.InFlight += int(s.out.Load())
	}
	return st
}
