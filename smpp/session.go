package smpp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// role is what one connection is bound as.
type role int

const (
	roleTRX role = iota // bind_transceiver
	roleTX              // bind_transmitter
	roleRX              // bind_receiver
)

func (r role) bindID() CommandID {
	switch r {
	case roleTX:
		return BindTransmitter
	case roleRX:
		return BindReceiver
	}
	return BindTransceiver
}

func (r role) String() string {
	switch r {
	case roleTX:
		return "tx"
	case roleRX:
		return "rx"
	}
	return "trx"
}

// canSubmit reports whether submits may go over a connection of this role.
func (r role) canSubmit() bool { return r != roleRX }

// Session errors. Each fails the requests waiting on the session; none of
// them means the SMSC refused a message.
var (
	errConnLost   = errors.New("smpp: connection lost")
	errTimeout    = errors.New("smpp: no response in time")
	errDeadLink   = errors.New("smpp: enquire_link unanswered, link dead")
	errUnbound    = errors.New("smpp: SMSC unbound")
	errClosing    = errors.New("smpp: session closing")
	errGiveUp     = errors.New("smpp: throttled past the deadline")
	errMalformedR = errors.New("smpp: malformed response")
)

// result is the outcome of one request: the response's status and
// message_id, or err when no usable response came.
type result struct {
	status    Status
	messageID string
	err       error
}

// call is a request waiting for its response: want is the response's
// command id. The channel has room for one result so the reader never
// blocks on a waiter.
type call struct {
	ch   chan result
	want CommandID
}

var callPool = sync.Pool{New: func() any { return &call{ch: make(chan result, 1)} }}

// bufPool holds encode buffers, so the submit path allocates nothing per PDU
// for its wire form.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// session is one bound connection: a reader goroutine that matches responses
// to waiting requests by sequence number, a keepalive goroutine, receipt
// workers, and a buffered writer shared by every sender under a mutex and
// flushed by the last writer in line, so a burst of submits leaves in one
// TCP segment while a lone one is not delayed.
type session struct {
	c     *Client
	role  role
	conn  net.Conn
	r     *bufio.Reader
	log   *slog.Logger
	epoch time.Time // monotonic origin for the atomics below

	wmu      sync.Mutex
	w        *bufio.Writer
	wwaiting atomic.Int32 // writers queued on wmu or writing
	sealed   bool         // under wmu: unbind_resp went out, nothing may follow

	slots chan struct{} // the window: one token per request in flight
	// out counts the submits sent and not yet answered; a slot is also
	// held while its part waits for the rate, which out leaves aside.
	out atomic.Int32

	mu       sync.Mutex
	pending  map[uint32]*call
	seq      uint32 // last sequence number used
	closing  bool   // unbinding: no new requests
	dead     bool   // connection gone: pending failed, no new requests
	drained  chan struct{}
	deadErr  error
	gateOpen chan struct{} // closed (and replaced) when resendQ drops to 0
	pause    time.Duration // current throttle pause; 0 after a success

	pauseEnd atomic.Int64 // monotonic ns when the throttle pause ends
	resendQ  atomic.Int32 // throttled parts that go before any other
	lastRead atomic.Int64 // monotonic ns of the last PDU read

	done     chan struct{} // closed when the connection is gone
	receipts chan *PDU
}

func newSession(c *Client, r role, slot int, conn net.Conn, br *bufio.Reader) *session {
	s := &session{
		c:        c,
		role:     r,
		conn:     conn,
		r:        br,
		log:      c.log.With("bind", slot, "role", r.String()),
		epoch:    time.Now(),
		w:        bufio.NewWriterSize(conn, 32*1024),
		slots:    make(chan struct{}, c.cfg.Window),
		pending:  make(map[uint32]*call, c.cfg.Window+4),
		seq:      1, // the bind used 1
		gateOpen: make(chan struct{}),
		done:     make(chan struct{}),
		receipts: make(chan *PDU, c.cfg.Window),
	}
	s.lastRead.Store(s.mono())
	return s
}

// mono is the session's monotonic clock in nanoseconds. Timers and pauses
// run on real time (configured short in tests); only what goes into PDUs
// uses the injected Config.Now.
func (s *session) mono() int64 { return int64(time.Since(s.epoch)) }

// run serves the connection until it ends and returns why.
func (s *session) run() error {
	var wg sync.WaitGroup
	wg.Add(1 + s.c.cfg.ReceiptWorkers)
	go func() { defer wg.Done(); s.keepalive() }()
	for range s.c.cfg.ReceiptWorkers {
		go func() { defer wg.Done(); s.receiptWorker() }()
	}
	err := s.readLoop()
	s.fail(err)
	wg.Wait()
	return s.deadErr
}

// fail ends the session once: it closes the connection and fails every
// waiting request with err, whose outcome is then unknown.
func (s *session) fail(err error) {
	s.mu.Lock()
	if s.dead {
		s.mu.Unlock()
		return
	}
	s.dead = true
	s.deadErr = err
	pending := s.pending
	s.pending = nil
	if s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
	s.mu.Unlock()
	s.conn.Close()
	for _, c := range pending {
		c.ch <- result{err: errConnLost}
	}
	close(s.done)
}

// readLoop is the only reader of the connection.
func (s *session) readLoop() error {
	var (
		buf []byte
		p   PDU
	)
	for {
		frame, err := ReadFrame(s.r, buf)
		if err != nil {
			s.mu.Lock()
			dead, closing := s.dead, s.closing
			s.mu.Unlock()
			if dead || closing {
				return errClosing
			}
			if errors.Is(err, ErrFraming) {
				s.log.Warn("smpp: closing session: framing lost", "err", err)
				return err
			}
			return fmt.Errorf("%w: %v", errConnLost, err)
		}
		buf = frame
		s.lastRead.Store(s.mono())
		if err := p.decode(frame); err != nil {
			s.malformed(frame, err)
			continue
		}
		if err := s.dispatch(&p); err != nil {
			return err
		}
	}
}

// malformed handles a PDU whose framing is sound but whose body is not: a
// request gets a generic_nack and the session goes on; a response fails its
// request.
func (s *session) malformed(frame []byte, err error) {
	id := CommandID(uint32(frame[4])<<24 | uint32(frame[5])<<16 | uint32(frame[6])<<8 | uint32(frame[7]))
	seq := uint32(frame[12])<<24 | uint32(frame[13])<<16 | uint32(frame[14])<<8 | uint32(frame[15])
	s.log.Warn("smpp: malformed PDU", "command", id.String(), "err", err)
	if id.IsResponse() {
		s.deliver(seq, id, result{err: errMalformedR})
		return
	}
	st := StatusInvCmdLen
	if errors.Is(err, errTLVShort) {
		st = StatusInvOptParStream
	}
	s.writePDU(&PDU{ID: GenericNack, Status: st, Seq: seq})
}

// dispatch acts on one PDU from the SMSC. A non-nil error ends the session.
func (s *session) dispatch(p *PDU) error {
	if p.ID.IsResponse() {
		r := result{status: p.Status, messageID: p.MessageID}
		if !s.deliver(p.Seq, p.ID, r) {
			s.log.Debug("smpp: response to no waiting request", "command", p.ID.String(), "seq", p.Seq)
		}
		return nil
	}
	switch p.ID {
	case EnquireLink:
		// Answered here and now, never queued behind submits: the window
		// may be full precisely because the SMSC is checking on us.
		s.writePDU(&PDU{ID: EnquireLinkResp, Seq: p.Seq})
	case Unbind:
		// unbind_resp is the last PDU out (SMPP.md §8): a submit or a
		// deliver_sm_resp written after it would reach an SMSC that has
		// ended the session. run closes the connection behind it.
		s.writeLast(&PDU{ID: UnbindResp, Seq: p.Seq})
		s.log.Info("smpp: SMSC unbound the session")
		return errUnbound
	case DeliverSM, DataSM:
		// The recorder may take a database commit: hand the PDU to the
		// receipt workers so responses keep flowing meanwhile. p is
		// reused by the reader; its slices are fresh per decode, so a
		// shallow copy is safe.
		cp := new(PDU)
		*cp = *p
		select {
		case s.receipts <- cp:
		case <-s.done:
		}
	case AlertNotification:
		// Has no response by definition.
	default:
		s.writePDU(&PDU{ID: GenericNack, Status: StatusInvCmdID, Seq: p.Seq})
	}
	return nil
}

// deliver hands r, from a response with command id id, to the request
// waiting on seq, if any. Only the request's own response or a generic_nack
// with an error status answers it (SMPP.md §11.3); anything else under its
// sequence number fails it as malformed, so that neither a generic_nack
// with status 0 nor, say, an enquire_link_resp passes for an accepted
// submit_sm.
func (s *session) deliver(seq uint32, id CommandID, r result) bool {
	s.mu.Lock()
	c, ok := s.pending[seq]
	if ok {
		delete(s.pending, seq)
		s.checkDrained()
	}
	s.mu.Unlock()
	if ok {
		if r.err == nil && id != c.want && (id != GenericNack || r.status == StatusOK) {
			s.log.Warn("smpp: wrong response to a request", "command", id.String(), "want", c.want.String())
			r = result{err: errMalformedR}
		}
		c.ch <- r
	}
	return ok
}

// checkDrained signals Close once no request is left. s.mu is held.
func (s *session) checkDrained() {
	if s.closing && len(s.pending) == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
}

// writePDU encodes p and writes it, flushing when no other writer is
// queued behind. A write error ends the session.
func (s *session) writePDU(p *PDU) error {
	bp := bufPool.Get().(*[]byte)
	b, err := p.AppendBinary((*bp)[:0])
	if err != nil {
		*bp = b
		bufPool.Put(bp)
		return err
	}
	err = s.write(b)
	*bp = b
	bufPool.Put(bp)
	return err
}

func (s *session) write(b []byte) error {
	s.wwaiting.Add(1)
	s.wmu.Lock()
	if s.sealed {
		s.wwaiting.Add(-1)
		s.wmu.Unlock()
		// Not written: a request fails as errClosing, so Send tries
		// another bind.
		return errClosing
	}
	s.writeDeadline()
	_, err := s.w.Write(b)
	if s.wwaiting.Add(-1) == 0 && err == nil {
		err = s.w.Flush()
	}
	s.wmu.Unlock()
	if err != nil {
		// Returned as errConnLost too, so request waits for the result
		// fail hands every pending call, as for any lost connection.
		err = fmt.Errorf("%w: %v", errConnLost, err)
		s.fail(err)
	}
	return err
}

// writeDeadline bounds the write about to be made, s.wmu held. A peer that
// stops reading fills the socket buffers and then blocks the write: without
// a bound, the writer (a submit, or the keepalive, whose own timer starts
// only once its enquire_link is out) would wait for the kernel to give up on
// the connection, many minutes later, with every other writer queued behind
// it. A write that takes the response timeout means the link is dead.
func (s *session) writeDeadline() {
	s.conn.SetWriteDeadline(time.Now().Add(s.c.cfg.Timeout))
}

// writeLast writes p and flushes it as the session's last PDU: every
// write after it is refused.
func (s *session) writeLast(p *PDU) {
	b, err := p.AppendBinary(nil)
	if err != nil {
		return
	}
	s.wmu.Lock()
	s.sealed = true
	s.writeDeadline()
	_, err = s.w.Write(b)
	if err == nil {
		err = s.w.Flush()
	}
	s.wmu.Unlock()
	if err != nil {
		s.fail(fmt.Errorf("%w: %v", errConnLost, err))
	}
}

// register reserves a sequence number for a request with command id id.
// Numbers wrap from 0x7FFFFFFF to 1 and skip any still waiting for a
// response.
func (s *session) register(id CommandID, internal bool) (uint32, *call, error) {
	c := callPool.Get().(*call)
	c.want = id.Response()
	s.mu.Lock()
	if s.dead || (s.closing && !internal) {
		s.mu.Unlock()
		callPool.Put(c)
		return 0, nil, errClosing
	}
	for {
		s.seq = nextSeq(s.seq)
		if _, busy := s.pending[s.seq]; !busy {
			break
		}
	}
	seq := s.seq
	s.pending[seq] = c
	s.mu.Unlock()
	return seq, c, nil
}

// nextSeq returns the sequence number after seq.
func nextSeq(seq uint32) uint32 {
	if seq >= MaxSeq {
		return 1
	}
	return seq + 1
}

// forget withdraws a request that stopped waiting. It reports false when
// a result was already handed over, which the caller must then drain.
func (s *session) forget(seq uint32, c *call) bool {
	s.mu.Lock()
	cur, ok := s.pending[seq]
	if ok && cur == c {
		delete(s.pending, seq)
		s.checkDrained()
		s.mu.Unlock()
		return true
	}
	s.mu.Unlock()
	return false
}

// request sends p (its Seq is assigned here) and waits for the response,
// at most the configured timeout. Internal requests (enquire_link, unbind)
// go out even while closing and never take a window slot; submits take one
// before calling.
func (s *session) request(ctx context.Context, p *PDU, internal bool, onWritten func()) (result, error) {
	seq, c, err := s.register(p.ID, internal)
	if err != nil {
		return result{}, err
	}
	p.Seq = seq
	err = s.writePDU(p)
	if onWritten != nil {
		onWritten()
	}
	if err != nil && !errors.Is(err, errConnLost) {
		// An encoding error: nothing was written.
		if s.forget(seq, c) {
			callPool.Put(c)
		}
		return result{}, err
	}
	timer := time.NewTimer(s.c.cfg.Timeout)
	var r result
	gaveUp := false
	select {
	case r = <-c.ch:
	case <-timer.C:
		r.err, gaveUp = errTimeout, true
	case <-ctx.Done():
		r.err, gaveUp = ctx.Err(), true
	}
	timer.Stop()
	if gaveUp && !s.forget(seq, c) {
		r = <-c.ch // the response won the race: use it
	}
	callPool.Put(c)
	if r.err != nil {
		return result{}, r.err
	}
	return r, nil
}

// acquire takes a window slot, waiting while the window is full.
func (s *session) acquire(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return errConnLost
	}
}

func (s *session) release() { <-s.slots }

// alive reports whether the connection is still up.
func (s *session) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// paused reports whether the session is in a throttle pause.
func (s *session) paused() bool { return s.pauseEnd.Load() > s.mono() }

// gate waits until a part may be sent: the throttle pause is over and, for a
// part that was not itself throttled, no throttled part is still waiting to
// go first. deadline (monotonic ns, 0 for none) bounds the wait: a pause
// that would end after it returns errGiveUp at once, and so does ctx's
// deadline passing during the wait.
func (s *session) gate(ctx context.Context, priority bool, deadline int64) error {
	for {
		now := s.mono()
		end := s.pauseEnd.Load()
		if end <= now && (priority || s.resendQ.Load() == 0) {
			return nil
		}
		if end > now {
			if deadline != 0 && end > deadline {
				return errGiveUp
			}
			t := time.NewTimer(time.Duration(end - now))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return gateCtxErr(ctx)
			case <-s.done:
				t.Stop()
				return errConnLost
			}
			continue
		}
		s.mu.Lock()
		ch := s.gateOpen
		s.mu.Unlock()
		if s.resendQ.Load() == 0 {
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return gateCtxErr(ctx)
		case <-s.done:
			return errConnLost
		}
	}
}

// gateCtxErr is gate's error when ctx ends while a part waits on the
// throttle. At its deadline the part was throttled past it (errGiveUp),
// whether or not the pause could be seen to outlast it beforehand: a pause
// ending just at the deadline, or the throttled parts ahead being held up,
// is the same refusal by the SMSC, not a fault of the link.
func gateCtxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", errGiveUp, ctx.Err())
	}
	return ctx.Err()
}

// throttled records an ESME_RTHROTTLED or ESME_RMSGQFUL answer (st): it
// starts a pause, or, when
// the pause is not over yet (the other parts in flight being refused too),
// leaves it as it is; the pause doubles only on consecutive episodes. The
// caller now holds a resend ticket and must give it back with unticket.
func (s *session) throttled(st Status) {
	s.mu.Lock()
	now := s.mono()
	if s.pauseEnd.Load() <= now {
		cfg := &s.c.cfg
		if s.pause == 0 {
			s.pause = cfg.ThrottleMin
		} else {
			s.pause = min(2*s.pause, cfg.ThrottleMax)
		}
		s.pauseEnd.Store(now + int64(s.pause))
		s.log.Warn("smpp: SMSC did not accept a submit yet, pausing the bind", "status", st.String(), "pause", s.pause)
	}
	s.resendQ.Add(1)
	if st == StatusMsgQFul {
		s.c.stats.queueFull.Add(1)
	} else {
		s.c.stats.throttles.Add(1)
	}
	s.mu.Unlock()
}

// unticket gives back a throttled part's place at the head of the line.
func (s *session) unticket() {
	if s.resendQ.Add(-1) == 0 {
		s.mu.Lock()
		close(s.gateOpen)
		s.gateOpen = make(chan struct{})
		s.mu.Unlock()
	}
}

// accepted notes a successful submit: the next throttle pause starts short.
func (s *session) accepted() {
	if s.pauseEnd.Load() == 0 {
		return // never throttled: skip the lock on the hot path
	}
	s.mu.Lock()
	s.pause = 0
	s.mu.Unlock()
}

// keepalive sends enquire_link after EnquireLink of silence from the SMSC;
// no answer within Timeout means the link is dead.
func (s *session) keepalive() {
	cfg := &s.c.cfg
	t := time.NewTimer(cfg.EnquireLink)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		idle := time.Duration(s.mono() - s.lastRead.Load())
		if idle < cfg.EnquireLink {
			t.Reset(cfg.EnquireLink - idle)
			continue
		}
		_, err := s.request(context.Background(), &PDU{ID: EnquireLink}, true, nil)
		switch {
		case err == nil, errors.Is(err, errMalformedR):
			// Any answer, even a wrong one, shows the link is alive.
		case errors.Is(err, errTimeout):
			s.log.Warn("smpp: enquire_link unanswered, reconnecting", "timeout", cfg.Timeout)
			s.fail(errDeadLink)
			return
		default:
			return // the session is ending anyway
		}
		t.Reset(cfg.EnquireLink)
	}
}

// receiptWorker records deliver_sm and data_sm PDUs and answers each, with
// its own response, only after its receipt is recorded.
func (s *session) receiptWorker() {
	for {
		select {
		case p := <-s.receipts:
			st := s.c.answerDeliver(p)
			s.writePDU(&PDU{ID: p.ID.Response(), Status: st, Seq: p.Seq})
		case <-s.done:
			return
		}
	}
}

// shutdown unbinds in order: no new requests, a bounded wait for the
// outstanding responses, unbind, a bounded wait for unbind_resp, close.
func (s *session) shutdown(ctx context.Context) {
	s.mu.Lock()
	if s.dead {
		s.mu.Unlock()
		return
	}
	s.closing = true
	var drained chan struct{}
	if len(s.pending) > 0 {
		s.drained = make(chan struct{})
		drained = s.drained
	}
	s.mu.Unlock()
	if drained != nil {
		t := time.NewTimer(s.c.cfg.UnbindWait)
		select {
		case <-drained:
		case <-t.C:
			s.log.Warn("smpp: unbinding with requests still unanswered")
		case <-ctx.Done():
		case <-s.done:
		}
		t.Stop()
	}
	if ctx.Err() == nil {
		if _, err := s.request(ctx, &PDU{ID: Unbind}, true, nil); err != nil {
			s.log.Debug("smpp: unbind unanswered", "err", err)
		}
	}
	s.fail(errClosing)
}
